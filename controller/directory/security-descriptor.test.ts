import { describe, expect, it } from "vitest";
import {
  allowedDelegators,
  allowedReaders,
  encodeAllowedToActOnBehalfOfOtherIdentity,
  decodeSecurityDescriptor,
  encodeGroupMsaMembership,
  InvalidSecurityDescriptorError,
} from "./security-descriptor.ts";
import { encodeSid } from "./sid.ts";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const ADMIN = "S-1-5-21-1004336348-1177238915-682003330-500";
const HOSTS = "S-1-5-21-1004336348-1177238915-682003330-1104";
const SERVER = "S-1-5-21-1004336348-1177238915-682003330-1105";

// Test-only builder for descriptors laid out the way other writers lay them out.
interface RawAce {
  type: number;
  flags?: number;
  mask: number;
  sid: string;
  pad?: number;
  objectType?: Buffer;
}
function rawAce(a: RawAce): Buffer {
  const sid = encodeSid(a.sid);
  const objectPart = a.objectType ? Buffer.concat([u32(1), a.objectType]) : Buffer.alloc(0);
  const size = 8 + objectPart.length + sid.length + (a.pad ?? 0);
  const head = Buffer.alloc(8);
  head.writeUInt8(a.type, 0);
  head.writeUInt8(a.flags ?? 0, 1);
  head.writeUInt16LE(size, 2);
  head.writeUInt32LE(a.mask >>> 0, 4);
  return Buffer.concat([head, objectPart, sid, Buffer.alloc(a.pad ?? 0)]);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}
function rawAcl(revision: number, aces: RawAce[]): Buffer {
  const body = Buffer.concat(aces.map(rawAce));
  const head = Buffer.alloc(8);
  head.writeUInt8(revision, 0);
  head.writeUInt16LE(8 + body.length, 2);
  head.writeUInt16LE(aces.length, 4);
  return Buffer.concat([head, body]);
}
/** Lays the parts out in the order given (impacket writes SACL, DACL, owner, group). */
function rawSd(parts: { kind: "owner" | "group" | "dacl" | "sacl"; bytes: Buffer }[], control = 0x8004): Buffer {
  const header = Buffer.alloc(20);
  header.writeUInt8(1, 0);
  header.writeUInt16LE(control, 2);
  let at = 20;
  const slot = { owner: 4, group: 8, sacl: 12, dacl: 16 } as const;
  for (const p of parts) {
    header.writeUInt32LE(at, slot[p.kind]);
    at += p.bytes.length;
  }
  return Buffer.concat([header, ...parts.map((p) => p.bytes)]);
}

describe("encodeGroupMsaMembership", () => {
  it("writes the documented bytes of O:BAD:(A;;0xf01ff;;;<domain admin>)", () => {
    const expected = hex(`
      01 00 04 80 14000000 00000000 00000000 24000000
      01 02 000000000005 20000000 20020000
      04 00 2c00 0100 0000
      00 00 2400 ff010f00
      01 05 000000000005 15000000 dcf4dc3b 833d2b46 828ba628 f4010000`);
    expect(encodeGroupMsaMembership([ADMIN]).toString("hex")).toBe(expected.toString("hex"));
  });

  it("writes one ACE per principal in the order given and writes a repeated SID once", () => {
    const sd = decodeSecurityDescriptor(encodeGroupMsaMembership([HOSTS, SERVER, HOSTS]));
    expect(sd).toEqual({
      owner: "S-1-5-32-544",
      aces: [
        { type: 0, flags: 0, mask: 0xf01ff, sid: HOSTS },
        { type: 0, flags: 0, mask: 0xf01ff, sid: SERVER },
      ],
    });
  });

  it("an empty principal list gives an empty DACL, which allows nobody", () => {
    const buf = encodeGroupMsaMembership([]);
    expect(decodeSecurityDescriptor(buf)).toEqual({ owner: "S-1-5-32-544", aces: [] });
    expect(allowedReaders(buf).size).toBe(0);
  });

  it("a malformed SID is refused", () => {
    expect(() => encodeGroupMsaMembership(["S-1-5-21-x"])).toThrow(/not a SID/);
  });
});

