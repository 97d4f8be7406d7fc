// plan and apply against a real Samba AD DC, checked through ldapsearch (ldap-utils), not
// only through the controller's own reader.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSecurityDescriptor, guidToString, OwnershipKey, parseSid } from "../controller/directory/index.ts";
import { makeSelfSignedCa } from "./harness/ca.ts";
import { ldifText as text, ldifValues as ldif } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import { dcCommand } from "./support/cli.ts";
import { adminConnection } from "./support/directory.ts";
import type { Dc } from "./harness/samba.ts";

const examples = join(import.meta.dirname, "..", "examples");

/** The ownership key every command of this file runs with (a file, as in production). */
const OWNERSHIP_KEY = "reconcile-test-ownership-key-0123456789abcdef";
const keyDir = mkdtempSync(join(tmpdir(), "gmsa-key-"));
const keyFile = join(keyDir, "ownership.key");
writeFileSync(keyFile, `${OWNERSHIP_KEY}\n`, { mode: 0o600 });
const OWNER = new OwnershipKey("default", Buffer.from(OWNERSHIP_KEY));

/** The marker the controller must have written on an entry, from its objectGUID as ldapsearch read it. */
function expectedMarker(entry: string): string {
  return OWNER.markerFor(guidToString(ldif(entry, "objectGUID")[0]!));
}

afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

/** A plan/apply run against the DC, signing markers with this file's known key. */
const cli = (dc: Dc, command: string, repo: string, ...extra: string[]) =>
  dcCommand(dc, command, repo, "--ownership-key-file", keyFile, ...extra);

async function search(dc: Dc, filter: string, ...attributes: string[]): Promise<string> {
  return dc.ldap("ldapsearch", ["-b", dc.baseDn, "-s", "sub", filter, ...attributes]);
}

async function highestUsn(dc: Dc): Promise<string> {
  const out = await dc.ldap("ldapsearch", ["-b", "", "-s", "base", "(objectClass=*)", "highestCommittedUSN"]);
  return text(out, "highestCommittedUSN")[0]!;
}

