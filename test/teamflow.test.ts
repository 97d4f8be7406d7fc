// The team's view of a plan against a real Samba AD DC: grouped by team folder and kind,
// coloured only when asked, narrowed by --target (apply too, checked through ldapsearch), and
// `explain` for one resource.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../controller/cli/main.ts";
import { ldifText as text } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";

const examples = join(import.meta.dirname, "..", "examples");

async function cli(dc: Dc, argv: string[], color?: boolean) {
  let stdout = "";
  let stderr = "";
  const dcFlags = ["--ldap-url", dc.url, "--bind-dn", dc.adminDn, "--bind-password-file", dc.passwordFile];
  const code = await main([...argv, ...dcFlags, "--ca-file", dc.caFile], {
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    ...(color === undefined ? {} : { color }),
  });
  return { code, stdout, stderr };
}

const ESC = "\u001b[";

describe("plan for people, --target and explain against Samba", () => {
  let dc: Dc;

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  });
  afterAll(async () => {
    await dc?.stop();
  });

  it("groups the text plan by team folder, then kind, without colour codes unless asked", async () => {
    const r = await cli(dc, ["plan", "--repo", examples]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(2);
    expect(r.stdout).not.toContain(ESC);
    const reports = r.stdout.indexOf("== reports/ (2 resources)");
    const service1 = r.stdout.indexOf("== service1/ (2 resources)");
    expect(reports).toBeGreaterThanOrEqual(0);
    expect(service1).toBeGreaterThan(reports);
    const reportsBlock = r.stdout.slice(reports, service1);
    expect(reportsBlock).toMatch(/-- ADGroup\n\+ ADGroup\/gmsa-reports-hosts /);
    expect(reportsBlock).toMatch(/-- GroupManagedServiceAccount\n\+ GroupManagedServiceAccount\/gmsa-reports /);
    expect(reportsBlock).not.toContain("msa-service1");
    expect(r.stdout.slice(service1)).toContain("+ GroupManagedServiceAccount/msa-service1");

    const coloured = await cli(dc, ["plan", "--repo", examples], true);
    expect(coloured.stdout).toContain(`${ESC}32m+ GroupManagedServiceAccount/msa-service1`);
    expect(coloured.stdout.replaceAll(`${ESC}0m`, "").replace(new RegExp(`${ESC.replace("[", "\\[")}\\d+m`, "g"), "")).toBe(r.stdout);
  });

  it("--target limits the plan and apply to a gMSA and the group it depends on", async () => {
    const plan = await cli(dc, ["plan", "--repo", examples, "--target", "GroupManagedServiceAccount/msa-service1"]);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain("+ GroupManagedServiceAccount/msa-service1");
    expect(plan.stdout).toContain("+ ADGroup/gmsa-service1-hosts");
    expect(plan.stdout).not.toContain("gmsa-reports");
    expect(plan.stdout).toMatch(/Plan: 2 to create, 0 to update, 0 to delete\.\n$/);

    const apply = await cli(dc, ["apply", "--repo", examples, "--target", "groupmanagedserviceaccount/msa-service1"]);
    expect(apply.stderr).toBe("");
    expect(apply.code).toBe(0);
    const accounts = await dc.ldap("ldapsearch", [
      "-b",
      dc.baseDn,
      "-s",
      "sub",
      "(objectClass=msDS-GroupManagedServiceAccount)",
      "sAMAccountName",
    ]);
    expect(text(accounts, "sAMAccountName")).toEqual(["MSA-service1$"]);
    const rest = await cli(dc, ["plan", "--repo", examples]);
    expect(rest.stdout).toMatch(/Plan: 2 to create, 0 to update, 0 to delete\.\n$/);
  });

  it("a --target naming nothing is a usage error that names it", async () => {
    const typo = await cli(dc, ["plan", "--repo", examples, "--target", "ADGroup/gmsa-servce1-hosts"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("--target ADGroup/gmsa-servce1-hosts: no such resource");
    const bad = await cli(dc, ["plan", "--repo", examples, "--target", "Group/x"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("must be KIND/NAME with KIND one of ADGroup, GroupManagedServiceAccount");
  });

  it("explain shows desired vs observed and the conditions of a resource edited by hand", async () => {
    const dn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: edited by hand\n-\n`,
    });
    const r = await cli(dc, ["explain", "GroupManagedServiceAccount/msa-service1", "--repo", examples]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("manifest: service1/account.yaml:");
    expect(r.stdout).toContain(`dn:       ${dn}`);
    expect(r.stdout).toMatch(/Desired \(spec, defaults applied\):\n {2}accountName: MSA-service1/);
    expect(r.stdout).toMatch(/Observed in AD:\n[\s\S]*description: edited by hand/);
    expect(r.stdout).toContain('~ description: "edited by hand" → "Service1 batch jobs and Windows service"');
    expect(r.stdout).toMatch(/Ready {9}False {3}DriftReported: drift reported, not corrected \(plan only\): attribute/);
    expect(r.stdout).toMatch(/Last drift: attribute observed \S+, not corrected/);

    const json = await cli(dc, ["explain", "ADGroup/gmsa-service1-hosts", "--repo", examples, "--format", "json"]);
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      source: { team: string };
      changes: unknown[];
      conditions: { type: string; status: string }[];
    };
    expect(doc.source.team).toBe("service1/");
    expect(doc.changes).toEqual([]);
    expect(doc.conditions.find((c) => c.type === "Ready")?.status).toBe("True");

    const missing = await cli(dc, ["explain", "ADGroup/nope", "--repo", examples]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("ADGroup/nope: no such resource");
  });
});
