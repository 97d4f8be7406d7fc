// plan, apply and run are one reconcile pass: the same revision against the same AD gives the
// same plan from `gmsa-gitops plan`, from `apply`'s report and from `run`'s /api/status, and in
// apply and run alike the host side sees AD as it is after the AD writes (a binding whose gMSA
// the pass just created is reconciled on its host, not reported as waiting for it). A real Samba
// DC, a real sshd running the host script in pwsh, the real CLI (plan and apply in-process
// through main, run as the bin in its own process), checked against ldapsearch and the host file.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import { dcBackedHost, launcherShell, readHostState, writeHostState } from "./harness/pwsh-doubles/state.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { startSshd } from "./harness/sshd.ts";
import type { Sshd } from "./harness/sshd.ts";
import { dcCommand, dcFlags } from "./support/cli.ts";

const BIN = fileURLToPath(new URL("../bin/gmsa-gitops.mjs", import.meta.url));

const MANIFESTS = `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: app-hosts
spec:
  accountName: App-Hosts
  scope: Global
  membership: exact
  members:
    - computer: SERVER1
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: msa-service1
spec:
  accountName: MSA-service1
  dnsHostName: service1.company.local
  principalsAllowedToRetrieveManagedPassword:
    - group: app-hosts
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: server1-service1
spec:
  host: SERVER1
  account: msa-service1
  localGroups: [Administrators]
`;

let dc: Dc;
let sshd: Sshd;
let repo: string;
let hostState: DoubleHostState;
const statePath = (): string => join(sshd.dir, "SERVER1.json");

beforeAll(async () => {
  [dc, sshd] = await Promise.all([startDc(), startSshd()]);
  const password = "Host-SERVER1-Pass1!";
  const dn = await dc.addComputer("SERVER1", password);
  // The host is reached at its dNSHostName: here the loopback sshd, whose key known_hosts pins.
  await dc.ldap("ldapmodify", [], {
    input: [`dn: ${dn}`, "changetype: modify", "replace: dNSHostName", "dNSHostName: 127.0.0.1", ""].join("\n"),
  });
  const passwordFile = join(sshd.dir, "SERVER1.password");
  await writeFile(passwordFile, password, { mode: 0o600 });
  hostState = dcBackedHost("SERVER1", dc, dn, passwordFile);
  await writeHostState(statePath(), hostState);
  repo = await mkdtemp(join(tmpdir(), "gmsa-one-pass-"));
  await writeFile(join(repo, "service1.yaml"), MANIFESTS);
}, 300_000);

afterAll(async () => {
  await Promise.all([sshd?.stop(), dc?.stop(), repo ? rm(repo, { recursive: true, force: true }) : undefined]);
});

/** The host flags: ssh to each host's dNSHostName, the host script run as on Windows. */
const hostFlags = (): string[] => [
  "--host-transport",
  "ssh",
  "--ssh-user",
  sshd.username,
  "--ssh-key-file",
  sshd.clientKeyPath,
  "--ssh-known-hosts",
  sshd.knownHostsPath,
  "--ssh-port",
  String(sshd.port),
  "--host-shell",
  launcherShell(statePath()),
];

