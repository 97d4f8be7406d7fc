import { describe, expect, it } from "vitest";
import { encodeSid, InvalidSidError, parseSid, readSidAt } from "./sid.ts";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("SID codec", () => {
  const cases: { sid: string; bytes: string }[] = [
    { sid: "S-1-5-32-544", bytes: "01 02 000000000005 20000000 20020000" },
    { sid: "S-1-1-0", bytes: "01 01 000000000001 00000000" },
    { sid: "S-1-5-18", bytes: "01 01 000000000005 12000000" },
    { sid: "S-1-0", bytes: "01 00 000000000000" },
    {
      sid: "S-1-5-21-3623811015-3361044348-30300820-1013",
      bytes: "01 05 000000000005 15000000 c7f7fed7 7c7755c8 945ace01 f5030000",
    },
    { sid: "S-1-0x123456789ABC-1", bytes: "01 01 123456789abc 01000000" },
    { sid: "S-1-4294967295-4294967295", bytes: "01 01 0000ffffffff ffffffff" },
  ];

  it.each(cases)("$sid round-trips through its binary form", ({ sid, bytes }) => {
    expect(encodeSid(sid).toString("hex")).toBe(hex(bytes).toString("hex"));
    expect(parseSid(hex(bytes))).toBe(sid);
  });

  it("a SID with 15 sub-authorities round-trips", () => {
    const sid = `S-1-5-${Array.from({ length: 15 }, (_, i) => i + 1).join("-")}`;
    expect(parseSid(encodeSid(sid))).toBe(sid);
  });

  it("a SID read inside a larger buffer reports its own length", () => {
    const buf = Buffer.concat([Buffer.from([0xaa, 0xbb]), encodeSid("S-1-5-32-544"), Buffer.from([0xcc])]);
    expect(readSidAt(buf, 2)).toEqual({ sid: "S-1-5-32-544", length: 16 });
  });

  it("a SID read from a Uint8Array view with a byte offset decodes correctly", () => {
    const backing = new Uint8Array(40);
    backing.set(encodeSid("S-1-5-21-1-2-3-500"), 4);
    expect(parseSid(backing.subarray(4, 4 + 28))).toBe("S-1-5-21-1-2-3-500");
  });

  it("lower-case input is normalised", () => {
    expect(parseSid(encodeSid("s-1-5-32-544"))).toBe("S-1-5-32-544");
    expect(parseSid(encodeSid("S-1-0x0000000005-18"))).toBe("S-1-5-18");
  });

  const badStrings = [
    "",
    "S-1",
    "S-2-5-32",
    "S-1-5-",
    "S-1-5-32-544 ",
    "S-1-5-32-544)(objectClass=*",
    "S-1-5-4294967296",
    "S-1-0x1000000000000-1",
    `S-1-5-${Array.from({ length: 16 }, () => "1").join("-")}`,
    "X-1-5-32",
  ];
  it.each(badStrings)("the string %j is refused", (text) => {
    expect(() => encodeSid(text)).toThrow(InvalidSidError);
  });

  const badBytes: { name: string; bytes: string }[] = [
    { name: "empty", bytes: "" },
    { name: "short header", bytes: "01 02 0000" },
    { name: "revision 2", bytes: "02 01 000000000005 12000000" },
    { name: "16 sub-authorities", bytes: "01 10 000000000005" + "00000000".repeat(16) },
    { name: "truncated sub-authority", bytes: "01 02 000000000005 20000000 2002" },
    { name: "trailing bytes", bytes: "01 01 000000000005 12000000 00" },
  ];
  it.each(badBytes)("binary SID with $name is refused", ({ bytes }) => {
    expect(() => parseSid(hex(bytes))).toThrow(InvalidSidError);
  });
});
