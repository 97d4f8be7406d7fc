import type { Entry } from "ldapts";
import { describe, expect, it } from "vitest";
import {
  computerFromEntry,
  gmsaFromEntry,
  groupFromEntry,
  kdsRootKeyFromEntry,
  memberRange,
  MissingAttributeError,
  parseGeneralizedTime,
  principalFromEntry,
} from "./observed.ts";
import { LEGACY_MARKER } from "./ownership.ts";
import { encodeGroupMsaMembership } from "./security-descriptor.ts";
import { encodeSid } from "./sid.ts";

const SID = "S-1-5-21-1-2-3-1105";
const DN = "CN=MSA-service1,CN=Managed Service Accounts,DC=example,DC=com";

describe("gmsaFromEntry", () => {
  it("reads every field, strips the $ and sorts SPNs", () => {
    const sd = encodeGroupMsaMembership([SID]);
    const entry: Entry = {
      dn: DN,
      sAMAccountName: "MSA-service1$",
      objectSid: encodeSid(SID),
      dNSHostName: "service1.example.com",
      description: "Reporting",
      displayName: "Service 1",
      servicePrincipalName: ["HTTP/z.example.com", "HTTP/a.example.com"],
      "msDS-SupportedEncryptionTypes": "24",
      "msDS-ManagedPasswordInterval": "30",
      "msDS-GroupMSAMembership": sd,
      "msDS-AllowedToDelegateTo": ["MSSQLSvc/sql1.example.com:1433", "MSSQLSvc/sql1.example.com"],
      "msDS-AllowedToActOnBehalfOfOtherIdentity": sd,
      userAccountControl: "4096",
      pwdLastSet: "133485408000000000",
      adminDescription: LEGACY_MARKER,
      whenChanged: "20250601120000.0Z",
    };
    expect(gmsaFromEntry(entry)).toEqual({
      dn: DN,
      samAccountName: "MSA-service1",
      sid: SID,
      dnsHostName: "service1.example.com",
      description: "Reporting",
      displayName: "Service 1",
      servicePrincipalNames: ["HTTP/a.example.com", "HTTP/z.example.com"],
      encryptionTypes: 24,
      passwordIntervalDays: 30,
      groupMsaMembership: sd,
      allowedToDelegateTo: ["MSSQLSvc/sql1.example.com", "MSSQLSvc/sql1.example.com:1433"],
      allowedToActOnBehalf: sd,
      userAccountControl: 4096,
      pwdLastSet: new Date("2024-01-01T00:00:00.000Z"),
      adminDescription: LEGACY_MARKER,
      managed: true,
      whenChanged: new Date("2025-06-01T12:00:00.000Z"),
    });
  });

  it("tells a standalone account (msDS-ManagedServiceAccount) by its class and reads the computers linking it", () => {
    const host = "CN=SQL1,CN=Computers,DC=example,DC=com";
    const g = gmsaFromEntry({
      dn: DN,
      sAMAccountName: "sql1-svc$",
      objectSid: encodeSid(SID),
      objectClass: ["top", "person", "organizationalPerson", "user", "computer", "msDS-ManagedServiceAccount"],
      "msDS-HostServiceAccountBL": host,
    });
    expect(g).toMatchObject({ standalone: true, hostComputers: [host], samAccountName: "sql1-svc" });
  });

  it("a gMSA without a gmsa-gitops marker is unmanaged and optional fields stay absent", () => {
    const g = gmsaFromEntry({
      dn: DN,
      samaccountname: "x$",
      objectSid: encodeSid(SID),
      adminDescription: "gmsa-gitops managed",
      pwdLastSet: "0",
    });
    expect(g).toEqual({
      dn: DN,
      samAccountName: "x",
      sid: SID,
      servicePrincipalNames: [],
      allowedToDelegateTo: [],
      adminDescription: "gmsa-gitops managed",
      managed: false,
    });
  });

  it("keeps its descriptors in buffers of their own, not in the LDAP message they were read from", () => {
    // ldapts hands out values as views into the received message; the picture outlives the
    // message, and a view would keep the whole message (every entry of the page) alive.
    const sd = encodeGroupMsaMembership([SID]);
    const message = Buffer.alloc(64 * 1024);
    sd.copy(message, 1000);
    const view = message.subarray(1000, 1000 + sd.length);
    const g = gmsaFromEntry({
      dn: DN,
      sAMAccountName: "x$",
      objectSid: encodeSid(SID),
      "msDS-GroupMSAMembership": view,
      "msDS-AllowedToActOnBehalfOfOtherIdentity": view,
    });
    expect(g.groupMsaMembership).toEqual(sd);
    expect(g.groupMsaMembership!.buffer).not.toBe(message.buffer);
    expect(g.allowedToActOnBehalf).toEqual(sd);
    expect(g.allowedToActOnBehalf!.buffer).not.toBe(message.buffer);
  });

  it("a binary attribute that came back as text is a loud error, not silent garbage", () => {
    expect(() => gmsaFromEntry({ dn: DN, sAMAccountName: "x$", objectSid: "abc" })).toThrow(/as a buffer/);
  });

  it("an entry without objectSid is reported as missing that attribute", () => {
    expect(() => gmsaFromEntry({ dn: DN, sAMAccountName: "x$" })).toThrow(MissingAttributeError);
  });
});

