// What a person who may write to AD, but holds no ownership key, can make the controller do,
// tried against a real Samba DC with the real plan and apply commands. Values come from AD:
// whatever an attacker puts there reaches the plan a reviewer reads.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ldifText as text } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { dcCommand } from "./support/cli.ts";

const examples = join(import.meta.dirname, "..", "examples");
const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

/** Characters that act on a terminal or reorder what a reviewer sees: none may reach the output. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

describe("a directory an attacker has written to", () => {
  let dc: Dc;
  let repo: string;

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
    // The examples, with the SPN list owned by Git (exact), so that SPNs from AD are shown.
    repo = mkdtempSync(join(tmpdir(), "gmsa-hostile-"));
    cpSync(examples, repo, { recursive: true });
    writeFileSync(
      join(repo, "service1", "account.yaml"),
      readFileSync(join(examples, "service1", "account.yaml"), "utf8") + "  servicePrincipalNamesPolicy: exact\n",
    );
    const applied = await dcCommand(dc, "apply", repo);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await dc?.stop();
    rmSync(repo, { recursive: true, force: true });
  });

  it("escape sequences, newlines and bidi overrides written to AD reach neither the terminal nor the PR comment", async () => {
    const groupDn = `CN=GMSA-Service1-Hosts,CN=Users,${dc.baseDn}`;
    const gmsaDn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    // A group whose name clears the screen, added to a group whose membership Git owns; an SPN
    // that closes the Markdown code block and writes its own summary; a description with a C1
    // CSI, a right-to-left override and DEL.
    const evilDn = `CN=evil\n\u001b[2J\u001b[1APlan: 0 to create,CN=Users,${dc.baseDn}`;
    await dc.ldap("ldapadd", [], {
      input: [`dn:: ${b64(evilDn)}`, "objectClass: group", "sAMAccountName: evil1", ""].join("\n"),
    });
    const stored = text(await dc.ldap("ldapsearch", ["-b", dc.baseDn, "(sAMAccountName=evil1)", "dn"]), "dn")[0]!;
    await dc.ldap("ldapmodify", [], {
      input: [
        `dn: ${groupDn}`,
        "changetype: modify",
        "add: member",
        `member:: ${b64(stored)}`,
        "",
        `dn: ${gmsaDn}`,
        "changetype: modify",
        "add: servicePrincipalName",
        `servicePrincipalName:: ${b64("HTTP/x\n```\n\n**Plan: 0 to delete** [approve](mailto:a@evil.example)\n```diff")}`,
        "-",
        "replace: description",
        `description:: ${b64("a\u009b2Jb\u202eevil\u007f")}`,
        "",
      ].join("\n"),
    });

    const plan = await dcCommand(dc, "plan", repo);
    expect(plan.code).toBe(2);
    expect(plan.stdout).not.toMatch(UNSAFE);
    // Every value stays on its line: the only summary is the controller's own, on the last line.
    expect(plan.stdout.match(/^[ \t]*\**Plan:/gm)).toEqual(["Plan:"]);
    expect(plan.stdout).toContain("\\u001b[2J");
    expect(plan.stdout).toContain("\\u202e");

    const markdown = await dcCommand(dc, "plan", repo, "--format", "markdown");
    expect(markdown.stdout).not.toMatch(UNSAFE);
    // The code block is the controller's: opened and closed once, nothing outside it from AD.
    expect(markdown.stdout.match(/^```.*$/gm)).toEqual(["```diff", "```"]);
    expect(markdown.stdout).not.toMatch(/^\*\*Plan: 0 to delete/m);

    const applied = await dcCommand(dc, "apply", repo);
    expect(applied.stdout).not.toMatch(UNSAFE);
  });

  it("a genuine marker copied onto other objects, in place or moved into the managed container, makes none of them ours", async () => {
    const genuine = text(
      await dc.ldap("ldapsearch", ["-b", dc.baseDn, "(sAMAccountName=GMSA-Reports-Hosts)", "adminDescription"]),
      "adminDescription",
    )[0]!;
    expect(genuine).toMatch(/^gmsa-gitops:v2:default:/);
    // Beside the genuine one (same container), and made elsewhere then moved in; the same
    // marker with a trailing space, and under a look-alike owner id.
    const ou = `OU=Attacker,${dc.baseDn}`;
    const variants: Array<[string, string]> = [
      ["Copied-Beside", genuine],
      ["Copied-Moved", genuine],
      ["Copied-Space", `${genuine} `],
      ["Copied-Owner", genuine.replace(":default:", ":Default:")],
    ];
    await dc.ldap("ldapadd", [], {
      input: [
        `dn: ${ou}\nobjectClass: organizationalUnit\n`,
        ...variants.map(([name, marker]) =>
          [
            `dn: CN=${name},${name === "Copied-Moved" ? ou : `CN=Users,${dc.baseDn}`}`,
            "objectClass: group",
            `sAMAccountName: ${name}`,
            `adminDescription:: ${b64(marker)}`,
            "",
          ].join("\n"),
        ),
      ].join("\n"),
    });
    await dc.ldap("ldapmodify", [], {
      input: [
        `dn: CN=Copied-Moved,${ou}`,
        "changetype: modrdn",
        "newrdn: CN=Copied-Moved",
        "deleteoldrdn: 1",
        `newsuperior: CN=Users,${dc.baseDn}`,
        "",
      ].join("\n"),
    });
    const usns = async (): Promise<string[]> =>
      text(
        await dc.ldap("ldapsearch", ["-b", `CN=Users,${dc.baseDn}`, "(sAMAccountName=Copied-*)", "uSNChanged"]),
        "uSNChanged",
      );
    const before = await usns();
    expect(before).toHaveLength(4);

    // Prune with a budget for all of them: none is a candidate.
    const pruned = await dcCommand(dc, "apply", repo, "--prune", "--deletion-budget", "100");
    expect(pruned.stdout).not.toMatch(/copied-/i);
    // Named in Git, without --adopt: conflicts, never written.
    const named = mkdtempSync(join(tmpdir(), "gmsa-hostile-"));
    try {
      writeFileSync(
        join(named, "g.yaml"),
        variants
          .map(
            ([name]) =>
              `apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: { name: ${name.toLowerCase()} }\nspec: { accountName: ${name}, description: taken }\n`,
          )
          .join("---\n"),
      );
      const plan = await dcCommand(dc, "plan", named);
      for (const [name] of variants) expect(plan.stdout).toContain(`! ADGroup/${name.toLowerCase()}`);
      expect(plan.stdout.match(/NotOwned/g)).toHaveLength(3);
      expect(plan.stdout).toContain("OwnedByOtherController");
      await dcCommand(dc, "apply", named);
    } finally {
      rmSync(named, { recursive: true, force: true });
    }
    expect(await usns()).toEqual(before);
  });

  // A DC with the DNS server role has DnsAdmins (its members load code into the DNS service on
  // every DC) and DnsUpdateProxy in CN=Users, with ordinary RIDs, neither critical nor adminCount=1.
  it("DnsAdmins and DnsUpdateProxy are protected: --adopt changes neither", async () => {
    await dc.ldap("ldapadd", [], {
      input: ["DnsAdmins", "DnsUpdateProxy"]
        .map((name) =>
          [
            `dn: CN=${name},CN=Users,${dc.baseDn}`,
            "objectClass: group",
            `sAMAccountName: ${name}`,
            "groupType: -2147483644",
            "",
          ].join("\n"),
        )
        .join("\n"),
    });
    const usns = async (): Promise<string[]> =>
      text(
        await dc.ldap("ldapsearch", [
          "-b",
          dc.baseDn,
          "(|(sAMAccountName=DnsAdmins)(sAMAccountName=DnsUpdateProxy))",
          "uSNChanged",
        ]),
        "uSNChanged",
      );
    const before = await usns();
    expect(before).toHaveLength(2);
    const named = mkdtempSync(join(tmpdir(), "gmsa-hostile-"));
    try {
      writeFileSync(
        join(named, "g.yaml"),
        ["DnsAdmins", "DnsUpdateProxy"]
          .map(
            (name) =>
              `apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: { name: ${name.toLowerCase()} }\nspec: { accountName: ${name}, scope: DomainLocal, membership: exact, members: [ { computer: WEB1 } ] }\n`,
          )
          .join("---\n"),
      );
      const plan = await dcCommand(dc, "plan", named, "--adopt");
      expect(plan.stdout).toMatch(/! ADGroup\/dnsadmins[^\n]*\n\s+! protected: CN=DnsAdmins,CN=Users,[^\n]*DNS/);
      expect(plan.stdout).toMatch(/! ADGroup\/dnsupdateproxy[^\n]*\n\s+! protected: /);
      const applied = await dcCommand(dc, "apply", named, "--adopt");
      expect(applied.code).toBe(4);
    } finally {
      rmSync(named, { recursive: true, force: true });
    }
    expect(await usns()).toEqual(before);
  });
});
