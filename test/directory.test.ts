// The directory client against a real Samba 4.21+ AD DC (test/harness/samba.ts). What the client
// writes is checked through ldapsearch (ldap-utils, a separate TLS and LDAP stack), and what it
// reads is checked against objects ldapadd created.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  childDn,
  connectDirectory,
  decodeSecurityDescriptor,
  DirectoryError,
  encodeGroupMsaMembership,
  encodeSid,
  filetimeToDate,
  LEGACY_MARKER,
  parseSid,
} from "../controller/directory/index.ts";
import type { DirectoryOptions, LdapDirectory, LdapOperationKind } from "../controller/directory/index.ts";
import { ldifText, ldifValues } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";

const execFileAsync = promisify(execFile);

/** DNs of `ldapsearch ... dn` output. */
const ldifDns = (ldif: string): string[] => ldifText(ldif, "dn");

async function search(dc: Dc, base: string, scope: "base" | "one" | "sub", ...attrs: string[]): Promise<string> {
  return dc.ldap("ldapsearch", ["-b", base, "-s", scope, "(objectClass=*)", ...attrs]);
}

function adminOptions(dc: Dc, extra: Partial<DirectoryOptions> = {}): DirectoryOptions {
  return { url: dc.url, caFile: dc.caFile, bindDn: dc.adminDn, bindPassword: dc.adminPassword, ...extra };
}

/** The rejection of a promise, which must be a DirectoryError. */
async function directoryError(promise: Promise<unknown>): Promise<DirectoryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof DirectoryError) return err;
    throw new Error(`expected a DirectoryError, got ${String(err)}`, { cause: err });
  }
  throw new Error("expected a rejection");
}

/** gMSA attributes as New-ADServiceAccount writes them (docs/active-directory.md). */
function gmsaAttributes(
  name: string,
  realm: string,
  allowedSids: string[],
): Record<string, string | Buffer | string[]> {
  return {
    objectClass: "msDS-GroupManagedServiceAccount",
    sAMAccountName: `${name}$`,
    userAccountControl: "4096",
    "msDS-ManagedPasswordInterval": "30",
    dNSHostName: `${name.toLowerCase()}.${realm.toLowerCase()}`,
    "msDS-SupportedEncryptionTypes": "24",
    "msDS-GroupMSAMembership": encodeGroupMsaMembership(allowedSids),
    servicePrincipalName: [`HTTP/${name.toLowerCase()}.${realm.toLowerCase()}`],
    description: "written by the directory integration test",
    adminDescription: LEGACY_MARKER,
  };
}

