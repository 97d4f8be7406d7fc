import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  dateToFiletime,
  filetimeToDate,
  KDS_KDF_PARAM,
  KDS_SECRET_AGREEMENT_PARAM,
  kdsRootKeyAttributes,
  kdsRootKeyContainerDn,
  kdsUseStartTime,
} from "./kds.ts";

describe("FILETIME", () => {
  const table: { iso: string; ticks: bigint }[] = [
    { iso: "1970-01-01T00:00:00.000Z", ticks: 116444736000000000n },
    { iso: "1601-01-01T00:00:00.000Z", ticks: 0n },
    { iso: "2024-01-01T00:00:00.000Z", ticks: 133485408000000000n },
  ];
  it.each(table)("$iso is $ticks ticks", ({ iso, ticks }) => {
    expect(dateToFiletime(new Date(iso))).toBe(ticks);
  });

  it("a decimal string from AD becomes a Date", () => {
    expect(filetimeToDate("133485408000000000")?.toISOString()).toBe("2024-01-01T00:00:00.000Z");
  });

  it("0, AD's 'never' and garbage become undefined", () => {
    expect(filetimeToDate("0")).toBeUndefined();
    expect(filetimeToDate("9223372036854775807")).toBeUndefined();
    expect(filetimeToDate("12abc")).toBeUndefined();
  });
});

describe("KDS root key", () => {
  const now = new Date("2025-06-01T12:00:00.000Z");

  it("effectiveImmediately backdates UseStartTime by 10 h 5 min", () => {
    expect(kdsUseStartTime({ effectiveImmediately: true, now }).toISOString()).toBe("2025-06-01T01:55:00.000Z");
  });

  it("without effectiveImmediately the key starts ten days later, like Add-KdsRootKey", () => {
    expect(kdsUseStartTime({ effectiveImmediately: false, now }).toISOString()).toBe("2025-06-11T12:00:00.000Z");
  });

  it("an explicit effective time wins over the default", () => {
    const at = new Date("2025-06-02T00:00:00.000Z");
    expect(kdsUseStartTime({ effectiveImmediately: false, now, effectiveTime: at })).toEqual(at);
  });

  it("KDF parameters are the documented bytes", () => {
    expect(KDS_KDF_PARAM.toString("hex")).toBe("00000000010000000e000000000000005300480041003500310032000000");
  });

  it("DH parameters hold the RFC 5114 group: p prime, g of order q", () => {
    const b = KDS_SECRET_AGREEMENT_PARAM;
    expect(b.length).toBe(524);
    expect(b.readUInt32LE(0)).toBe(12 + 2 * 256);
    expect(b.subarray(4, 8).toString("latin1")).toBe("DHPM");
    expect(b.readUInt32LE(8)).toBe(256);
    const p = BigInt(`0x${b.subarray(12, 268).toString("hex")}`);
    const g = BigInt(`0x${b.subarray(268, 524).toString("hex")}`);
    const q = 0x8cf83642a709a097b447997640129da299b1a47d1eb3750ba308b0fe64f5fbd3n;
    const modPow = (base: bigint, exp: bigint, mod: bigint): bigint => {
      let result = 1n;
      let x = base % mod;
      for (let e = exp; e > 0n; e >>= 1n) {
        if (e & 1n) result = (result * x) % mod;
        x = (x * x) % mod;
      }
      return result;
    };
    expect((p - 1n) % q).toBe(0n);
    expect(modPow(g, q, p)).toBe(1n);
    expect(createHash("sha256").update(b).digest("hex")).toHaveLength(64);
  });

  it("attributes carry every mustContain with FILETIME decimal strings", () => {
    const attrs = kdsRootKeyAttributes({
      id: "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
      rootKeyData: new Uint8Array(64).fill(7),
      createTime: new Date("2024-01-01T00:00:00.000Z"),
      useStartTime: new Date("1970-01-01T00:00:00.000Z"),
      domainId: "CN=DC1,OU=Domain Controllers,DC=example,DC=com",
    });
    expect(attrs).toMatchObject({
      objectClass: "msKds-ProvRootKey",
      cn: "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
      "msKds-Version": "1",
      "msKds-KDFAlgorithmID": "SP800_108_CTR_HMAC",
      "msKds-SecretAgreementAlgorithmID": "DH",
      "msKds-PublicKeyLength": "2048",
      "msKds-PrivateKeyLength": "512",
      "msKds-CreateTime": "133485408000000000",
      "msKds-UseStartTime": "116444736000000000",
      "msKds-DomainID": "CN=DC1,OU=Domain Controllers,DC=example,DC=com",
    });
    expect(attrs["msKds-RootKeyData"]).toEqual(Buffer.alloc(64, 7));
  });

  it("refuses a key id that is not a GUID and key data of the wrong length", () => {
    const base = { rootKeyData: new Uint8Array(64), createTime: now, useStartTime: now, domainId: "CN=DC1" };
    expect(() => kdsRootKeyAttributes({ ...base, id: "x,CN=evil" })).toThrow(/GUID/);
    expect(() =>
      kdsRootKeyAttributes({ ...base, id: "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", rootKeyData: new Uint8Array(32) }),
    ).toThrow(/64 bytes/);
  });

  it("keys live under Master Root Keys in the configuration NC", () => {
    expect(kdsRootKeyContainerDn("CN=Configuration,DC=x")).toBe(
      "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,CN=Configuration,DC=x",
    );
  });
});
