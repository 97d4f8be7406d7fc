// The team's view of a plan against a real Samba AD DC: grouped by team folder and kind,
// coloured only when asked, narrowed by --target (apply too, checked through ldapsearch), and
// `explain` for one resource.
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../controller/cli/main.ts";
import { directoryOpener } from "../controller/clients.ts";
import { loadConfig } from "../controller/config/index.ts";
import { createLogger, startController } from "../controller/main.ts";
import type { DesiredState } from "../controller/manifests/index.ts";
import { loadManifests } from "../controller/manifests/index.ts";
import { WriteLedger } from "../controller/reconcile/attribution.ts";
import { hostMemory } from "../controller/reconcile/hosts.ts";
import type { LastChange } from "../controller/reconcile/model.ts";
import { reconcilePass } from "../controller/reconcile/pass.ts";
import { summarize } from "../controller/reconcile/status.ts";
import { ldifText as text } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { directoryConfig } from "./support/directory.ts";

const examples = join(import.meta.dirname, "..", "examples");

/** The settings that reach the test DC, as flag → value. */
const dcSettings = (dc: Dc): Record<string, string> => ({
  "ldap-url": dc.url,
  "bind-dn": dc.adminDn,
  "bind-password-file": dc.passwordFile,
  "ca-file": dc.caFile,
  "ownership-key-file": dc.ownershipKeyFile,
});

async function cli(dc: Dc, argv: string[], color?: boolean) {
  let stdout = "";
  let stderr = "";
  const dcFlags = Object.entries(dcSettings(dc)).flatMap(([k, v]) => [`--${k}`, v]);
  const code = await main([...argv, ...dcFlags], {
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    ...(color === undefined ? {} : { color }),
  });
  return { code, stdout, stderr };
}

/** One reconcile pass against the DC with the examples' policy, recording writes in `writes`. */
function passRunner(dc: Dc, writes: WriteLedger) {
  const openDirectory = directoryOpener(directoryConfig(dc));
  const keyed = loadConfig({ flags: dcSettings(dc), env: {}, require: { directory: true } });
  if (!keyed.ok) throw new Error(keyed.errors.map((e) => e.message).join("; "));
  const policy = {
    mode: "enforce",
    prune: false,
    deletionBudget: 5,
    adopt: false,
    owner: keyed.config.policy.owner,
  } as const;
  return (desired: DesiredState, write: boolean) =>
    reconcilePass({ desired, policy, now: new Date(), write, openDirectory, hostMemory: hostMemory(), writes });
}

const ESC = "\u001b[";