describe("the directory client against a Samba DC provisioned with a KDS root key", () => {
  let dc: Dc;
  let dir: LdapDirectory;
  let scratch: string;
  const operations: { op: LdapOperationKind; ok: boolean }[] = [];

  beforeAll(async () => {
    dc = await startDc();
    scratch = mkdtempSync(join(tmpdir(), "gmsa-directory-test-"));
    dir = await connectDirectory(adminOptions(dc, { onOperation: (op, _s, ok) => operations.push({ op, ok }) }));
  });

  afterAll(async () => {
    await dir?.close();
    await dc?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("binds over LDAPS with the DC's CA and reads the naming contexts and domain SID", async () => {
    const dse = await dir.rootDse();
    expect(dse.defaultNamingContext).toBe(dc.baseDn);
    expect(dse.configurationNamingContext).toBe(dc.configDn);
    expect(dse.serverName).toMatch(/^CN=DC1,CN=Servers,/);
    expect(Number(dse.highestCommittedUSN)).toBeGreaterThan(0);
    const head = await search(dc, dc.baseDn, "base", "objectSid");
    expect(encodeSid(await dir.readSid(dse.defaultNamingContext))).toEqual(ldifValues(head, "objectSid")[0]);
  });

  test("a server certificate signed by another CA is refused as stalled, saying the certificate is not trusted", async () => {
    const otherCa = join(scratch, "other-ca.pem");
    await execFileAsync("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", join(scratch, "other-ca.key"), "-out", otherCa, "-days", "1", "-subj", "/CN=some other CA"],
    ]);
    const err = await directoryError(connectDirectory(adminOptions(dc, { caFile: otherCa })));
    expect(err.outcome).toBe("stalled");
    expect(err.reason).toBe("CertificateUntrusted");
    expect(err.message).toMatch(/certificate is not trusted.*CA.*does not match/);
  });

  test("without a caFile the system CAs do not trust the throwaway DC", async () => {
    const { caFile: _ignored, ...withoutCa } = adminOptions(dc);
    const err = await directoryError(connectDirectory(withoutCa));
    expect(err).toMatchObject({ outcome: "stalled", reason: "CertificateUntrusted" });
  });

  test("a wrong bind password is a stalled error naming the DN, and the password appears nowhere", async () => {
    const wrong = `Wr0ng-${randomBytes(8).toString("hex")}`;
    const err = await directoryError(connectDirectory(adminOptions(dc, { bindPassword: wrong })));
    expect(err).toMatchObject({ outcome: "stalled", reason: "InvalidCredentials", resultCode: 49, operation: "bind" });
    expect(err.message).toContain(`bind as ${dc.adminDn} failed: invalid credentials`);
    for (const text of [String(err), err.stack ?? "", JSON.stringify(err)]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(dc.adminPassword);
    }
  });

  test("plaintext ldap:// is refused before connecting unless allowInsecurePlaintext is set", async () => {
    const err = await directoryError(
      connectDirectory(adminOptions(dc, { url: dc.url.replace("ldaps://", "ldap://") })),
    );
    expect(err).toMatchObject({ outcome: "stalled", reason: "PlaintextRefused" });
    expect(err.message).toContain("allowInsecurePlaintext");
  });

  test("a group and a gMSA written by the client look to ldapsearch as New-ADServiceAccount's would", async () => {
    const groupDn = childDn("CN", "GMSA-Svc1-Hosts", `CN=Users,${dc.baseDn}`);
    await dir.add(groupDn, {
      objectClass: "group",
      sAMAccountName: "GMSA-Svc1-Hosts",
      groupType: String(0x80000004 | 0), // domain local security group, as a signed 32-bit value
      adminDescription: LEGACY_MARKER,
    });
    const groupSid = await dir.readSid(groupDn);
    const groupLdif = await search(dc, groupDn, "base", "objectSid", "groupType");
    expect(parseSid(ldifValues(groupLdif, "objectSid")[0] ?? Buffer.alloc(0))).toBe(groupSid);
    expect(ldifText(groupLdif, "groupType")).toEqual(["-2147483644"]);

    const gmsaDn = childDn("CN", "MSA-svc1", `CN=Managed Service Accounts,${dc.baseDn}`);
    await dir.add(gmsaDn, gmsaAttributes("MSA-svc1", dc.realm, [groupSid]));
    const ldif = await search(
      dc,
      gmsaDn,
      "base",
      ...["objectClass", "userAccountControl", "msDS-SupportedEncryptionTypes", "msDS-GroupMSAMembership"],
      ...["pwdLastSet", "msDS-ManagedPasswordId", "sAMAccountName"],
    );
    expect(ldifText(ldif, "objectClass")).toContain("msDS-GroupManagedServiceAccount");
    expect(ldifText(ldif, "userAccountControl")).toEqual(["4096"]);
    expect(ldifText(ldif, "msDS-SupportedEncryptionTypes")).toEqual(["24"]);
    expect(ldifText(ldif, "sAMAccountName")).toEqual(["MSA-svc1$"]);
    const sd = decodeSecurityDescriptor(ldifValues(ldif, "msDS-GroupMSAMembership")[0] ?? Buffer.alloc(0));
    expect(sd).toEqual({ owner: "S-1-5-32-544", aces: [{ type: 0, flags: 0, mask: 0xf01ff, sid: groupSid }] });
    // Samba 4.21+ generates the managed password at creation.
    expect(Number(ldifText(ldif, "pwdLastSet")[0])).toBeGreaterThan(0);
    expect(ldifValues(ldif, "msDS-ManagedPasswordId")).toHaveLength(1);
  });

  test("readGmsas and readGroups return what was written, marked as managed", async () => {
    const gmsas = await dir.readGmsas(dc.baseDn);
    const gmsa = gmsas.find((g) => g.samAccountName === "MSA-svc1");
    const group = (await dir.readGroups(dc.baseDn, [])).find((g) => g.samAccountName === "GMSA-Svc1-Hosts");
    expect(group).toMatchObject({
      managed: true,
      groupType: -2147483644,
      members: [],
      adminDescription: LEGACY_MARKER,
    });
    expect(gmsa).toMatchObject({
      dn: `CN=MSA-svc1,CN=Managed Service Accounts,${dc.baseDn}`,
      dnsHostName: `msa-svc1.${dc.realm.toLowerCase()}`,
      servicePrincipalNames: [`HTTP/msa-svc1.${dc.realm.toLowerCase()}`],
      encryptionTypes: 24,
      passwordIntervalDays: 30,
      userAccountControl: 4096,
      managed: true,
      description: "written by the directory integration test",
    });
    expect(gmsa?.pwdLastSet?.getTime()).toBeGreaterThan(Date.now() - 3_600_000);
    expect(gmsa?.whenChanged).toBeInstanceOf(Date);
    expect(encodeGroupMsaMembership([group?.sid ?? ""]).equals(gmsa?.groupMsaMembership ?? Buffer.alloc(0))).toBe(true);
  });

  test("readGroups finds named groups plus managed ones in one call, and a wildcard name matches nothing", async () => {
    const named = await dir.readGroups(dc.baseDn, ["Domain Admins", "No-Such-Group"]);
    expect(named.map((g) => [g.samAccountName, g.managed]).sort()).toEqual([
      ["Domain Admins", false],
      ["GMSA-Svc1-Hosts", true],
    ]);
    expect(named.find((g) => g.samAccountName === "Domain Admins")?.members).toContain(dc.adminDn);
    const hostile = await dir.readGroups(dc.baseDn, ["*", "x)(sAMAccountName=*"]);
    expect(hostile.map((g) => g.samAccountName)).toEqual(["GMSA-Svc1-Hosts"]);
  });

  test("adding members twice and removing an absent member both succeed without changes the second time", async () => {
    const groupDn = `CN=GMSA-Svc1-Hosts,CN=Users,${dc.baseDn}`;
    const [s1, s2, s3] = await Promise.all(
      ["SRV1", "SRV2", "SRV3"].map((n) => dc.addComputer(n, `Pw-${randomBytes(8).toString("hex")}`)),
    );
    if (!s1 || !s2 || !s3) throw new Error("computers not created");
    const members = async (): Promise<string[]> =>
      ldifText(await search(dc, groupDn, "base", "member"), "member").sort();

    expect(await dir.addMembers(groupDn, [s1, s2])).toEqual({ changed: [s1, s2], unchanged: [] });
    // Samba answers 68 for an existing member and ignores Permissive Modify for `member`.
    expect(await dir.addMembers(groupDn, [s1, s2])).toEqual({ changed: [], unchanged: [s1, s2] });
    expect(await dir.addMembers(groupDn, [s1, s3])).toEqual({ changed: [s3], unchanged: [s1] });
    expect(await members()).toEqual([s1, s2, s3].sort());

    expect(await dir.removeMembers(groupDn, [s3])).toEqual({ changed: [s3], unchanged: [] });
    // ... and 53 for removing one that is not there.
    expect(await dir.removeMembers(groupDn, [s3])).toEqual({ changed: [], unchanged: [s3] });
    expect(await dir.removeMembers(groupDn, [s2, s3])).toEqual({ changed: [s2], unchanged: [s3] });
    expect(await members()).toEqual([s1]);
  });

  test("adding a member that does not exist fails as stalled instead of being taken for idempotence", async () => {
    const groupDn = `CN=GMSA-Svc1-Hosts,CN=Users,${dc.baseDn}`;
    const err = await directoryError(dir.addMembers(groupDn, [`CN=Nobody,CN=Computers,${dc.baseDn}`]));
    expect(err.outcome).toBe("stalled");
    expect(err.dn).toBe(groupDn);
  });

  test("readComputers finds computers with or without the $ and never returns a gMSA", async () => {
    const found = await dir.readComputers(dc.baseDn, ["SRV1", "SRV2$", "MSA-svc1", "NOPE"]);
    expect(found.map((c) => c.samAccountName).sort()).toEqual(["SRV1", "SRV2"]);
    expect(found.find((c) => c.samAccountName === "SRV1")?.dnsHostName).toBe(`srv1.${dc.realm.toLowerCase()}`);
  });

  test("resolveSids names the principals of a descriptor, including BUILTIN\\Administrators", async () => {
    const groupSid = await dir.readSid(`CN=GMSA-Svc1-Hosts,CN=Users,${dc.baseDn}`);
    const names = await dir.resolveSids(dc.baseDn, [groupSid, "S-1-5-32-544", "S-1-5-21-1-2-3-4"]);
    expect(Object.fromEntries(names)).toEqual({ [groupSid]: "GMSA-Svc1-Hosts", "S-1-5-32-544": "Administrators" });
    const principals = await dir.resolvePrincipals(dc.baseDn, [groupSid]);
    expect(principals.get(groupSid)).toMatchObject({
      objectClass: "group",
      dn: `CN=GMSA-Svc1-Hosts,CN=Users,${dc.baseDn}`,
    });
  });

  test("a name with DN special characters is escaped on write and read back verbatim", async () => {
    const name = ' Hosts, Tier#1 + <x>; "q" = \\ ';
    const dn = childDn("CN", name, `CN=Users,${dc.baseDn}`);
    await dir.add(dn, { objectClass: "group", sAMAccountName: "Tier1-Hosts", adminDescription: LEGACY_MARKER });
    const ldif = await dc.ldap("ldapsearch", [
      "-b",
      `CN=Users,${dc.baseDn}`,
      "-s",
      "one",
      "(sAMAccountName=Tier1-Hosts)",
      "cn",
    ]);
    expect(ldifText(ldif, "cn")).toEqual([name]);
    const sid = ldifValues(
      await dc.ldap("ldapsearch", ["-b", dc.baseDn, "(sAMAccountName=Tier1-Hosts)", "objectSid"]),
      "objectSid",
    )[0];
    expect(encodeSid(await dir.readSid(dn))).toEqual(sid);
    await dir.delete(dn);
    expect(ldifDns(await dc.ldap("ldapsearch", ["-b", dc.baseDn, "(sAMAccountName=Tier1-Hosts)", "dn"]))).toEqual([]);
  });

  test("members of a group larger than one range (1500) are all returned", { timeout: 600_000 }, async () => {
    const ou = `OU=Bulk,${dc.baseDn}`;
    const count = 1510;
    const contacts = Array.from({ length: count }, (_, i) => `CN=Contact${String(i).padStart(4, "0")},${ou}`);
    await dc.ldap("ldapadd", [], { input: `dn: ${ou}\nobjectClass: organizationalUnit\n` });
    // Samba commits each add to disk (tens of ms each); small batches keep every ldapadd well
    // under the harness's 60 s limit even on a loaded machine.
    for (let i = 0; i < count; i += 100) {
      const batch = contacts.slice(i, i + 100).map((dn) => `dn: ${dn}\nobjectClass: contact\n`);
      await dc.ldap("ldapadd", [], { input: batch.join("\n") });
    }
    const group = [`dn: CN=Big-Group,${ou}`, "objectClass: group", "sAMAccountName: Big-Group"];
    await dc.ldap("ldapadd", [], { input: [...group, ...contacts.map((c) => `member: ${c}`), ""].join("\n") });
    // ldapsearch shows the server splits the values when asked for a range, as the client does.
    const raw = await search(dc, `CN=Big-Group,${ou}`, "base", "member;range=0-1499");
    expect(ldifValues(raw, "member;range=0-1499")).toHaveLength(1500);

    const [big] = (await dir.readGroups(dc.baseDn, ["Big-Group"])).filter((g) => g.samAccountName === "Big-Group");
    expect(big?.members).toHaveLength(count);
    expect(new Set(big?.members.map((m) => m.toLowerCase()))).toEqual(new Set(contacts.map((c) => c.toLowerCase())));
  });

  test("readKdsRootKeys sees the key provision created, usable now", async () => {
    const keys = await dir.readKdsRootKeys(dc.configDn);
    const container = `CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,${dc.configDn}`;
    const ldif = await search(dc, container, "one", "cn", "msKds-UseStartTime");
    expect(keys.map((k) => k.id)).toEqual(ldifText(ldif, "cn"));
    expect(keys).toHaveLength(1);
    expect(keys[0]?.useStartTime).toEqual(filetimeToDate(ldifText(ldif, "msKds-UseStartTime")[0] ?? ""));
    expect(keys[0]?.useStartTime.getTime()).toBeLessThanOrEqual(Date.now() - 10 * 3_600_000);
  });

  test("an account that may not read the confidential KDS attributes gets a stalled error, not an empty key list", async () => {
    const password = `Pw-${randomBytes(8).toString("hex")}`;
    const computerDn = await dc.addComputer("READER1", password);
    const reader = await connectDirectory(adminOptions(dc, { bindDn: computerDn, bindPassword: password }));
    try {
      const err = await directoryError(reader.readKdsRootKeys(dc.configDn));
      expect(err).toMatchObject({ outcome: "stalled", reason: "InsufficientAccess" });
      expect(err.message).toContain("msKds-");
    } finally {
      await reader.close();
    }
  });

  test("every LDAP operation was reported to onOperation, failures included", () => {
    const kinds = new Set(operations.map((o) => o.op));
    for (const kind of ["bind", "search", "add", "modify", "delete"] as const) expect(kinds).toContain(kind);
    expect(operations.some((o) => o.op === "modify" && !o.ok)).toBe(true);
  });
});