function repoFrom(files: Record<string, string>, base?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "gmsa-repo-"));
  if (base) cpSync(base, dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe("plan and apply against Samba", () => {
  let dc: Dc;
  const temp: string[] = [];

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  });
  afterAll(async () => {
    await dc?.stop();
    for (const d of temp) rmSync(d, { recursive: true, force: true });
  });

  it("plans the examples as creations and exits 2", async () => {
    const r = await cli(dc, "plan", examples);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("+ GroupManagedServiceAccount/msa-service1");
    expect(r.stdout).toContain("+ ADGroup/gmsa-service1-hosts");
    expect(r.stdout).toMatch(/Plan: 5 to create, 0 to update, 0 to delete\.\n$/);
  });

  it("applies the examples: attributes, descriptor, groups and members as ldapsearch sees them", async () => {
    const r = await cli(dc, "apply", examples);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);

    const group = await search(
      dc,
      "(sAMAccountName=GMSA-Service1-Hosts)",
      "objectSid",
      "groupType",
      "member",
      "adminDescription",
      "objectGUID",
    );
    expect(text(group, "groupType")).toEqual(["-2147483646"]);
    expect(text(group, "adminDescription")).toEqual([expectedMarker(group)]);
    expect(
      text(group, "member")
        .map((m) => m.split(",")[0])
        .sort(),
    ).toEqual(["CN=SERVER1", "CN=SERVER2"]);
    const groupSid = parseSid(ldif(group, "objectSid")[0]!);

    const account = await search(
      dc,
      "(sAMAccountName=MSA-service1$)",
      "objectClass",
      "userAccountControl",
      "dNSHostName",
      "msDS-SupportedEncryptionTypes",
      "msDS-ManagedPasswordInterval",
      "msDS-GroupMSAMembership",
      "pwdLastSet",
      "adminDescription",
      "description",
      "objectGUID",
    );
    expect(text(account, "objectClass")).toContain("msDS-GroupManagedServiceAccount");
    expect(text(account, "userAccountControl")).toEqual(["4096"]);
    expect(text(account, "dNSHostName")).toEqual(["service1.company.local"]);
    expect(text(account, "msDS-SupportedEncryptionTypes")).toEqual(["24"]);
    expect(text(account, "msDS-ManagedPasswordInterval")).toEqual(["30"]);
    expect(text(account, "adminDescription")).toEqual([expectedMarker(account)]);
    // Samba 4.21+ generated the managed password, so the account is usable.
    expect(Number(text(account, "pwdLastSet")[0])).toBeGreaterThan(0);
    const sd = decodeSecurityDescriptor(ldif(account, "msDS-GroupMSAMembership")[0]!);
    expect(sd.owner).toBe("S-1-5-32-544");
    expect(sd.aces.map((a) => [a.type, a.mask, a.sid])).toEqual([[0, 0xf01ff, groupSid]]);

    const reports = await search(
      dc,
      "(sAMAccountName=gMSA-Reports$)",
      "servicePrincipalName",
      "msDS-SupportedEncryptionTypes",
      "msDS-AllowedToDelegateTo",
      "userAccountControl",
    );
    expect(text(reports, "servicePrincipalName").sort()).toEqual(["HTTP/reports", "HTTP/reports.company.local"]);
    expect(text(reports, "msDS-SupportedEncryptionTypes")).toEqual(["16"]);
    // The double hop to SQL Server: constrained delegation, without protocol transition.
    expect(text(reports, "msDS-AllowedToDelegateTo").sort()).toEqual([
      "MSSQLSvc/sql.company.local",
      "MSSQLSvc/sql.company.local:1433",
    ]);
    expect(text(reports, "userAccountControl")).toEqual(["4096"]);
  });

  it("a second apply makes no writes: highestCommittedUSN does not move", async () => {
    const before = await highestUsn(dc);
    const plan = await cli(dc, "plan", examples);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain("No changes.");
    const r = await cli(dc, "apply", examples);
    expect(r.code).toBe(0);
    expect(await highestUsn(dc)).toBe(before);
  });

  it("hand edits are reported by plan and healed by apply", async () => {
    const gmsaDn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    const groupDn = `CN=GMSA-Service1-Hosts,CN=Users,${dc.baseDn}`;
    await dc.ldap("ldapmodify", [], {
      input: [
        `dn: ${gmsaDn}`,
        "changetype: modify",
        "replace: description",
        "description: edited by hand",
        "-",
        "add: servicePrincipalName",
        "servicePrincipalName: HOST/rogue.company.local",
        "",
        `dn: ${groupDn}`,
        "changetype: modify",
        "delete: member",
        `member: CN=SERVER2,CN=Computers,${dc.baseDn}`,
        "",
      ].join("\n"),
    });
    await dc.ldap("ldapdelete", [`CN=gMSA-Reports,CN=Managed Service Accounts,${dc.baseDn}`]);

    const plan = await cli(dc, "plan", examples);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('~ description: "edited by hand" → "Service1 batch jobs and Windows service"');
    // SPNs are additive unless the manifest says exact: an SPN registered outside Git stays.
    expect(plan.stdout).not.toContain("HOST/rogue");
    expect(plan.stdout).toContain("~ member: [SERVER1$] → [SERVER1$, SERVER2$]");
    expect(plan.stdout).toContain("+ GroupManagedServiceAccount/gmsa-reports");

    expect((await cli(dc, "apply", examples)).code).toBe(0);
    const account = await search(dc, "(sAMAccountName=MSA-service1$)", "description", "servicePrincipalName");
    expect(text(account, "description")).toEqual(["Service1 batch jobs and Windows service"]);
    expect(text(account, "servicePrincipalName")).toEqual(["HOST/rogue.company.local"]);
    const group = await search(dc, "(sAMAccountName=GMSA-Service1-Hosts)", "member");
    expect(text(group, "member")).toHaveLength(2);
    expect(text(await search(dc, "(sAMAccountName=gMSA-Reports$)", "cn"), "cn")).toEqual(["gMSA-Reports"]);
    expect((await cli(dc, "plan", examples)).code).toBe(0);
  });

  it("an unmarked object with a managed name is reported as a conflict and never touched", async () => {
    await dc.ldap("ldapadd", [], {
      input: [
        `dn: CN=Team-Owned,CN=Users,${dc.baseDn}`,
        "objectClass: group",
        "sAMAccountName: Team-Owned",
        "description: theirs",
        "",
      ].join("\n"),
    });
    const repo = repoFrom({
      "g.yaml":
        "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: { name: team }\nspec: { accountName: Team-Owned, description: ours }\n",
    });
    temp.push(repo);
    const before = text(await search(dc, "(sAMAccountName=Team-Owned)", "uSNChanged"), "uSNChanged");
    const plan = await cli(dc, "plan", repo);
    expect(plan.stdout).toContain("! ADGroup/team");
    expect(plan.stdout).toContain("NotOwned");
    await cli(dc, "apply", repo);
    const after = await search(dc, "(sAMAccountName=Team-Owned)", "uSNChanged", "description");
    expect(text(after, "uSNChanged")).toEqual(before);
    expect(text(after, "description")).toEqual(["theirs"]);
  });

  it("prune is opt-in, capped by the deletion budget, and refused for an empty revision", async () => {
    const withoutReports = repoFrom({});
    cpSync(join(examples, "kds"), join(withoutReports, "kds"), { recursive: true });
    cpSync(join(examples, "service1"), join(withoutReports, "service1"), { recursive: true });
    cpSync(join(examples, "sql"), join(withoutReports, "sql"), { recursive: true });
    const empty = repoFrom({});
    temp.push(withoutReports, empty);

    // Without --prune, the leftovers are only reported.
    const plain = await cli(dc, "apply", withoutReports);
    expect(plain.stdout).toContain("deleted only with --prune");
    expect(text(await search(dc, "(sAMAccountName=gMSA-Reports$)", "cn"), "cn")).toHaveLength(1);

    // An empty revision never prunes, whatever the budget.
    const none = await cli(dc, "apply", empty, "--prune", "--deletion-budget", "100");
    expect(none.stdout).toContain("no manifests");
    expect(none.code).toBe(4); // held back: not "all applied"
    const nonePlan = await cli(dc, "plan", empty, "--prune");
    expect(nonePlan.code).toBe(2);
    expect(nonePlan.stdout).toMatch(/Plan: 0 to create, 0 to update, 0 to delete, [1-9]\d* blocked\./);
    expect(text(await search(dc, "(sAMAccountName=gMSA-Reports$)", "cn"), "cn")).toHaveLength(1);

    // With a budget of 1, one object goes per run: the gMSA first, then its group. The run that
    // defers a deletion exits 4 (held back), the last one 0.
    const first = await cli(dc, "apply", withoutReports, "--prune", "--deletion-budget", "1");
    expect(first.code).toBe(4);
    expect(first.stdout).toContain("DeletionBudgetExhausted");
    expect(text(await search(dc, "(sAMAccountName=gMSA-Reports$)", "cn"), "cn")).toHaveLength(0);
    expect(text(await search(dc, "(sAMAccountName=GMSA-Reports-Hosts)", "cn"), "cn")).toHaveLength(1);
    const second = await cli(dc, "apply", withoutReports, "--prune", "--deletion-budget", "1");
    expect(second.code).toBe(0);
    expect(text(await search(dc, "(sAMAccountName=GMSA-Reports-Hosts)", "cn"), "cn")).toHaveLength(0);
    // The unmarked group was never a prune candidate.
    expect(text(await search(dc, "(sAMAccountName=Team-Owned)", "cn"), "cn")).toHaveLength(1);
  });

  it("forged markers on a group, Domain Admins and Administrators: prune deletes none, adopt changes no protected object", async () => {
    // A genuine marker, copied from an object the controller made, is the strongest forgery.
    const genuine = text(
      await search(dc, "(sAMAccountName=GMSA-Service1-Hosts)", "adminDescription"),
      "adminDescription",
    )[0]!;
    expect(genuine).toMatch(/^gmsa-gitops:v2:default:/);
    await dc.ldap("ldapadd", [], {
      input: [
        `dn: CN=Forged-Group,CN=Users,${dc.baseDn}`,
        "objectClass: group",
        "sAMAccountName: Forged-Group",
        "",
      ].join("\n"),
    });
    const forge = (dn: string, value: string): string =>
      [`dn: ${dn}`, "changetype: modify", "replace: adminDescription", `adminDescription: ${value}`, "-", ""].join(
        "\n",
      );
    const domainAdmins = `CN=Domain Admins,CN=Users,${dc.baseDn}`;
    const administrators = `CN=Administrators,CN=Builtin,${dc.baseDn}`;
    await dc.ldap("ldapmodify", [], {
      input: [
        forge(`CN=Forged-Group,CN=Users,${dc.baseDn}`, "gmsa-gitops:managed"),
        forge(domainAdmins, genuine),
        forge(administrators, "gmsa-gitops:managed"),
      ].join("\n"),
    });
    const state = async (name: string) => {
      const entry = await dc.ldap("ldapsearch", [
        "-b",
        dc.baseDn,
        "-s",
        "sub",
        `(sAMAccountName=${name})`,
        "uSNChanged",
        "groupType",
        "member",
      ]);
      return {
        usn: text(entry, "uSNChanged"),
        groupType: text(entry, "groupType"),
        member: text(entry, "member").sort(),
      };
    };
    const before = {
      forged: await state("Forged-Group"),
      domainAdmins: await state("Domain Admins"),
      administrators: await state("Administrators"),
    };
    expect(before.forged.usn).toHaveLength(1);

    // Everything in Git but these three: prune may delete only objects with a valid marker of ours.
    const plan = await cli(dc, "plan", examples, "--prune", "--deletion-budget", "100");
    expect(plan.stdout).not.toMatch(/- ADGroup\/(forged-group|domain admins|administrators)/i);
    const pruned = await cli(dc, "apply", examples, "--prune", "--deletion-budget", "100");
    expect(pruned.stderr).toBe("");
    expect(await state("Forged-Group")).toEqual(before.forged);
    expect(await state("Domain Admins")).toEqual(before.domainAdmins);
    expect(await state("Administrators")).toEqual(before.administrators);

    // Manifests naming them, with --adopt: the protected ones are shown as such and left alone;
    // the forged group is adopted and re-marked with a marker bound to its own objectGUID.
    const repo = repoFrom({
      "g.yaml": [
        "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: { name: admins }\nspec: { accountName: Administrators, scope: Global, path: CN=Builtin, membership: exact }",
        "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: { name: domain-admins }\nspec: { accountName: Domain Admins, membership: exact, description: ours }",
        "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: { name: forged }\nspec: { accountName: Forged-Group, description: ours }",
      ].join("\n---\n"),
    });
    temp.push(repo);
    const adoptPlan = await cli(dc, "plan", repo, "--adopt");
    expect(adoptPlan.stdout).toMatch(
      /! ADGroup\/admins[^\n]*\n\s+! protected: CN=Administrators,CN=Builtin,[^\n]*is never touched/,
    );
    expect(adoptPlan.stdout).toMatch(/! ADGroup\/domain-admins[^\n]*\n\s+! protected: [^\n]*isCriticalSystemObject/);
    const adopted = await cli(dc, "apply", repo, "--adopt");
    expect(adopted.code).toBe(4); // held back: the protected ones
    expect(await state("Domain Admins")).toEqual(before.domainAdmins);
    expect(await state("Administrators")).toEqual(before.administrators);
    const forged = await search(dc, "(sAMAccountName=Forged-Group)", "adminDescription", "objectGUID", "description");
    expect(text(forged, "adminDescription")).toEqual([expectedMarker(forged)]);
    expect(text(forged, "description")).toEqual(["ours"]);

    // Had a deletion reached the DC, its refusal is final: Stalled (no retry before Git changes).
    const dir = await adminConnection(dc);
    try {
      await expect(dir.delete(administrators)).rejects.toMatchObject({ outcome: "stalled" });
    } finally {
      await dir.close();
    }
    expect(await state("Administrators")).toEqual(before.administrators);

    // Without --adopt, a manifest naming Domain Admins is not managed either.
    const plain = await cli(dc, "apply", repo);
    expect(plain.stdout).toMatch(/Protected|protected/);
    expect(await state("Domain Admins")).toEqual(before.domainAdmins);
  });

  it("a group blocked by a missing computer gets no write at all, and plan and apply say so", async () => {
    const repo = repoFrom({
      "group.yaml": `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: half-known
spec:
  accountName: Half-Known
  members:
    - computer: SERVER1
    - computer: NO-SUCH-HOST
`,
    });
    temp.push(repo);
    const usn = async (): Promise<string> =>
      text(
        await dc.ldap("ldapsearch", ["-b", "", "-s", "base", "(objectClass=*)", "highestCommittedUSN"]),
        "highestCommittedUSN",
      )[0]!;

    const plan = await cli(dc, "plan", repo);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toMatch(/stalled: PrincipalNotFound: .*NO-SUCH-HOST/);
    expect(plan.stdout).toMatch(/ 1 blocked[.,]/);

    const before = await usn();
    const applied = await cli(dc, "apply", repo);
    expect(applied.code).toBe(4);
    expect(applied.stdout).toMatch(/0 succeeded, 0 failed or skipped, 1 held back/);
    // Nothing was written: no group, and the directory's USN did not move.
    expect(text(await search(dc, "(sAMAccountName=Half-Known)", "cn"), "cn")).toHaveLength(0);
    expect(await usn()).toBe(before);
  });

  it("TLS is required by default, a wrong CA is refused, and a wrong password names no secret", async () => {
    const plaintext = await cli(dc, "plan", examples, "--ldap-url", dc.url.replace("ldaps://", "ldap://"));
    expect(plaintext.code).toBe(2);
    expect(plaintext.stderr).toContain("--start-tls");

    const otherCa = mkdtempSync(join(tmpdir(), "gmsa-ca-"));
    temp.push(otherCa);
    const otherCaFile = makeSelfSignedCa(otherCa, "Other CA");
    const wrongCa = await cli(dc, "plan", examples, "--ca-file", otherCaFile);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(/certificate/i);

    const secret = "Not-The-Password-42!";
    const pw = join(otherCa, "pw");
    writeFileSync(pw, secret, { mode: 0o600 });
    const wrongPassword = await cli(dc, "plan", examples, "--bind-password-file", pw);
    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stderr).toMatch(/invalid credentials/i);
    expect(wrongPassword.stderr + wrongPassword.stdout).not.toContain(secret);
  });
});