async function highestUsn(dc: Dc): Promise<string> {
  const out = await dc.ldap("ldapsearch", ["-b", "", "-s", "base", "(objectClass=*)", "highestCommittedUSN"]);
  return text(out, "highestCommittedUSN")[0]!;
}

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
    expect(
      coloured.stdout.replaceAll(`${ESC}0m`, "").replace(new RegExp(`${ESC.replace("[", "\\[")}\\d+m`, "g"), ""),
    ).toBe(r.stdout);
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
    // What was not targeted is still to do: reports (group and gMSA) and the SQL example.
    const rest = await cli(dc, ["plan", "--repo", examples]);
    expect(rest.stdout).toMatch(/Plan: 3 to create, 0 to update, 0 to delete\.\n$/);
  });

  it("a --target naming nothing is a usage error that names it", async () => {
    const typo = await cli(dc, ["plan", "--repo", examples, "--target", "ADGroup/gmsa-servce1-hosts"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("--target ADGroup/gmsa-servce1-hosts: no such resource");
    const usnBefore = await highestUsn(dc);
    const apply = await cli(dc, [
      "apply",
      "--repo",
      examples,
      "--target",
      "GroupManagedServiceAccount/gmsa-reports",
      "--target",
      "ADGroup/gmsa-servce1-hosts",
    ]);
    expect(apply.code).toBe(2);
    expect(apply.stderr).toContain("--target ADGroup/gmsa-servce1-hosts: no such resource");
    expect(await highestUsn(dc)).toBe(usnBefore);
    // The wrong case, or the accountName an SRE reads in AD: still refused, with what was meant.
    for (const [target, meant] of [
      ["ADGroup/GMSA-Service1-Hosts", "ADGroup/gmsa-service1-hosts"],
      ["groupmanagedserviceaccount/MSA-service1$", "GroupManagedServiceAccount/msa-service1"],
      ["ADGroup/msa-service1", "GroupManagedServiceAccount/msa-service1"],
    ]) {
      const wrong = await cli(dc, ["plan", "--repo", examples, "--target", target!]);
      expect(wrong.code, target).toBe(2);
      expect(wrong.stderr, target).toContain(
        `no such resource in the repository or in AD's managed objects; did you mean ${meant}?`,
      );
    }
    const explained = await cli(dc, ["explain", "ADGroup/GMSA-Service1-Hosts", "--repo", examples]);
    expect(explained.code).toBe(1);
    expect(explained.stderr).toContain("did you mean ADGroup/gmsa-service1-hosts?");
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

  it("a hand edit through ldapmodify is reported with its time, DC and version", async () => {
    const dn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    const rootDse = await dc.ldap("ldapsearch", ["-b", "", "-s", "base", "(objectClass=*)", "dnsHostName"]);
    const dcName = text(rootDse, "dnsHostName")[0]!;
    const edit = async (value: string) => {
      const before = Math.floor(Date.now() / 1000) * 1000;
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: ${value}\n-\n`,
      });
      return { before, after: Date.now() };
    };
    const first = await edit("second hand edit");
    const r = await cli(dc, ["plan", "--repo", examples]);
    const m = /~ description: "second hand edit" → .*\n {6}# last changed (\S+) on (\S+) \(version (\d+)\)\n/.exec(
      r.stdout,
    );
    expect(m, r.stdout).not.toBeNull();
    const [, time, where, version] = m!;
    expect(where).toBe(dcName);
    expect(Date.parse(time!)).toBeGreaterThanOrEqual(first.before);
    expect(Date.parse(time!)).toBeLessThanOrEqual(first.after);

    await edit("third hand edit");
    const json = await cli(dc, ["plan", "--repo", examples, "--format", "json"]);
    const doc = JSON.parse(json.stdout) as {
      resources: { name: string; changes: { attribute: string; lastChange?: LastChange }[] }[];
    };
    const change = doc.resources
      .find((x) => x.name === "msa-service1")
      ?.changes.find((c) => c.attribute === "description");
    expect(change?.lastChange).toMatchObject({ dc: dcName, version: Number(version) + 1, byController: null });
  });

  it("drift left by the controller's own write is told from a second writer's edit", async () => {
    const dn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    const loaded = await loadManifests(examples);
    if (!loaded.ok) throw new Error("examples do not load");
    const withDescription = (description: string): DesiredState => {
      const gmsas = new Map(loaded.desired.gmsas);
      const g = gmsas.get("msa-service1")!;
      gmsas.set("msa-service1", { ...g, spec: { ...g.spec, description } });
      return { ...loaded.desired, gmsas };
    };
    const writes = new WriteLedger();
    const run = passRunner(dc, writes);
    const description = (result: Awaited<ReturnType<typeof run>>) =>
      result.plan.resources
        .find((r) => r.resource.name === "msa-service1")
        ?.changes.find((c) => c.attribute === "description");

    // Git said "v2" and the controller wrote it; then Git went back: the drift is our own write.
    const applied = await run(withDescription("Git revision 2"), true);
    expect(applied.results.filter((r) => r.status === "applied").length).toBeGreaterThan(0);
    expect(writes.size).toBeGreaterThan(0);
    const ours = description(await run(loaded.desired, false));
    expect(ours?.from).toBe("Git revision 2");
    expect(ours?.lastChange?.byController).toBe(true);

    // A second writer edits the same attribute: no longer ours.
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: someone else\n-\n`,
    });
    const result = await run(loaded.desired, false);
    const theirs = description(result);
    expect(theirs?.lastChange).toMatchObject({ byController: false, version: ours!.lastChange!.version! + 1 });

    // Status keeps it: lastDrift.changes[].lastChange.
    const entry = result.plan.resources.find((r) => r.resource.name === "msa-service1")!;
    const summary = summarize({ entry, attempts: [], executed: false, revision: null, now: new Date() }, undefined);
    expect(summary.lastDrift?.changes.find((c) => c.attribute === "description")?.lastChange?.byController).toBe(false);
  });

  it("says neither ours nor theirs without evidence: a member drift after another attribute's edit, or a ledger that has no record", async () => {
    const dn = `CN=GMSA-Service1-Hosts,CN=Users,${dc.baseDn}`;
    const loaded = await loadManifests(examples);
    if (!loaded.ok) throw new Error("examples do not load");
    const groups = new Map(loaded.desired.groups);
    const g = groups.get("gmsa-service1-hosts")!;
    groups.set("gmsa-service1-hosts", {
      ...g,
      spec: { ...g.spec, members: [...g.spec.members, { computer: "WEB1" }] },
    });
    const withWeb1: DesiredState = { ...loaded.desired, groups };
    const member = (result: Awaited<ReturnType<ReturnType<typeof passRunner>>>) =>
      result.plan.resources
        .find((r) => r.resource.name === "gmsa-service1-hosts")
        ?.changes.find((c) => c.attribute === "member");

    // The controller writes the member list (Samba keeps no per-value metadata: objectLevel).
    const writes = new WriteLedger();
    const run = passRunner(dc, writes);
    await run(withWeb1, true);
    const ours = member(await run(loaded.desired, false));
    expect(ours?.lastChange).toMatchObject({ objectLevel: true, byController: true });

    // Someone edits the group's description a second later: whenChanged moves, the members do
    // not. Nothing says who wrote the member list now, so the plan must not blame a second writer.
    await new Promise((r) => setTimeout(r, 1100));
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: edited by hand\n-\n`,
    });
    const after = member(await run(loaded.desired, false));
    expect(after?.from).toEqual(expect.arrayContaining(["WEB1$"]));
    expect(after?.lastChange).toMatchObject({ objectLevel: true, byController: null });

    // A restarted controller has no record of its writes: the description it never wrote in
    // this process is not called someone else's either.
    const restarted = await passRunner(dc, new WriteLedger())(loaded.desired, false);
    const description = restarted.plan.resources
      .find((r) => r.resource.name === "gmsa-service1-hosts")
      ?.changes.find((c) => c.attribute === "description");
    expect(description?.lastChange).toMatchObject({ objectLevel: false, byController: null });
    expect(member(restarted)?.lastChange?.byController).toBeNull();

    await run(loaded.desired, true);
  });

  it("a running controller: password timestamps from what Samba maintains, the drift log line names the DC, explain --url", async () => {
    const config = loadConfig({
      flags: {
        ...dcSettings(dc),
        repo: examples,
        listen: "127.0.0.1:0",
        "log-format": "json",
        interval: "2s",
      },
      env: {},
    });
    if (!config.ok) throw new Error(config.errors.map((e) => e.message).join("; "));
    let logs = "";
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs += chunk.toString("utf8");
        done();
      },
    });
    // An edit made before the controller starts: its first cycle restores the description, so
    // the controller has a record of its own write to compare the next hand edit with.
    const dn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: edited before the controller started\n-\n`,
    });
    const running = await startController(config.config, createLogger(config.config.log, stream));
    const until = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const v = await probe();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const metric = async (name: string): Promise<number | undefined> => {
      const body = await (await fetch(`${running.url}/metrics`)).text();
      const m = new RegExp(`^${name}\\{name="msa-service1"\\} (\\S+)$`, "m").exec(body);
      return m ? Number(m[1]) : undefined;
    };
    try {
      // pwdLastSet as Samba keeps it, read through ldapsearch (FILETIME: 100 ns since 1601).
      const entry = await dc.ldap("ldapsearch", [
        "-b",
        dc.baseDn,
        "-s",
        "sub",
        "(sAMAccountName=MSA-service1$)",
        "pwdLastSet",
      ]);
      const filetime = BigInt(text(entry, "pwdLastSet")[0]!);
      const pwdLastSet = Number(filetime / 10_000n) / 1000 - 11_644_473_600;
      expect(pwdLastSet).toBeGreaterThan(0);
      const last = await until("the last-change timestamp", () =>
        metric("gmsa_gitops_password_last_change_timestamp_seconds"),
      );
      expect(last).toBeCloseTo(pwdLastSet, 3);
      expect(await metric("gmsa_gitops_password_next_change_timestamp_seconds")).toBeCloseTo(
        pwdLastSet + 30 * 86_400,
        3,
      );

      // A hand edit, corrected by the controller: the log line says where and when it was made,
      // and, as the controller wrote that description itself since it started, not by it.
      await until("the first cycle's correction", () =>
        Promise.resolve(logs.includes('"from":"edited before the controller started"') ? true : undefined),
      );
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: edited under a running controller\n-\n`,
      });
      const line = await until("a drift corrected line for msa-service1", () =>
        Promise.resolve(
          logs
            .split("\n")
            .filter((l) => l.includes('"drift corrected"') && l.includes('"msa-service1"'))
            .map((l) => JSON.parse(l) as { changes: { attribute: string; from?: unknown; lastChange?: LastChange }[] })
            .find((l) => l.changes.some((c) => c.from === "edited under a running controller")),
        ),
      );
      const lastChange = line.changes.find((c) => c.attribute === "description")?.lastChange;
      expect(lastChange).toMatchObject({ dc: "DC1.company.local", byController: false, objectLevel: false });

      const r = await cli(dc, [
        "explain",
        "GroupManagedServiceAccount/msa-service1",
        "--repo",
        examples,
        "--url",
        running.url,
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Conditions (from ${running.url}/api/status):`);
      expect(r.stdout).toMatch(/Ready {9}True {4}\w+: .*\(since \d{4}-/);
      expect(r.stdout).toMatch(/Last drift: attribute observed \S+, corrected \S+/);
      expect(r.stdout).toContain("# last changed");
    } finally {
      await running.stop();
    }
  });
});