describe("decodeSecurityDescriptor", () => {
  const owner = encodeSid("S-1-5-32-544");
  const group = encodeSid("S-1-5-32-544");
  const allowHosts: RawAce = { type: 0, mask: 0xf01ff, sid: HOSTS };

  const layouts: { name: string; bytes: Buffer }[] = [
    {
      name: "impacket order (SACL, DACL, owner, group) with a group",
      bytes: rawSd(
        [
          { kind: "sacl", bytes: rawAcl(4, [{ type: 2, mask: 0x10, sid: "S-1-1-0" }]) },
          { kind: "dacl", bytes: rawAcl(4, [allowHosts]) },
          { kind: "owner", bytes: owner },
          { kind: "group", bytes: group },
        ],
        0x8014,
      ),
    },
    {
      name: "ACL revision 2",
      bytes: rawSd([
        { kind: "owner", bytes: owner },
        { kind: "dacl", bytes: rawAcl(2, [allowHosts]) },
      ]),
    },
    {
      name: "null bytes after the ACE's SID",
      bytes: rawSd([
        { kind: "owner", bytes: owner },
        { kind: "dacl", bytes: rawAcl(4, [{ ...allowHosts, pad: 4 }]) },
      ]),
    },
    {
      name: "trailing bytes after the descriptor",
      bytes: Buffer.concat([encodeGroupMsaMembership([HOSTS]), Buffer.alloc(12)]),
    },
  ];

  it.each(layouts)("reads the same owner and ACE from a descriptor with $name", ({ bytes }) => {
    const sd = decodeSecurityDescriptor(bytes);
    expect(sd.owner).toBe("S-1-5-32-544");
    expect(sd.aces).toEqual([{ type: 0, flags: 0, mask: 0xf01ff, sid: HOSTS }]);
  });

  it("represents object ACEs with their object GUID", () => {
    // ms-Mcs-AdmPwd-like GUID bytes; the first three fields are little-endian.
    const guid = hex("78563412 3412 7856 9abc def012345678");
    const bytes = rawSd([
      { kind: "owner", bytes: owner },
      { kind: "dacl", bytes: rawAcl(4, [{ type: 5, mask: 0x10, sid: SERVER, objectType: guid }, allowHosts]) },
    ]);
    expect(decodeSecurityDescriptor(bytes).aces).toEqual([
      { type: 5, flags: 0, mask: 0x10, sid: SERVER, objectType: "12345678-1234-5678-9abc-def012345678" },
      { type: 0, flags: 0, mask: 0xf01ff, sid: HOSTS },
    ]);
  });

  it("skips ACE types whose layout it does not know", () => {
    const unknown = Buffer.from([0x14, 0, 8, 0, 0, 0, 0, 0]);
    const acl = rawAcl(4, [allowHosts]);
    acl.writeUInt16LE(acl.length + unknown.length, 2);
    acl.writeUInt16LE(2, 4);
    const bytes = rawSd([
      { kind: "owner", bytes: owner },
      { kind: "dacl", bytes: Buffer.concat([acl, unknown]) },
    ]);
    expect(decodeSecurityDescriptor(bytes).aces).toHaveLength(1);
  });

  it("a descriptor without SE_DACL_PRESENT has no ACEs", () => {
    const bytes = rawSd(
      [
        { kind: "owner", bytes: owner },
        { kind: "dacl", bytes: rawAcl(4, [allowHosts]) },
      ],
      0x8000,
    );
    expect(decodeSecurityDescriptor(bytes)).toEqual({ owner: "S-1-5-32-544", aces: [] });
  });

  const broken: { name: string; bytes: Buffer }[] = [
    { name: "shorter than the header", bytes: Buffer.alloc(10) },
    { name: "revision 2 header", bytes: Buffer.from([2, 0, 4, 0x80, ...Buffer.alloc(16)]) },
    { name: "not self-relative", bytes: Buffer.from([1, 0, 4, 0x00, ...Buffer.alloc(16)]) },
    {
      name: "owner offset past the end",
      bytes: (() => {
        const b = encodeGroupMsaMembership([HOSTS]);
        b.writeUInt32LE(500, 4);
        return b;
      })(),
    },
    {
      name: "ACL size past the end",
      bytes: (() => {
        const b = encodeGroupMsaMembership([HOSTS]);
        b.writeUInt16LE(400, 36 + 2);
        return b;
      })(),
    },
    {
      name: "ACL revision 3",
      bytes: (() => {
        const b = encodeGroupMsaMembership([HOSTS]);
        b.writeUInt8(3, 36);
        return b;
      })(),
    },
    {
      name: "ACE size past the ACL",
      bytes: (() => {
        const b = encodeGroupMsaMembership([HOSTS]);
        b.writeUInt16LE(200, 44 + 2);
        return b;
      })(),
    },
    {
      name: "more ACEs than bytes",
      bytes: (() => {
        const b = encodeGroupMsaMembership([HOSTS]);
        b.writeUInt16LE(2, 36 + 4);
        return b;
      })(),
    },
    {
      name: "truncated SID in an ACE",
      bytes: (() => {
        const b = encodeGroupMsaMembership([HOSTS]);
        b.writeUInt8(9, 44 + 9);
        return b;
      })(),
    },
  ];
  it.each(broken)("a descriptor with $name is refused with a clear error", ({ bytes }) => {
    expect(() => decodeSecurityDescriptor(bytes)).toThrow(InvalidSecurityDescriptorError);
  });
});

