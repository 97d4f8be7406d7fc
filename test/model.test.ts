// The model real domains need (issue 13), against a real Samba AD DC and checked through
// ldapsearch: who owns a list (SPNs, members, readers), and the enabled state.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSecurityDescriptor } from "../controller/directory/index.ts";
import { ldifText as text, ldifValues as ldif } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { directoryChecks, HEADER, manifestRepos } from "./support/directory-checks.ts";
import { dcCommand } from "./support/cli.ts";

const cli = dcCommand;

describe("the model against Samba", () => {
  let dc: Dc;
  const { search, modify, sidOf } = directoryChecks(() => dc);
  const { repo, removeAll } = manifestRepos("gmsa-model-");

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SQL1", "SQL2", "OLDSQL"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  });
  afterAll(async () => {
    await dc?.stop();
    removeAll();
  });

  it("SPNs SQL Server registered stay; a removed SPN, member and reader go; what the repository does not list stays", async () => {
    const sqlDn = `CN=gMSA-SQL1,CN=Managed Service Accounts,${dc.baseDn}`;
    const hostsDn = `CN=SQL-Hosts,CN=Users,${dc.baseDn}`;
    /** The SQL Server account and its hosts' group, with extra lines for the group's and the account's spec. */
    const sqlRepo = (groupLines: string, accountLines: string): string =>
      repo(`${HEADER}kind: ADGroup
metadata: { name: sql-hosts }
spec:
  accountName: SQL-Hosts
  members: [{ computer: SQL1 }]
${groupLines}---
${HEADER}kind: GroupManagedServiceAccount
metadata: { name: sql1 }
spec:
  accountName: gMSA-SQL1
  dnsHostName: sql1.company.local
  servicePrincipalNames: [HTTP/sqlreports.company.local]
${accountLines}`);
    const first = sqlRepo(
      "",
      "  principalsAllowedToRetrieveManagedPassword: [{ group: sql-hosts }, { computer: OLDSQL }]\n",
    );
    expect((await cli(dc, "apply", first)).code).toBe(0);

    // SQL Server registers its own SPNs; a person adds two hosts to the group.
    await modify(
      `dn: ${sqlDn}`,
      "changetype: modify",
      "add: servicePrincipalName",
      "servicePrincipalName: MSSQLSvc/sql1.company.local",
      "servicePrincipalName: MSSQLSvc/sql1.company.local:1433",
      "",
      `dn: ${hostsDn}`,
      "changetype: modify",
      "add: member",
      `member: CN=SQL2,CN=Computers,${dc.baseDn}`,
      `member: CN=OLDSQL,CN=Computers,${dc.baseDn}`,
    );
    const unchanged = await cli(dc, "plan", first);
    expect(unchanged.stdout).toContain("No changes.");
    expect(unchanged.code).toBe(0);

    // The next revision takes OLDSQL out of the group and away from the readers, and one SPN away.
    const second = sqlRepo(
      "  removeMembers: [{ computer: OLDSQL }]\n",
      `  removeServicePrincipalNames: [MSSQLSvc/sql1.company.local:1433]
  principalsAllowedToRetrieveManagedPassword: [{ group: sql-hosts }]
  principalsPolicy: additive
  removePrincipals: [{ computer: OLDSQL }]
`,
    );
    const plan = await cli(dc, "plan", second);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain(
      "~ servicePrincipalName: [HTTP/sqlreports.company.local, MSSQLSvc/sql1.company.local, MSSQLSvc/sql1.company.local:1433] → [HTTP/sqlreports.company.local, MSSQLSvc/sql1.company.local]",
    );
    // SQL2 is named by its DN: the repository does not name it, so observe did not read it.
    const sql2 = `CN=SQL2,CN=Computers,${dc.baseDn}`;
    expect(plan.stdout).toContain(`~ member: [${sql2}, OLDSQL$, SQL1$] → [${sql2}, SQL1$]`);
    expect(plan.stdout).toContain("~ msDS-GroupMSAMembership: [OLDSQL$, SQL-Hosts] → [SQL-Hosts]");
    expect((await cli(dc, "apply", second)).code).toBe(0);

    const account = await search("(sAMAccountName=gMSA-SQL1$)", "servicePrincipalName", "msDS-GroupMSAMembership");
    expect(text(account, "servicePrincipalName").sort()).toEqual([
      "HTTP/sqlreports.company.local",
      "MSSQLSvc/sql1.company.local",
    ]);
    const sd = decodeSecurityDescriptor(ldif(account, "msDS-GroupMSAMembership")[0]!);
    expect(sd.aces.map((a) => a.sid)).toEqual([await sidOf("(sAMAccountName=SQL-Hosts)")]);
    const members = text(await search("(sAMAccountName=SQL-Hosts)", "member"), "member");
    expect(members.map((m) => m.split(",")[0]).sort()).toEqual(["CN=SQL1", "CN=SQL2"]);
    expect((await cli(dc, "plan", second)).code).toBe(0);
  });

  it("a gMSA disabled by hand is reported and enabled again; enabled: false disables it", async () => {
    const dn = `CN=gMSA-Batch,CN=Managed Service Accounts,${dc.baseDn}`;
    const account = (enabled: string): string =>
      repo(`${HEADER}kind: GroupManagedServiceAccount
metadata: { name: batch }
spec:
  accountName: gMSA-Batch
  dnsHostName: batch.company.local
  principalsAllowedToRetrieveManagedPassword: [{ computer: SQL1 }]
${enabled}`);
    const uac = async (): Promise<string[]> =>
      text(await search("(sAMAccountName=gMSA-Batch$)", "userAccountControl"), "userAccountControl");
    const enabled = account("");
    expect((await cli(dc, "apply", enabled)).code).toBe(0);
    expect(await uac()).toEqual(["4096"]);

    await modify(`dn: ${dn}`, "changetype: modify", "replace: userAccountControl", "userAccountControl: 4098");
    const plan = await cli(dc, "plan", enabled);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('~ userAccountControl: "4098 (disabled)" → "4096 (enabled)"');
    expect((await cli(dc, "apply", enabled)).code).toBe(0);
    expect(await uac()).toEqual(["4096"]);

    const disabled = account("  enabled: false\n");
    expect((await cli(dc, "apply", disabled)).code).toBe(0);
    expect(await uac()).toEqual(["4098"]);
    // The objects of the test before are only prune candidates here; this account has converged.
    const again = await cli(dc, "plan", disabled);
    expect(again.stdout).toContain("deleted only with --prune");
    expect(again.stdout).not.toContain("GroupManagedServiceAccount/batch");
  });

  it("an empty encryption list needs its opt-in, creates the gMSA without the attribute and clears it when set by hand", async () => {
    const dn = `CN=gMSA-Legacy,CN=Managed Service Accounts,${dc.baseDn}`;
    const account = (optIn: string): string =>
      repo(`${HEADER}kind: GroupManagedServiceAccount
metadata: { name: legacy }
spec:
  accountName: gMSA-Legacy
  dnsHostName: legacy.company.local
  principalsAllowedToRetrieveManagedPassword: [{ computer: SQL1 }]
  kerberosEncryptionTypes: []
${optIn}`);
    const types = async (): Promise<string[]> =>
      text(
        await search("(sAMAccountName=gMSA-Legacy$)", "msDS-SupportedEncryptionTypes"),
        "msDS-SupportedEncryptionTypes",
      );

    const refused = await cli(dc, "apply", account(""));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /:8:\d+: spec\.kerberosEncryptionTypes: an empty list clears msDS-SupportedEncryptionTypes/,
    );
    expect(text(await search("(sAMAccountName=gMSA-Legacy$)", "cn"), "cn")).toEqual([]);

    const cleared = account("  allowDefaultEncryptionTypes: true\n");
    expect((await cli(dc, "apply", cleared)).code).toBe(0);
    expect(await types()).toEqual([]);
    expect(text(await search("(sAMAccountName=gMSA-Legacy$)", "cn"), "cn")).toEqual(["gMSA-Legacy"]);

    await modify(
      `dn: ${dn}`,
      "changetype: modify",
      "replace: msDS-SupportedEncryptionTypes",
      "msDS-SupportedEncryptionTypes: 24",
    );
    const plan = await cli(dc, "plan", cleared);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain("msDS-SupportedEncryptionTypes");
    expect((await cli(dc, "apply", cleared)).code).toBe(0);
    expect(await types()).toEqual([]);
    expect((await cli(dc, "plan", cleared)).stdout).not.toContain("GroupManagedServiceAccount/legacy");
  });

  it("any principal reads the password and joins a group: user, gMSA, SID and DN, found in one search", async () => {
    await dc.ldap("ldapadd", [], {
      input: [`dn: CN=Jane Admin,CN=Users,${dc.baseDn}`, "objectClass: user", "sAMAccountName: jadmin", ""].join("\n"),
    });
    const web = `${HEADER}kind: GroupManagedServiceAccount
metadata: { name: web }
spec:
  accountName: gMSA-Web
  dnsHostName: web.company.local
  principalsAllowedToRetrieveManagedPassword: [{ computer: SQL1 }]
`;
    expect((await cli(dc, "apply", repo(web))).code).toBe(0);
    const sql2Sid = await sidOf("(sAMAccountName=SQL2$)");
    const everyKind = repo(`${web}---
${HEADER}kind: ADGroup
metadata: { name: app-admins }
spec:
  accountName: App-Admins
  members: [{ user: jadmin }, { serviceAccount: web }, { sid: ${sql2Sid} }]
---
${HEADER}kind: GroupManagedServiceAccount
metadata: { name: app }
spec:
  accountName: gMSA-App
  dnsHostName: app.company.local
  principalsAllowedToRetrieveManagedPassword:
    - user: jadmin
    - serviceAccount: gMSA-Web
    - sid: ${sql2Sid}
    - dn: CN=OLDSQL,CN=Computers,${dc.baseDn}
`);
    const applied = await cli(dc, "apply", everyKind);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);

    const members = text(await search("(sAMAccountName=App-Admins)", "member"), "member");
    expect(members.map((m) => m.split(",")[0]).sort()).toEqual(["CN=Jane Admin", "CN=SQL2", "CN=gMSA-Web"]);
    const account = await search("(sAMAccountName=gMSA-App$)", "msDS-GroupMSAMembership");
    const sd = decodeSecurityDescriptor(ldif(account, "msDS-GroupMSAMembership")[0]!);
    const expected = [
      await sidOf("(sAMAccountName=jadmin)"),
      await sidOf("(sAMAccountName=gMSA-Web$)"),
      sql2Sid,
      await sidOf("(sAMAccountName=OLDSQL$)"),
    ];
    expect(sd.aces.map((a) => a.sid).sort()).toEqual(expected.sort());
    const again = await cli(dc, "plan", everyKind);
    expect(again.stdout).not.toContain("GroupManagedServiceAccount/app");
    expect(again.stdout).not.toContain("ADGroup/app-admins");
  });

  it("a new accountName renames the account in place: same objectSid and objectGUID, new sAMAccountName and CN", async () => {
    const named = (accountName: string): string =>
      repo(`${HEADER}kind: GroupManagedServiceAccount
metadata: { name: reports-engine }
spec:
  accountName: ${accountName}
  dnsHostName: engine.company.local
  principalsAllowedToRetrieveManagedPassword: [{ computer: SQL1 }]
`);
    const identity = async (filter: string): Promise<string[]> => {
      const entry = await search(filter, "objectSid", "objectGUID", "cn", "adminDisplayName");
      return [...ldif(entry, "objectSid"), ...ldif(entry, "objectGUID")].map((b) => b.toString("hex"));
    };
    expect((await cli(dc, "apply", named("gMSA-Engine1"))).code).toBe(0);
    const before = await identity("(sAMAccountName=gMSA-Engine1$)");
    expect(before).toHaveLength(2);

    const renamed = named("gMSA-Engine2");
    const plan = await cli(dc, "plan", renamed);
    expect(plan.stdout).toContain('~ sAMAccountName: "gMSA-Engine1$" → "gMSA-Engine2$"');
    expect(plan.stdout).not.toContain("+ GroupManagedServiceAccount/reports-engine");
    // Not a prune candidate either: the object still belongs to a resource in Git.
    expect(plan.stdout).not.toContain("GroupManagedServiceAccount/gmsa-engine1");
    const applied = await cli(dc, "apply", renamed);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);

    expect(await identity("(sAMAccountName=gMSA-Engine2$)")).toEqual(before);
    expect(await identity("(sAMAccountName=gMSA-Engine1$)")).toEqual([]);
    const entry = await search("(sAMAccountName=gMSA-Engine2$)", "cn");
    expect(text(entry, "cn")).toEqual(["gMSA-Engine2"]);
    expect((await cli(dc, "plan", renamed)).stdout).not.toContain("GroupManagedServiceAccount/reports-engine");
  });
});