describe("the directory client against a Samba DC without a KDS root key", () => {
  let dc: Dc;
  let dir: LdapDirectory;

  beforeAll(async () => {
    dc = await startDc({ kdsRootKey: false });
    dir = await connectDirectory(adminOptions(dc));
  });

  afterAll(async () => {
    await dir?.close();
    await dc?.stop();
  });

  test("a gMSA add waits until an effective key exists, and succeeds once createKdsRootKey made one", async () => {
    expect(await dir.readKdsRootKeys(dc.configDn)).toEqual([]);
    const domainSid = await dir.readSid(dc.baseDn);
    const gmsaDn = `CN=MSA-late,CN=Managed Service Accounts,${dc.baseDn}`;
    const attributes = gmsaAttributes("MSA-late", dc.realm, [`${domainSid}-515`]);

    const before = await directoryError(dir.add(gmsaDn, attributes));
    expect(before).toMatchObject({ outcome: "waiting", reason: "KdsRootKeyMissing", resultCode: 32, dn: gmsaDn });

    // A key like plain Add-KdsRootKey's starts in ten days: still waiting.
    const now = new Date();
    await dir.createKdsRootKey({ effectiveImmediately: false, now });
    expect((await directoryError(dir.add(gmsaDn, attributes))).outcome).toBe("waiting");

    const keyDn = await dir.createKdsRootKey({ effectiveImmediately: true, now: new Date() });
    const keyLdif = await search(
      dc,
      keyDn,
      "base",
      "objectClass",
      "msKds-UseStartTime",
      "msKds-DomainID",
      "msKds-RootKeyData",
      "msKds-Version",
    );
    expect(ldifText(keyLdif, "objectClass")).toContain("msKds-ProvRootKey");
    expect(ldifText(keyLdif, "msKds-DomainID")).toEqual([`CN=DC1,OU=Domain Controllers,${dc.baseDn}`]);
    expect(ldifValues(keyLdif, "msKds-RootKeyData")[0]).toHaveLength(64);
    const start = filetimeToDate(ldifText(keyLdif, "msKds-UseStartTime")[0] ?? "");
    expect(Math.abs((start?.getTime() ?? 0) - (Date.now() - (10 * 60 + 5) * 60_000))).toBeLessThan(120_000);
    expect((await dir.readKdsRootKeys(dc.configDn)).map((k) => k.dn)).toContain(keyDn);

    await dir.add(gmsaDn, attributes);
    const ldif = await search(dc, gmsaDn, "base", "pwdLastSet", "msDS-ManagedPasswordId");
    expect(Number(ldifText(ldif, "pwdLastSet")[0])).toBeGreaterThan(0);
    expect(ldifValues(ldif, "msDS-ManagedPasswordId")).toHaveLength(1);
  });
});
