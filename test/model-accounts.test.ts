// More of the model real domains need (issue 13), against a real Samba AD DC and checked
// through ldapsearch: principals named by user principal name, outbound-only gMSAs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSecurityDescriptor } from "../controller/directory/index.ts";
import { ldifText as text, ldifValues as ldif } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { dcCommand as cli } from "./support/cli.ts";
import { directoryChecks, HEADER, manifestRepos } from "./support/directory-checks.ts";

describe("service accounts and principals against Samba", () => {
  let dc: Dc;
  const { search, modify, sidOf } = directoryChecks(() => dc);
  const { repo, removeAll } = manifestRepos("gmsa-accounts-");

  beforeAll(async () => {
    dc = await startDc();
    await dc.addComputer("APP1", "Host-Pass-APP1-1!");
  });
  afterAll(async () => {
    await dc?.stop();
    removeAll();
  });

  it("a user named by userPrincipalName reads the password and joins a group; an unknown UPN is reported by name", async () => {
    // The UPN's suffix differs from the domain and its name from sAMAccountName: only a UPN search finds it.
    await dc.ldap("ldapadd", [], {
      input: [
        `dn: CN=Alice Ops,CN=Users,${dc.baseDn}`,
        "objectClass: user",
        "sAMAccountName: aops",
        "userPrincipalName: alice@corp.example",
        "",
      ].join("\n"),
    });
    const manifests = (upn: string): string => `${HEADER}kind: ADGroup
metadata: { name: ops }
spec:
  accountName: App-Ops
  members: [{ user: ${upn} }]
---
${HEADER}kind: GroupManagedServiceAccount
metadata: { name: app }
spec:
  accountName: gMSA-App
  dnsHostName: app.company.local
  principalsAllowedToRetrieveManagedPassword: [{ user: ${upn} }, { computer: APP1 }]
`;
    const dir = repo(manifests("alice@corp.example"));
    const applied = await cli(dc, "apply", dir);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const members = text(await search("(sAMAccountName=App-Ops)", "member"), "member");
    expect(members).toEqual([`CN=Alice Ops,CN=Users,${dc.baseDn}`]);
    const sd = decodeSecurityDescriptor(
      ldif(await search("(sAMAccountName=gMSA-App$)", "msDS-GroupMSAMembership"), "msDS-GroupMSAMembership")[0]!,
    );
    expect(sd.aces.map((a) => a.sid).sort()).toEqual(
      [await sidOf("(sAMAccountName=aops)"), await sidOf("(sAMAccountName=APP1$)")].sort(),
    );
    expect((await cli(dc, "plan", dir)).code).toBe(0);

    const unknown = await cli(dc, "plan", repo(manifests("bob@corp.example")));
    expect(unknown.stdout).toContain("not found in AD: user bob@corp.example");
  });

  it("an outbound-only gMSA is created without dNSHostName; a dNSHostName added by hand is reported and cleared", async () => {
    const dn = `CN=gMSA-Client,CN=Managed Service Accounts,${dc.baseDn}`;
    const dir = repo(`${HEADER}kind: GroupManagedServiceAccount
metadata: { name: client }
spec:
  accountName: gMSA-Client
  restrictToOutboundAuthenticationOnly: true
  principalsAllowedToRetrieveManagedPassword: [{ computer: APP1 }]
`);
    const applied = await cli(dc, "apply", dir);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const read = async (): Promise<string> =>
      search("(sAMAccountName=gMSA-Client$)", "dNSHostName", "servicePrincipalName", "msDS-ManagedPasswordId");
    const account = await read();
    expect(text(account, "dNSHostName")).toEqual([]);
    expect(text(account, "servicePrincipalName")).toEqual([]);
    // Samba generated its managed password: a real gMSA, only without the inbound names.
    expect(ldif(account, "msDS-ManagedPasswordId")).toHaveLength(1);
    // Converged (the first test's objects are reported as left Git; nothing about this one).
    expect((await cli(dc, "plan", dir)).stdout).not.toContain("GroupManagedServiceAccount/client");

    await modify(`dn: ${dn}`, "changetype: modify", "replace: dNSHostName", "dNSHostName: client.company.local");
    const drift = await cli(dc, "plan", dir);
    expect(drift.stdout).toContain('- dNSHostName: "client.company.local"');
    const cleared = await cli(dc, "apply", dir);
    // Samba refuses to replace dNSHostName with nothing (LDAP 1); apply deletes the attribute instead.
    expect(cleared.stdout).toContain("ok      update-gmsa GroupManagedServiceAccount/client");
    expect(cleared.code).toBe(0);
    expect(text(await read(), "dNSHostName")).toEqual([]);
  });
});