describe("groupFromEntry and memberRange", () => {
  const base = { dn: "CN=G,DC=x", sAMAccountName: "G", objectSid: encodeSid(SID), groupType: "-2147483644" };

  it("reads a small group's members and signed groupType", () => {
    const g = groupFromEntry({ ...base, member: ["CN=A,DC=x", "CN=B,DC=x"] });
    expect(g).toMatchObject({ groupType: -2147483644, members: ["CN=A,DC=x", "CN=B,DC=x"], managed: false });
  });

  it("reads displayName, notes (info) and managedBy", () => {
    const g = groupFromEntry({ ...base, displayName: "Group", info: "Notes", managedBy: "CN=Owner,DC=x" });
    expect(g).toMatchObject({ displayName: "Group", info: "Notes", managedBy: "CN=Owner,DC=x" });
  });

  it("a single member comes back as a list", () => {
    expect(groupFromEntry({ ...base, member: "CN=A,DC=x" }).members).toEqual(["CN=A,DC=x"]);
  });

  it("a group without members has an empty list", () => {
    expect(groupFromEntry(base).members).toEqual([]);
  });

  it("a ranged first page is read and says where to continue", () => {
    const entry: Entry = { ...base, "member;range=0-1499": ["CN=A,DC=x"] };
    expect(memberRange(entry)).toEqual({ values: ["CN=A,DC=x"], next: 1500 });
    expect(groupFromEntry(entry).members).toEqual(["CN=A,DC=x"]);
  });

  it("an empty range ends the reading, as Samba answers one for a group without members", () => {
    expect(memberRange({ dn: "x", "member;range=0-1499": [] })).toEqual({ values: [] });
  });

  it("the last ranged page has no continuation", () => {
    expect(memberRange({ dn: "x", "member;range=1500-*": ["CN=B,DC=x"] })).toEqual({ values: ["CN=B,DC=x"] });
  });
});

describe("other conversions", () => {
  it("computers lose the $ and keep dNSHostName", () => {
    expect(
      computerFromEntry({ dn: "CN=S1,DC=x", sAMAccountName: "S1$", objectSid: encodeSid(SID), dNSHostName: "s1.x" }),
    ).toEqual({
      dn: "CN=S1,DC=x",
      samAccountName: "S1",
      sid: SID,
      dnsHostName: "s1.x",
    });
  });

  it("principals report their most specific class", () => {
    expect(
      principalFromEntry({
        dn: "CN=S1,DC=x",
        sAMAccountName: "S1$",
        objectSid: encodeSid(SID),
        objectClass: ["top", "person", "organizationalPerson", "user", "computer"],
      }),
    ).toEqual({ dn: "CN=S1,DC=x", samAccountName: "S1$", sid: SID, objectClass: "computer" });
  });

  it("KDS root keys convert FILETIME times", () => {
    const key = kdsRootKeyFromEntry({
      dn: "CN=k",
      cn: "k",
      "msKds-UseStartTime": "116444736000000000",
      "msKds-CreateTime": "133485408000000000",
    });
    expect(key).toEqual({
      dn: "CN=k",
      id: "k",
      useStartTime: new Date(0),
      createTime: new Date("2024-01-01T00:00:00.000Z"),
    });
  });

  it("a KDS root key whose confidential times are unreadable is an error, not a key", () => {
    expect(() => kdsRootKeyFromEntry({ dn: "CN=k", cn: "k" })).toThrow(MissingAttributeError);
  });

  it("GeneralizedTime with and without fractions parses; nonsense does not", () => {
    expect(parseGeneralizedTime("20250601120000Z")).toEqual(new Date("2025-06-01T12:00:00.000Z"));
    expect(parseGeneralizedTime("20250601120000.5Z")).toEqual(new Date("2025-06-01T12:00:00.500Z"));
    expect(parseGeneralizedTime("yesterday")).toBeUndefined();
  });
});
