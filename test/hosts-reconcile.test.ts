// HostBindings through the whole reconcile: a real Samba DC, a real sshd running real pwsh with
// the Windows doubles (whose NetQueryServiceAccount asks the DC), the controller loop, and the
// agent. Host state is checked in the doubles' JSON files, AD with ldapsearch.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scrapeText } from "./support/metrics.ts";
import { directorySession } from "../controller/clients.ts";
import { connectDirectory } from "../controller/directory/index.ts";
import { parseSid } from "../controller/directory/sid.ts";
import { createSshDriver } from "../controller/hosts/index.ts";
import { startController } from "../controller/main.ts";
import { loadConfig } from "../controller/config/index.ts";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { Controller } from "../controller/reconcile/loop.ts";
import { createLocalSource } from "../controller/source/index.ts";
import type { DoubleAce, DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import {
  dcBackedHost,
  launcherCommand,
  launcherShell,
  readHostState,
  RIGHTS,
  writeHostState,
} from "./harness/pwsh-doubles/state.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { startSshd } from "./harness/sshd.ts";
import type { Sshd } from "./harness/sshd.ts";
import { OWNER } from "./support/reconcile.ts";

const examples = join(import.meta.dirname, "..", "examples");
const HOSTS = ["SERVER1", "SERVER2", "WEB1", "WEB2"] as const;
const silent = pino({ level: "silent" });
const ADMIN_SID = "S-1-5-21-7-8-9-500";

/** The objectSid of an account, read from the DC (an independent path from the host doubles). */
async function accountSid(sam: string): Promise<string> {
  const out = await dc.ldap("ldapsearch", ["-LLL", "-b", dc.baseDn, `(sAMAccountName=${sam})`, "objectSid"]);
  const b64 = /^objectSid:: (\S+)$/m.exec(out)?.[1];
  if (b64 === undefined) throw new Error(`no objectSid for ${sam}`);
  return parseSid(Buffer.from(b64, "base64"));
}

let dc: Dc;
let sshd: Sshd;
const statePath = (host: string): string => join(sshd.dir, `${host}.json`);
/** Each host's state as the tests start. */
const initial = new Map<string, DoubleHostState>();

/** A Windows host as the examples expect it: identities still on their old values. */
function hostState(host: string, dn: string, passwordFile: string): DoubleHostState {
  const s = dcBackedHost(host, dc, dn, passwordFile);
  s.services = [{ Name: "Service1", StartName: "LocalSystem", State: "Running" }];
  s.localGroups = { Administrators: [ADMIN_SID], IIS_IUSRS: [] };
  s.localGroupSids = { Administrators: "S-1-5-32-544", IIS_IUSRS: "S-1-5-32-568" };
  return s;
}

beforeAll(async () => {
  [dc, sshd] = await Promise.all([startDc(), startSshd()]);
  for (const host of HOSTS) {
    const password = `Host-${host}-Pass1!`;
    const dn = await dc.addComputer(host, password);
    const passwordFile = join(sshd.dir, `${host}.password`);
    await writeFile(passwordFile, password, { mode: 0o600 });
    initial.set(host, hostState(host, dn, passwordFile));
    await writeHostState(statePath(host), hostState(host, dn, passwordFile));
  }
}, 300_000);

afterAll(async () => {
  await Promise.all([sshd?.stop(), dc?.stop()]);
});

async function highestUsn(): Promise<string> {
  const out = await dc.ldap("ldapsearch", ["-LLL", "-b", "", "-s", "base", "(objectClass=*)", "highestCommittedUSN"]);
  return /highestCommittedUSN: (\d+)/.exec(out)?.[1] ?? "";
}

describe("the controller with hosts over ssh", { timeout: 600_000 }, () => {
  it("fixes the hosts in the cycle that creates their gMSA, reports drift made on a host and heals it", async () => {
    const metrics = createMetricsRecorder();
    const local = createLocalSource(examples);
    const driver = await createSshDriver({
      privateKeyPath: sshd.clientKeyPath,
      knownHostsPath: sshd.knownHostsPath,
      username: sshd.username,
      commandTimeoutMs: 300_000,
    });
    const controller = new Controller({
      source: { url: `file://${examples}`, sync: () => local.read() },
      metrics,
      logger: silent,
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      intervalMs: 60_000,
      hosts: {
        driver,
        domain: undefined,
        concurrency: 4,
        target: (host) => ({ host, address: sshd.address, port: sshd.port, shell: launcherShell(statePath(host)) }),
      },
      openDirectory: async () =>
        directorySession(
          await connectDirectory({
            url: dc.url,
            caFile: dc.caFile,
            bindDn: dc.adminDn,
            bindPassword: dc.adminPassword,
          }),
        ),
    });
    const binding = () => controller.status().resources.find((r) => r.name === "server1-service1")!;
    const ready = () => binding().conditions.find((c) => c.type === "Ready")!;

    // Cycle 1 creates the AD objects, reads AD again and fixes the hosts: the same pass as
    // `apply`, so a host is reached only once its gMSA is seen in AD, in the same cycle.
    await controller.reconcile();
    const server1 = await readHostState(statePath("SERVER1"));
    const identity = `${dc.domain}\\MSA-service1$`;
    expect(server1.services[0]).toMatchObject({ StartName: identity });
    expect(server1.tasks[0]).toMatchObject({ UserId: identity, LogonType: "Password", RunLevel: "Highest" });
    const sid = await accountSid("MSA-service1$");
    expect(server1.localGroups["Administrators"]).toContain(sid);
    const data = "D:\\Scripts\\MyScript\\Data";
    const granted = (s: DoubleHostState): DoubleAce[] => (s.files?.[data]?.acl ?? []).filter((a) => a.sid === sid);
    expect(granted(server1)).toEqual([
      {
        sid,
        type: "Allow",
        rights: RIGHTS.Modify | RIGHTS.Synchronize,
        inheritance: "ContainerInherit, ObjectInherit",
        propagation: "None",
        inherited: false,
      },
    ]);
    expect(binding().drift).toEqual(["host-file-access", "host-group", "host-right", "host-service", "host-task"]);
    expect(ready()).toMatchObject({ status: "True", reason: "DriftCorrected" });
    const text = await scrapeText(metrics);
    expect(text).toMatch(
      /gmsa_gitops_host_password_retrievable\{host="SERVER1",account="MSA-service1",state="yes"\} 1/,
    );
    expect(text).toMatch(/gmsa_gitops_host_reachable\{host="SERVER1"\} 1/);

    // Cycle 2: nothing to do.
    await controller.reconcile();
    expect(binding().drift).toEqual([]);
    expect(ready()).toMatchObject({ status: "True", reason: "Reconciled" });

    // Someone switches the service back and removes the folder entry by hand: reported as
    // host-service and host-file-access drift (naming the folder and the rights), and healed.
    const edited = await readHostState(statePath("SERVER1"));
    edited.services[0]!.StartName = "LocalSystem";
    edited.files![data]!.acl = edited.files![data]!.acl.filter((a) => a.sid !== sid);
    await writeHostState(statePath("SERVER1"), edited);
    await controller.reconcile();
    expect(binding().drift).toEqual(["host-file-access", "host-service"]);
    const metricsText = await scrapeText(metrics);
    expect(metricsText).toMatch(
      /gmsa_gitops_resource_drift\{kind="HostBinding",name="server1-service1",drift_type="host-service"\} 1/,
    );
    expect(metricsText).toMatch(
      /gmsa_gitops_resource_drift\{kind="HostBinding",name="server1-service1",drift_type="host-file-access"\} 1/,
    );
    expect(binding().conditions.find((c) => c.type === "DriftDetected")?.message).toContain(
      `fileAccess ${data}: missing Modify (this folder, subfolders, files)`,
    );
    const healed = await readHostState(statePath("SERVER1"));
    expect(healed.services[0]?.StartName).toBe(identity);
    expect(granted(healed).map((a) => a.rights)).toEqual([RIGHTS.Modify | RIGHTS.Synchronize]);
  });
});

// After the controller test, so that the gMSAs exist in AD: a host switches an identity only once
// it can retrieve the password.
describe("the agent", { timeout: 300_000 }, () => {
  it("reconciles its own host's bindings and no others, and never writes to AD", async () => {
    // WEB1 as it was before the controller fixed it.
    const web1 = initial.get("WEB1");
    if (web1 === undefined) throw new Error("no WEB1");
    await writeHostState(statePath("WEB1"), web1);
    const before = await highestUsn();
    const server1Before = await readHostState(statePath("SERVER1"));
    const web2Before = await readHostState(statePath("WEB2"));
    const config = loadConfig({ flags: { repo: examples, listen: "127.0.0.1:0", interval: "1h" }, env: {} });
    if (!config.ok) throw new Error(JSON.stringify(config.errors));
    const agent = await startController(config.config, silent, {
      host: "WEB1",
      domain: dc.domain,
      shell: launcherCommand(statePath("WEB1")).join(" "),
    });
    try {
      await expect.poll(() => agent.controller.ready(), { timeout: 120_000, interval: 500 }).toBe(true);
      const fixed = await readHostState(statePath("WEB1"));
      expect(fixed.appPools.find((p) => p.Name === "ReportsPool")).toMatchObject({
        IdentityType: "SpecificUser",
        UserName: `${dc.domain}\\gMSA-Reports$`,
      });
      expect(fixed.localGroups["IIS_IUSRS"]).toContain(await accountSid("gMSA-Reports$"));
      // Other hosts' files were not touched; nor was AD.
      expect(await readHostState(statePath("WEB2"))).toEqual(web2Before);
      expect(await readHostState(statePath("SERVER1"))).toEqual(server1Before);
      // The only AD object that changed is WEB1's own account: its logon (the NetQueryServiceAccount
      // double binds as WEB1$) updates logon bookkeeping. The agent itself has no AD connection.
      const changed = await dc.ldap("ldapsearch", [
        "-LLL",
        "-b",
        dc.baseDn,
        `(uSNChanged>=${Number(before) + 1})`,
        "sAMAccountName",
      ]);
      const others = [...changed.matchAll(/^sAMAccountName: (.*)$/gm)].map((m) => m[1]).filter((n) => n !== "WEB1$");
      expect(others).toEqual([]);
      expect(changed).not.toMatch(/^dn: CN=gMSA-Reports/m);
      const status = agent.controller.status();
      expect(status.resources.map((r) => `${r.kind}/${r.name}`)).toEqual(["HostBinding/web1-reports"]);
      const metrics = await scrapeText(agent.metrics);
      expect(metrics).toMatch(/gmsa_gitops_managed_resources\{kind="HostBinding"\} 1/);
    } finally {
      await agent.stop();
    }
  });
});
