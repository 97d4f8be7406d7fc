// ADGroup renames in place (issue 13, item 6) against a real Samba AD DC, checked through
// ldapsearch: the same objectGUID and objectSid under the new name, the old name gone, and the
// hosts allowed through the group still served the gMSA password by the DC.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSecurityDescriptor, parseSid } from "../controller/directory/index.ts";
import { ldifText as text, ldifValues as ldif } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { directoryChecks, HEADER, manifestRepos } from "./support/directory-checks.ts";
import { dcCommand as cli } from "./support/cli.ts";

const WEB1_PASSWORD = "Host-Pass-WEB1-1!";

describe("ADGroup renames against Samba", () => {
  let dc: Dc;
  let web1: string;
  const { search, modify } = directoryChecks(() => dc);
  const { repo, removeAll } = manifestRepos("gmsa-group-rename-");

  beforeAll(async () => {
    dc = await startDc();
    web1 = await dc.addComputer("WEB1", WEB1_PASSWORD);
    await dc.addComputer("WEB2", "Host-Pass-WEB2-1!");
  });
  afterAll(async () => {
    await dc?.stop();
    removeAll();
  });

  /** The hosts' group under `accountName`, a group holding it, and two gMSAs; `reportsReaders` is the second one's reader list. */
  const revision = (accountName: string, reportsReaders: string, groupLines = ""): string =>
    repo(`${HEADER}kind: ADGroup
metadata: { name: web-hosts }
spec:
  accountName: ${accountName}
  members: [{ computer: WEB1 }]
  membership: exact
${groupLines}---
${HEADER}kind: ADGroup
metadata: { name: all-hosts }
spec:
  accountName: All-Web-Hosts
  members: [{ group: web-hosts }]
  membership: exact
---
${HEADER}kind: GroupManagedServiceAccount
metadata: { name: web }
spec:
  accountName: gMSA-Web
  dnsHostName: web.company.local
  principalsAllowedToRetrieveManagedPassword: [{ group: web-hosts }]
---
${HEADER}kind: GroupManagedServiceAccount
metadata: { name: reports }
spec:
  accountName: gMSA-Reports
  dnsHostName: reports.company.local
  principalsAllowedToRetrieveManagedPassword: [${reportsReaders}]
`);

  /** objectGUID and objectSid (hex) of the object the filter finds; [] when there is none. */
  const identity = async (filter: string): Promise<string[]> => {
    const entry = await search(filter, "objectSid", "objectGUID");
    return [...ldif(entry, "objectSid"), ...ldif(entry, "objectGUID")].map((b) => b.toString("hex"));
  };
  /** The SIDs a gMSA's msDS-GroupMSAMembership allows, decoded. */
  const readers = async (account: string): Promise<string[]> => {
    const [sd] = ldif(
      await search(`(sAMAccountName=${account}$)`, "msDS-GroupMSAMembership"),
      "msDS-GroupMSAMembership",
    );
    return sd ? decodeSecurityDescriptor(sd).aces.map((a) => a.sid) : [];
  };
  /** Whether the DC serves the gMSA's password to WEB1, bound as WEB1$ (allowed through the group). */
  const web1Reads = async (account: string): Promise<boolean> => {
    const out = await dc.ldap(
      "ldapsearch",
      ["-LLL", "-b", dc.baseDn, `(sAMAccountName=${account}$)`, "msDS-ManagedPassword"],
      { bindDn: web1, password: WEB1_PASSWORD },
    );
    return /^msDS-ManagedPassword::/m.test(out);
  };

  it("a new accountName renames the group in place; readers, memberships and a reader added in the same commit keep working", async () => {
    const first = revision("Web-Hosts-1", "{ computer: WEB2 }");
    const applied = await cli(dc, "apply", first);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    const before = await identity("(sAMAccountName=Web-Hosts-1)");
    expect(before).toHaveLength(2);
    const groupSid = parseSid(ldif(await search("(sAMAccountName=Web-Hosts-1)", "objectSid"), "objectSid")[0]!);
    expect(await web1Reads("gMSA-Web")).toBe(true);
    expect(await web1Reads("gMSA-Reports")).toBe(false);

    // One commit: the group renamed, and the reports account now read by it, named by its resource.
    const second = revision("Web-Hosts-2", "{ computer: WEB2 }, { group: web-hosts }");
    const plan = await cli(dc, "plan", second, "--prune");
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('~ sAMAccountName: "Web-Hosts-1" → "Web-Hosts-2"');
    expect(plan.stdout).not.toContain("+ ADGroup/web-hosts");
    expect(plan.stdout).not.toContain("ADGroup/web-hosts-1");
    expect(plan.stdout).not.toContain("All-Web-Hosts");
    const renamed = await cli(dc, "apply", second, "--prune");
    expect(renamed.stderr).toBe("");
    expect(renamed.code).toBe(0);

    expect(await identity("(sAMAccountName=Web-Hosts-2)")).toEqual(before);
    expect(await identity("(sAMAccountName=Web-Hosts-1)")).toEqual([]);
    const group = await search("(sAMAccountName=Web-Hosts-2)", "cn", "member");
    expect(text(group, "cn")).toEqual(["Web-Hosts-2"]);
    expect(text(group, "member")).toEqual([web1]);
    const parent = await search("(sAMAccountName=All-Web-Hosts)", "member");
    expect(text(parent, "member")).toEqual([`CN=Web-Hosts-2,CN=Users,${dc.baseDn}`]);
    expect(await readers("gMSA-Web")).toEqual([groupSid]);
    expect((await readers("gMSA-Reports")).sort()).toContain(groupSid);
    // The DC's own answer: WEB1, a member of the renamed group, reads both passwords.
    expect(await web1Reads("gMSA-Web")).toBe(true);
    expect(await web1Reads("gMSA-Reports")).toBe(true);
    const again = await cli(dc, "plan", second, "--prune");
    expect(again.stdout).toContain("No changes.");
    expect(again.code).toBe(0);
  });

  it("a group renamed by hand in AD is renamed back under the same SID, neither duplicated nor pruned", async () => {
    const second = revision("Web-Hosts-2", "{ computer: WEB2 }, { group: web-hosts }");
    expect((await cli(dc, "apply", second)).code).toBe(0); // a no-op after the test above
    const before = await identity("(sAMAccountName=Web-Hosts-2)");
    expect(before).toHaveLength(2);
    await modify(
      `dn: CN=Web-Hosts-2,CN=Users,${dc.baseDn}`,
      "changetype: modify",
      "replace: sAMAccountName",
      "sAMAccountName: Web-Hosts-Hand",
    );
    const plan = await cli(dc, "plan", second, "--prune");
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('~ sAMAccountName: "Web-Hosts-Hand" → "Web-Hosts-2"');
    expect(plan.stdout).not.toContain("PruneRefused");
    expect(plan.stdout).not.toContain("+ ADGroup/web-hosts");
    const applied = await cli(dc, "apply", second, "--prune");
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(await identity("(sAMAccountName=Web-Hosts-2)")).toEqual(before);
    expect(await identity("(sAMAccountName=Web-Hosts-Hand)")).toEqual([]);
    expect(await identity("(&(objectClass=group)(sAMAccountName=Web-Hosts*))")).toHaveLength(2);
    expect(await web1Reads("gMSA-Web")).toBe(true);
  });

  it("with allowReplacement: true a new accountName recreates the group: a new SID, given to the repository's readers and groups", async () => {
    const reader = "{ computer: WEB2 }, { group: web-hosts }";
    const before = await identity("(sAMAccountName=Web-Hosts-2)");
    expect(before).toHaveLength(2);
    const third = revision("Web-Hosts-3", reader, "  allowReplacement: true\n");
    const plan = await cli(dc, "plan", third);
    expect(plan.code).toBe(2);
    // One resource: the old group's deletion and the new one's creation, said as such.
    expect(plan.stdout).toContain(`- distinguishedName: "CN=Web-Hosts-2,CN=Users,${dc.baseDn}"`);
    expect(plan.stdout).toContain('+ sAMAccountName: "Web-Hosts-3"');
    expect(plan.stdout).toContain("new SID");
    const applied = await cli(dc, "apply", third);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);

    expect(await identity("(sAMAccountName=Web-Hosts-2)")).toEqual([]);
    const after = await identity("(sAMAccountName=Web-Hosts-3)");
    expect(after).toHaveLength(2);
    expect(after[0]).not.toBe(before[0]);
    const newSid = parseSid(ldif(await search("(sAMAccountName=Web-Hosts-3)", "objectSid"), "objectSid")[0]!);
    expect(await readers("gMSA-Web")).toEqual([newSid]);
    const parent = await search("(sAMAccountName=All-Web-Hosts)", "member");
    expect(text(parent, "member")).toEqual([`CN=Web-Hosts-3,CN=Users,${dc.baseDn}`]);
    expect(await web1Reads("gMSA-Web")).toBe(true);
    expect((await cli(dc, "plan", third)).code).toBe(0);
  });
});