/** AD as the test began: the objects the pass creates removed again (ldapdelete), the host file reset. */
async function reset(): Promise<void> {
  for (const dn of [`CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`, `CN=App-Hosts,CN=Users,${dc.baseDn}`])
    await dc.ldap("ldapdelete", [dn]);
  await writeHostState(statePath(), hostState);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface PlanJson {
  resources: { kind: string; name: string; drift: string[]; changes: unknown[]; actions: string[]; blocker: unknown }[];
}
interface ApplyJson {
  results: { type: string; kind: string; name: string; status: string }[];
  hosts: { name: string; drift: string[]; changes: unknown[]; retrievable: string | null; blocker: string | null }[];
}
interface StatusJson {
  controller: { lastReconcile: { result: string } | null };
  resources: {
    kind: string;
    name: string;
    drift: string[];
    changes: unknown[];
    conditions: { type: string; status: string; reason: string }[];
    host?: { retrievable: string | null };
  }[];
}

/** What a plan says per AD resource: its drift and the changes it names. */
const adFindings = (rs: readonly { kind: string; name: string; drift: string[]; changes: unknown[] }[]) =>
  rs.filter((r) => r.kind !== "HostBinding").map(({ kind, name, drift, changes }) => ({ kind, name, drift, changes }));

describe("plan, apply and run share one pass", { timeout: 300_000 }, () => {
  it("the same revision gives the same plan from plan, apply and run, and the host side sees AD after apply", async () => {
    // plan: AD read, nothing written; the binding waits for its gMSA.
    const planned = await dcCommand(dc, "plan", repo, "--format", "json", ...hostFlags());
    expect(planned.stderr).toBe("");
    expect(planned.code).toBe(2);
    const plan = JSON.parse(planned.stdout) as PlanJson;
    const actions = plan.resources
      .filter((r) => r.kind !== "HostBinding")
      .flatMap((r) => r.actions.map((type) => `${type} ${r.kind}/${r.name}`));
    expect(actions).toEqual([
      "create-group ADGroup/app-hosts",
      "add-members ADGroup/app-hosts",
      "create-gmsa GroupManagedServiceAccount/msa-service1",
    ]);
    expect(plan.resources.find((r) => r.kind === "HostBinding")).toMatchObject({
      name: "server1-service1",
      blocker: { outcome: "waiting", reason: "DependencyNotReady" },
    });

    // apply: exactly the plan's AD actions, then the host against AD as it is after them.
    const applied = await dcCommand(dc, "apply", repo, "--format", "json", ...hostFlags());
    expect(applied.stderr).toBe("");
    const report = JSON.parse(applied.stdout) as ApplyJson;
    expect(report.results.map((r) => `${r.type} ${r.kind}/${r.name} ${r.status}`)).toEqual(
      actions.map((a) => `${a} applied`),
    );
    expect(report.hosts).toHaveLength(1);
    const appliedHost = report.hosts[0]!;
    expect(appliedHost).toMatchObject({ name: "server1-service1", blocker: null, retrievable: "yes" });
    expect(appliedHost.drift).toEqual(["host-group"]);
    expect(applied.code).toBe(0);
    expect((await readHostState(statePath())).localGroups["Administrators"]).toHaveLength(2);

    // The same revision against the same AD again, for run: the objects apply made are removed.
    await reset();
    const again = JSON.parse(
      (await dcCommand(dc, "plan", repo, "--format", "json", ...hostFlags())).stdout,
    ) as PlanJson;
    expect(adFindings(again.resources)).toEqual(adFindings(plan.resources));

    // run: the bin in its own process; its first cycle's /api/status.
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        BIN,
        "run",
        "--repo",
        repo,
        "--listen",
        `127.0.0.1:${port}`,
        "--interval",
        "1h",
        "--log-format",
        "json",
        ...dcFlags(dc),
        ...hostFlags(),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let logs = "";
    child.stdout.on("data", (d: Buffer) => (logs += d.toString()));
    child.stderr.on("data", (d: Buffer) => (logs += d.toString()));
    try {
      const status = async (): Promise<StatusJson | undefined> => {
        try {
          const body = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as StatusJson;
          return body.controller.lastReconcile ? body : undefined;
        } catch {
          return undefined;
        }
      };
      await expect.poll(status, { timeout: 180_000, interval: 500 }).toBeDefined();
      const cycle = (await status())!;
      expect(cycle.controller.lastReconcile?.result, logs).toBe("success");
      expect(adFindings(cycle.resources)).toEqual(adFindings(plan.resources));
      const binding = cycle.resources.find((r) => r.kind === "HostBinding");
      expect(binding).toMatchObject({
        name: "server1-service1",
        drift: appliedHost.drift,
        changes: appliedHost.changes,
      });
      expect(binding?.host?.retrievable).toBe("yes");
      expect(binding?.conditions.find((c) => c.type === "Ready")).toMatchObject({
        status: "True",
        reason: "DriftCorrected",
      });
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("close", resolve));
    }
    // Independent checks: the objects are in AD again, and the host was fixed again.
    expect(await dc.ldap("ldapsearch", ["-LLL", "-b", dc.baseDn, "(sAMAccountName=MSA-service1$)", "dn"])).toMatch(
      /^dn: CN=MSA-service1,/m,
    );
    expect((await readHostState(statePath())).localGroups["Administrators"]).toHaveLength(2);
  });
});
