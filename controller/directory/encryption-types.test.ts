import { describe, expect, it } from "vitest";
import type { EncryptionTypeName } from "./encryption-types.ts";
import {
  decodeEncryptionTypes,
  describeEncryptionTypes,
  describeOtherBits,
  encodeEncryptionTypes,
} from "./encryption-types.ts";

describe("msDS-SupportedEncryptionTypes", () => {
  const table: { names: EncryptionTypeName[]; value: number }[] = [
    { names: [], value: 0 },
    { names: ["AES128", "AES256"], value: 24 },
    { names: ["RC4", "AES128", "AES256"], value: 28 },
    { names: ["DES"], value: 3 },
    { names: ["DES", "RC4", "AES128", "AES256"], value: 0x1f },
    { names: ["AES256"], value: 0x10 },
  ];

  it.each(table)("$names is $value and decodes back", ({ names, value }) => {
    expect(encodeEncryptionTypes(names)).toBe(value);
    expect(decodeEncryptionTypes(value)).toEqual({ names, otherBits: 0 });
  });

  it("encoding ignores order and repeated names", () => {
    expect(encodeEncryptionTypes(["AES256", "AES128", "AES256"])).toBe(24);
  });

  it("keeps FAST and other unknown bits visible next to the names", () => {
    expect(decodeEncryptionTypes(0x10018)).toEqual({ names: ["AES128", "AES256"], otherBits: 0x10000 });
    expect(describeOtherBits(0x10000)).toEqual(["FAST_SUPPORTED"]);
  });

  it("a lone DES bit is not reported as DES but stays visible", () => {
    expect(decodeEncryptionTypes(0x1 | 0x18)).toEqual({ names: ["AES128", "AES256"], otherBits: 0x1 });
    expect(describeOtherBits(0x1)).toEqual(["DES_CBC_CRC"]);
  });

  it("the top bit is decoded as an unsigned value", () => {
    expect(decodeEncryptionTypes(0x8000_0018)).toEqual({ names: ["AES128", "AES256"], otherBits: 0x8000_0000 });
    expect(describeOtherBits(0x8000_0020)).toEqual(["AES256_CTS_HMAC_SHA1_96_SK", "0x80000000"]);
  });

  it("labels list names first, then the other flags", () => {
    expect(describeEncryptionTypes(0x1001c)).toEqual(["RC4", "AES128", "AES256", "FAST_SUPPORTED"]);
    expect(describeEncryptionTypes(0)).toEqual([]);
  });
});