describe("without an effective KDS root key", () => {
  let dc: Dc;
  beforeAll(async () => {
    dc = await startDc({ kdsRootKey: false });
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  });
  afterAll(async () => {
    await dc?.stop();
  });

  it("creates the key and the groups; gMSAs wait and say until when", async () => {
    const plan = await cli(dc, "plan", examples);
    expect(plan.stdout).toContain("+ KdsRootKey/default");
    expect(plan.stdout).toMatch(
      /waiting: KdsRootKeyNotEffective: no effective KDS root key yet; gMSA creation waits until \d{4}-\d\d-\d\dT/,
    );

    // Everything that could be written was; the gMSAs are held back until the key is
    // effective, and apply's exit code says so (4: held back), not "all applied".
    const applied = await cli(dc, "apply", examples);
    expect(applied.code).toBe(4);
    expect(applied.stdout).toMatch(/Apply: \d+ succeeded, 0 failed or skipped, 3 held back\./);
    const keys = await dc.ldap("ldapsearch", ["-b", dc.configDn, "(objectClass=msKds-ProvRootKey)", "cn"]);
    expect(text(keys, "cn")).toHaveLength(1);
    expect(text(await search(dc, "(sAMAccountName=GMSA-Service1-Hosts)", "cn"), "cn")).toHaveLength(1);
    expect(text(await search(dc, "(objectClass=msDS-GroupManagedServiceAccount)", "cn"), "cn")).toHaveLength(0);

    const again = await cli(dc, "plan", examples);
    expect(again.stdout).toMatch(/gMSA creation waits until/);
    expect(again.stdout).not.toContain("+ KdsRootKey/default");
  });
});