describe("allowedReaders", () => {
  it("counts allow ACEs granting READ_PROP and ignores deny, inherit-only, object and write-only ACEs", () => {
    const bytes = rawSd([
      { kind: "owner", bytes: encodeSid("S-1-5-32-544") },
      {
        kind: "dacl",
        bytes: rawAcl(4, [
          { type: 0, mask: 0xf01ff, sid: HOSTS },
          { type: 0, mask: 0x10, sid: SERVER },
          { type: 0, mask: 0x8000_0000, sid: "S-1-5-9" },
          { type: 0, mask: 0x20, sid: "S-1-5-11" },
          { type: 0, flags: 0x08, mask: 0xf01ff, sid: "S-1-5-18" },
          { type: 1, mask: 0xf01ff, sid: "S-1-1-0" },
          { type: 5, mask: 0x10, sid: "S-1-5-10", objectType: Buffer.alloc(16) },
        ]),
      },
    ]);
    expect([...allowedReaders(bytes)].sort()).toEqual([HOSTS, SERVER, "S-1-5-9"].sort());
  });
});

describe("msDS-AllowedToActOnBehalfOfOtherIdentity", () => {
  it("is written as the AD module writes it: O:BAD:(A;;0xF01FF;;;SID) per principal", () => {
    const sd = decodeSecurityDescriptor(encodeAllowedToActOnBehalfOfOtherIdentity([HOSTS, SERVER]));
    expect(sd.owner).toBe("S-1-5-32-544");
    expect(sd.group).toBeUndefined();
    expect(sd.aces).toEqual([
      { type: 0, flags: 0, mask: 0xf01ff, sid: HOSTS },
      { type: 0, flags: 0, mask: 0xf01ff, sid: SERVER },
    ]);
  });

  it("lets delegate the allow ACEs granting CONTROL_ACCESS, not GENERIC_ALL alone, deny, inherit-only or read-only ones", () => {
    const bytes = rawSd([
      { kind: "owner", bytes: encodeSid("S-1-5-32-544") },
      {
        kind: "dacl",
        bytes: rawAcl(4, [
          { type: 0, mask: 0xf01ff, sid: HOSTS },
          { type: 0, mask: 0x100, sid: SERVER },
          { type: 0, mask: 0x1000_0000, sid: "S-1-5-9" },
          { type: 0, mask: 0x10, sid: "S-1-5-11" },
          { type: 0, flags: 0x08, mask: 0xf01ff, sid: "S-1-5-18" },
          { type: 1, mask: 0xf01ff, sid: "S-1-1-0" },
        ]),
      },
    ]);
    expect([...allowedDelegators(bytes)].sort()).toEqual([HOSTS, SERVER].sort());
  });
});
