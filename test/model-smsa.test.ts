// Standalone managed service accounts (issue 13 item 7) against a real Samba AD DC: created as
// New-ADServiceAccount -RestrictToSingleComputer does, linked to their one computer as
// Add-ADComputerServiceAccount does, the link kept as drift, renamed in place, and pruned with
// the link removed first (Remove-ADComputerServiceAccount). Read back with ldapsearch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ldifText as text, ldifValues as ldif } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { directoryChecks, HEADER, manifestRepos } from "./support/directory-checks.ts";
import { dcCommand as cli } from "./support/cli.ts";

describe("standalone managed service accounts against Samba", () => {
  let dc: Dc;
  const { search, modify } = directoryChecks(() => dc);
  const { repo, removeAll } = manifestRepos("gmsa-smsa-");
  const sql1 = (): string => `CN=SQL1,CN=Computers,${dc.baseDn}`;
  const sql2 = (): string => `CN=SQL2,CN=Computers,${dc.baseDn}`;
  // A group keeps every revision from looking like "delete everything", which prune refuses.
  const keep = `${HEADER}kind: ADGroup\nmetadata: { name: keep }\nspec:\n  accountName: Keep-Group\n`;
  const smsa = (spec: string): string =>
    repo(`${keep}---
${HEADER}kind: ManagedServiceAccount
metadata: { name: sql1-svc }
spec:
${spec}`);
  const attribute = async (filter: string, name: string): Promise<string[]> => text(await search(filter, name), name);

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SQL1", "SQL2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  });
  afterAll(async () => {
    await dc?.stop();
    removeAll();
  });

  it("creates the sMSA with the attributes New-ADServiceAccount writes and links it to its computer; a link changed by hand is put back", async () => {
    const first = smsa(`  accountName: MSA-SQL1
  computer: SQL1
  servicePrincipalNames: [MSSQLSvc/sql1.company.local:1433]
  kerberosEncryptionTypes: [AES256]
  description: SQL Server on SQL1
`);
    const plan = await cli(dc, "plan", first);
    expect(plan.stdout).toContain("+ msDS-HostServiceAccountBL: [SQL1]");
    const applied = await cli(dc, "apply", first);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);

    const dn = `CN=MSA-SQL1,CN=Managed Service Accounts,${dc.baseDn}`;
    const entry = await search(
      "(sAMAccountName=MSA-SQL1$)",
      "objectClass",
      "userAccountControl",
      "servicePrincipalName",
      "msDS-SupportedEncryptionTypes",
      "description",
      "pwdLastSet",
      "msDS-HostServiceAccountBL",
      "adminDescription",
      "distinguishedName",
    );
    expect(text(entry, "distinguishedName")).toEqual([dn]);
    expect(text(entry, "objectClass")).toContain("msDS-ManagedServiceAccount");
    expect(text(entry, "userAccountControl")).toEqual(["4096"]); // WORKSTATION_TRUST_ACCOUNT, enabled
    expect(text(entry, "servicePrincipalName")).toEqual(["MSSQLSvc/sql1.company.local:1433"]);
    expect(text(entry, "msDS-SupportedEncryptionTypes")).toEqual(["16"]);
    expect(text(entry, "description")).toEqual(["SQL Server on SQL1"]);
    // No password until SQL1 runs Install-ADServiceAccount: that is the host's job, not ours.
    expect(text(entry, "pwdLastSet")).toEqual(["0"]);
    expect(text(entry, "adminDescription")[0]).toMatch(/^gmsa-gitops/);
    expect(text(entry, "msDS-HostServiceAccountBL")).toEqual([sql1()]);
    expect(await attribute("(sAMAccountName=SQL1$)", "msDS-HostServiceAccount")).toEqual([dn]);
    expect((await cli(dc, "plan", first)).code).toBe(0);

    // By hand: the link moved from SQL1 to SQL2, the account disabled, the description changed.
    await modify(
      `dn: ${sql1()}`,
      "changetype: modify",
      "delete: msDS-HostServiceAccount",
      `msDS-HostServiceAccount: ${dn}`,
      "",
      `dn: ${sql2()}`,
      "changetype: modify",
      "add: msDS-HostServiceAccount",
      `msDS-HostServiceAccount: ${dn}`,
      "",
      `dn: ${dn}`,
      "changetype: modify",
      "replace: userAccountControl",
      "userAccountControl: 4098",
      "-",
      "replace: description",
      "description: changed by hand",
    );
    const drifted = await cli(dc, "plan", first);
    expect(drifted.code).toBe(2);
    expect(drifted.stdout).toContain(`~ msDS-HostServiceAccountBL: [${sql2()}] → [SQL1]`);
    expect(drifted.stdout).toContain('~ userAccountControl: "4098 (disabled)" → "4096 (enabled)"');
    const fixed = await cli(dc, "apply", first);
    expect(fixed.stderr).toBe("");
    expect(fixed.code).toBe(0);
    expect(await attribute("(sAMAccountName=SQL1$)", "msDS-HostServiceAccount")).toEqual([dn]);
    expect(await attribute("(sAMAccountName=SQL2$)", "msDS-HostServiceAccount")).toEqual([]);
    expect(await attribute("(sAMAccountName=MSA-SQL1$)", "msDS-HostServiceAccountBL")).toEqual([sql1()]);
    expect(await attribute("(sAMAccountName=MSA-SQL1$)", "userAccountControl")).toEqual(["4096"]);
    expect(await attribute("(sAMAccountName=MSA-SQL1$)", "description")).toEqual(["SQL Server on SQL1"]);
    expect((await cli(dc, "plan", first)).code).toBe(0);

    // A new accountName renames in place: same objectGUID and objectSid, the link follows.
    const guid = ldif(await search("(sAMAccountName=MSA-SQL1$)", "objectGUID"), "objectGUID")[0];
    const renamed = smsa(`  accountName: MSA-SQL1B
  computer: SQL1
  servicePrincipalNames: [MSSQLSvc/sql1.company.local:1433]
  kerberosEncryptionTypes: [AES256]
  description: SQL Server on SQL1
`);
    const rename = await cli(dc, "apply", renamed);
    expect(rename.stderr).toBe("");
    expect(rename.code).toBe(0);
    const newDn = `CN=MSA-SQL1B,CN=Managed Service Accounts,${dc.baseDn}`;
    expect(ldif(await search("(sAMAccountName=MSA-SQL1B$)", "objectGUID"), "objectGUID")[0]).toEqual(guid);
    expect(await attribute("(sAMAccountName=SQL1$)", "msDS-HostServiceAccount")).toEqual([newDn]);
    expect((await cli(dc, "plan", renamed)).code).toBe(0);

    // A new path moves it, keeping its objectGUID; the computer's link follows the object.
    await dc.ldap("ldapadd", [], {
      input: [`dn: OU=SQL,${dc.baseDn}`, "objectClass: organizationalUnit", ""].join("\n"),
    });
    const moved = smsa(`  accountName: MSA-SQL1B
  computer: SQL1
  servicePrincipalNames: [MSSQLSvc/sql1.company.local:1433]
  kerberosEncryptionTypes: [AES256]
  description: SQL Server on SQL1
  path: OU=SQL
`);
    const move = await cli(dc, "apply", moved);
    expect(move.stderr).toBe("");
    expect(move.code).toBe(0);
    const movedDn = `CN=MSA-SQL1B,OU=SQL,${dc.baseDn}`;
    expect(ldif(await search("(sAMAccountName=MSA-SQL1B$)", "objectGUID"), "objectGUID")[0]).toEqual(guid);
    expect(await attribute("(sAMAccountName=SQL1$)", "msDS-HostServiceAccount")).toEqual([movedDn]);
    expect((await cli(dc, "plan", moved)).code).toBe(0);

    // A computer that does not exist stalls the resource with the reason, and nothing is written.
    const nowhere = smsa("  accountName: MSA-SQL1B\n  computer: SQL9\n  description: moved to SQL9\n  path: OU=SQL\n");
    const stalled = await cli(dc, "apply", nowhere);
    expect(stalled.code).not.toBe(0);
    expect(stalled.stdout).toContain("computer SQL9 not found in AD");
    expect(await attribute("(sAMAccountName=MSA-SQL1B$)", "description")).toEqual(["SQL Server on SQL1"]);
    expect(await attribute("(sAMAccountName=SQL1$)", "msDS-HostServiceAccount")).toEqual([movedDn]);

    // Pruned once it leaves Git: the computer lets go of it first, then the account is deleted.
    const pruned = await cli(dc, "apply", repo(keep), "--prune");
    expect(pruned.stderr).toBe("");
    expect(pruned.code).toBe(0);
    expect(await attribute("(sAMAccountName=MSA-SQL1B$)", "distinguishedName")).toEqual([]);
    expect(await attribute("(sAMAccountName=SQL1$)", "msDS-HostServiceAccount")).toEqual([]);
  });

  it("an sMSA made by hand with the managed name is a conflict: never changed, linked or pruned", async () => {
    const dn = `CN=MSA-Hand,CN=Managed Service Accounts,${dc.baseDn}`;
    await dc.ldap("ldapadd", [], {
      input: [
        `dn: ${dn}`,
        "objectClass: msDS-ManagedServiceAccount",
        "sAMAccountName: MSA-Hand$",
        "userAccountControl: 4096",
        "",
      ].join("\n"),
    });
    const manifests = smsa("  accountName: MSA-Hand\n  computer: SQL2\n  description: not ours\n");
    const applied = await cli(dc, "apply", manifests, "--prune");
    expect(applied.stdout).toContain("NotOwned");
    expect(await attribute("(sAMAccountName=MSA-Hand$)", "description")).toEqual([]);
    expect(await attribute("(sAMAccountName=SQL2$)", "msDS-HostServiceAccount")).toEqual([]);
    const pruned = await cli(dc, "apply", repo(keep), "--prune");
    expect(pruned.code).toBe(0);
    expect(await attribute("(sAMAccountName=MSA-Hand$)", "distinguishedName")).toEqual([dn]);
  });
});
