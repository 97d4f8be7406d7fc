// Standalone managed service accounts on a host, against a real Samba AD DC (issue 13 item 7):
// the script asks NetQueryServiceAccount and installs with NetAddServiceAccount through P/Invoke;
// the netapi32 double answers by reading, as the host's computer account (HOST$), the sMSA's
// msDS-HostServiceAccountBL on the DC. The sMSA and the links are made here with ldapadd and
// ldapmodify, independently of the controller's directory writer; what the host ends up with
// is read from the host's state file, not from the script's own result.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostDriver, HostRequest, HostTarget } from "../controller/hosts/index.ts";
import { bindingRequest, createSshDriver, HOST_CONTRACT_VERSION } from "../controller/hosts/index.ts";
import { dcBackedHost, hostEnv, launcherShell, readHostState, writeHostState } from "./harness/pwsh-doubles/state.ts";
import type { DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { startSshd } from "./harness/sshd.ts";
import type { Sshd } from "./harness/sshd.ts";
import { dcCommand } from "./support/cli.ts";

let dc: Dc;
let sshd: Sshd;
let driver: HostDriver;

beforeAll(async () => {
  [dc, sshd] = await Promise.all([startDc(), startSshd()]);
  driver = await createSshDriver({
    privateKeyPath: sshd.clientKeyPath,
    knownHostsPath: sshd.knownHostsPath,
    username: sshd.username,
    commandTimeoutMs: 90_000,
  });
}, 300_000);

afterAll(async () => {
  await Promise.all([sshd?.stop(), dc?.stop()]);
});

/** An sMSA as New-ADServiceAccount -RestrictToSingleComputer makes it; returns its DN. */
async function addSmsa(name: string): Promise<string> {
  const dn = `CN=${name},CN=Managed Service Accounts,${dc.baseDn}`;
  await dc.ldap("ldapadd", [], {
    input: [
      `dn: ${dn}`,
      "objectClass: msDS-ManagedServiceAccount",
      `sAMAccountName: ${name}$`,
      "userAccountControl: 4096",
      "msDS-SupportedEncryptionTypes: 24",
      "",
    ].join("\n"),
  });
  return dn;
}

/** Add-ADComputerServiceAccount: the computer's msDS-HostServiceAccount links the sMSA. */
async function link(computerDn: string, smsaDn: string): Promise<void> {
  await dc.ldap("ldapmodify", [], {
    input: [
      `dn: ${computerDn}`,
      "changetype: modify",
      "add: msDS-HostServiceAccount",
      `msDS-HostServiceAccount: ${smsaDn}`,
      "",
    ].join("\n"),
  });
}

/** A computer account in the DC and a test host (SQL Server on it, running as LocalSystem) that binds as it. */
async function newHost(name: string): Promise<{ target: HostTarget; statePath: string; dn: string }> {
  const password = `Host-${name}-${Math.random().toString(36).slice(2)}Aa1!`;
  const dn = await dc.addComputer(name, password);
  const passwordFile = join(sshd.dir, `${name}.password`);
  await writeFile(passwordFile, password, { mode: 0o600 });
  const state: DoubleHostState = dcBackedHost(name, dc, dn, passwordFile);
  state.services.push({ Name: "MSSQLSERVER", StartName: "LocalSystem", State: "Running" });
  const statePath = join(sshd.dir, `${name}.json`);
  await writeHostState(statePath, state);
  return {
    target: { host: name, address: sshd.address, port: sshd.port, shell: launcherShell(statePath) },
    statePath,
    dn,
  };
}

function request(target: HostTarget, mode: HostRequest["mode"], account: string): HostRequest {
  return {
    version: HOST_CONTRACT_VERSION,
    mode,
    host: target.host,
    domain: dc.domain,
    bindings: [
      bindingRequest(
        "sql",
        account,
        { services: [{ name: "MSSQLSERVER" }], localGroups: ["Performance Log Users"] },
        { accountKind: "smsa" },
      ),
    ],
  };
}

describe("a standalone managed service account on its host", () => {
  it("linked to this host: observe reports it not installed; apply installs it and the service runs as it", async () => {
    const smsaDn = await addSmsa("sql1-svc");
    const host = await newHost("SQL1");
    await link(host.dn, smsaDn);

    const observed = await driver.run(host.target, request(host.target, "observe", "sql1-svc"));
    expect(observed.bindings[0]).toMatchObject({ install: "NotInstalled", retrievable: false });
    expect(observed.bindings[0]?.items[0]).toMatchObject({
      item: "install",
      action: "would-change",
      reason: "NotInstalled",
    });
    expect((await readHostState(host.statePath)).installedServiceAccounts ?? []).toEqual([]);

    const applied = await driver.run(host.target, request(host.target, "apply", "sql1-svc"));
    expect(applied.bindings[0]).toMatchObject({ install: "Installed", retrievable: true });
    expect(applied.bindings[0]?.items.find((i) => i.item === "install")).toMatchObject({ action: "changed" });
    expect(applied.bindings[0]?.items.find((i) => i.item === "service")).toMatchObject({
      action: "changed",
      restarted: true,
    });

    const state = await readHostState(host.statePath);
    expect(state.installedServiceAccounts).toEqual(["sql1-svc"]);
    const sql = state.services.find((s) => s.Name === "MSSQLSERVER");
    expect(sql).toMatchObject({ StartName: `${dc.domain}\\sql1-svc$`, State: "Running" });
    expect(sql?.LastStartPassword).toBeUndefined();
    expect(state.events?.filter((e) => e.command === "NetAddServiceAccount").map((e) => e.detail)).toEqual([
      "sql1-svc$=installed",
    ]);

    // Installed is in sync: a second apply changes nothing.
    const again = await driver.run(host.target, request(host.target, "apply", "sql1-svc"));
    expect(again.bindings[0]?.items.filter((i) => i.action !== "none")).toEqual([]);
  });

  it("linked to another computer: Windows refuses, the reason names both, and nothing changes on the host", async () => {
    const smsaDn = await addSmsa("sql2-svc");
    const other = await newHost("SQL3");
    await link(other.dn, smsaDn);
    const host = await newHost("SQL2");
    const before = await readHostState(host.statePath);

    const result = await driver.run(host.target, request(host.target, "apply", "sql2-svc"));
    expect(result.bindings[0]).toMatchObject({ install: "NotInstalled", retrievable: false });
    const install = result.bindings[0]?.items[0];
    expect(install).toMatchObject({ item: "install", action: "failed", reason: "LinkedToAnotherComputer" });
    expect(install?.error).toMatch(/MsaInfoCannotInstall.*another computer.*restricts it to SQL2/);
    // The rest is reported, not done.
    expect(result.bindings[0]?.items.filter((i) => i.action === "changed")).toEqual([]);
    expect(result.bindings[0]?.items.find((i) => i.item === "localGroup")).toMatchObject({ action: "would-change" });

    const after = await readHostState(host.statePath);
    expect(after.installedServiceAccounts ?? []).toEqual([]);
    expect(after.services).toEqual(before.services);
    expect(after.localGroups).toEqual(before.localGroups);
    expect(after.rights).toEqual(before.rights);
    expect((after.events ?? []).filter((e) => e.command !== "NetQueryServiceAccount")).toEqual([]);
  });
});

/** The double's own answer (what NetQueryServiceAccount / NetAddServiceAccount return on this host). */
function ask(statePath: string, command: "query" | "add", account: string): string[] {
  const env = hostEnv(statePath);
  const out = execFileSync(
    env["GMSA_DOUBLE_NODE"]!,
    ["--no-warnings", env["GMSA_DOUBLE_NETAPI_HELPER"]!, command, account],
    {
      encoding: "utf8",
      env: { ...process.env, GMSA_DOUBLE_STATE: statePath },
    },
  );
  return out.trim().split("\n");
}

describe("the NetQueryServiceAccount / NetAddServiceAccount double refuses what Windows refuses", () => {
  it("answers the documented MSA_INFO_STATE for each link, and installs only on the linked computer", async () => {
    const smsaDn = await addSmsa("app-svc");
    const a = await newHost("APP1");
    const b = await newHost("APP2");
    // Linked to no computer: MsaInfoCanInstall (Test-ADServiceAccount's "not linked with any computer").
    expect(ask(a.statePath, "query", "app-svc$")).toEqual(["0", "4"]);
    await link(a.dn, smsaDn);
    expect(ask(a.statePath, "query", "app-svc$")).toEqual(["0", "4"]);
    // Linked to APP1: APP2 may not install it (MsaInfoCannotInstall), and NetAddServiceAccount fails.
    expect(ask(b.statePath, "query", "app-svc$")).toEqual(["0", "3"]);
    expect(ask(b.statePath, "add", "app-svc$")).toEqual([String(0xc0000022)]);
    // An account the DC does not know: MsaInfoNotExist, and STATUS_NOT_FOUND to install it.
    expect(ask(a.statePath, "query", "nobody-svc$")).toEqual(["0", "1"]);
    expect(ask(a.statePath, "add", "nobody-svc$")).toEqual([String(0xc0000225)]);
    // APP1 installs it: MsaInfoInstalled from then on; APP2 is still refused.
    expect(ask(a.statePath, "add", "app-svc$")).toEqual(["0"]);
    expect(ask(a.statePath, "query", "app-svc$")).toEqual(["0", "5"]);
    expect(ask(b.statePath, "add", "app-svc$")).toEqual([String(0xc0000022)]);
    expect((await readHostState(b.statePath)).installedServiceAccounts ?? []).toEqual([]);
  });
});

const SQL_MANIFESTS = `apiVersion: gmsa-gitops.io/v1alpha1
kind: ManagedServiceAccount
metadata:
  name: sql5-svc
spec:
  accountName: sql5-svc
  computer: SQL5
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: sql5-mssql
spec:
  host: SQL5
  account: sql5-svc
  services:
    - name: MSSQLSERVER
`;

describe("plan and apply of a HostBinding whose account is an sMSA", { timeout: 300_000 }, () => {
  it("plan waits for the sMSA and its link; apply creates and links it in AD, then installs it on the host, which runs SQL Server as it", async () => {
    const password = "Host-SQL5-Pass1!";
    const dn = await dc.addComputer("SQL5", password);
    await dc.ldap("ldapmodify", [], {
      input: [`dn: ${dn}`, "changetype: modify", "replace: dNSHostName", "dNSHostName: 127.0.0.1", ""].join("\n"),
    });
    const passwordFile = join(sshd.dir, "SQL5.password");
    await writeFile(passwordFile, password, { mode: 0o600 });
    const state = dcBackedHost("SQL5", dc, dn, passwordFile);
    state.services.push({ Name: "MSSQLSERVER", StartName: "LocalSystem", State: "Running" });
    const statePath = join(sshd.dir, "SQL5.json");
    await writeHostState(statePath, state);
    const repo = await mkdtemp(join(tmpdir(), "gmsa-smsa-host-"));
    try {
      await writeFile(join(repo, "sql.yaml"), SQL_MANIFESTS);
      const hostFlags = [
        ...["--host-transport", "ssh", "--ssh-user", sshd.username, "--ssh-key-file", sshd.clientKeyPath],
        ...["--ssh-known-hosts", sshd.knownHostsPath, "--ssh-port", String(sshd.port)],
        ...["--host-shell", launcherShell(statePath)],
      ];
      type Entry = { kind: string; name: string; blocker: { reason: string; message: string } | null };
      const planned = await dcCommand(dc, "plan", repo, "--format", "json", ...hostFlags);
      expect(planned.stderr).toBe("");
      const plan = JSON.parse(planned.stdout) as { resources: Entry[] };
      expect(plan.resources.find((r) => r.kind === "HostBinding")).toMatchObject({
        name: "sql5-mssql",
        blocker: { reason: "DependencyNotReady", message: expect.stringMatching(/sMSA sql5-svc is not in AD yet/) },
      });
      expect((await readHostState(statePath)).events ?? []).toEqual([]);

      const applied = await dcCommand(dc, "apply", repo, "--format", "json", ...hostFlags);
      expect(applied.stderr).toBe("");
      const report = JSON.parse(applied.stdout) as {
        hosts: { name: string; drift: string[]; retrievable: string | null; blocker: unknown }[];
      };
      expect(report.hosts).toEqual([
        expect.objectContaining({ name: "sql5-mssql", blocker: null, retrievable: "yes" }),
      ]);
      expect(report.hosts[0]?.drift).toEqual(expect.arrayContaining(["host-retrieval", "host-service"]));
      expect(applied.code).toBe(0);

      // AD: the computer links the sMSA (ldapsearch, not the controller's reader).
      const link = await dc.ldap("ldapsearch", ["-LLL", "-b", dn, "-s", "base", "msDS-HostServiceAccount"]);
      expect(link).toMatch(/^msDS-HostServiceAccount: CN=sql5-svc,CN=Managed Service Accounts,/m);
      // The host: installed, and SQL Server runs as the sMSA without a password.
      const after = await readHostState(statePath);
      expect(after.installedServiceAccounts).toEqual(["sql5-svc"]);
      expect(after.services.find((s) => s.Name === "MSSQLSERVER")).toMatchObject({
        StartName: `${dc.domain}\\sql5-svc$`,
        State: "Running",
      });

      // In sync: a second apply changes nothing on the host.
      const again = JSON.parse((await dcCommand(dc, "apply", repo, "--format", "json", ...hostFlags)).stdout) as {
        hosts: { drift: string[] }[];
      };
      expect(again.hosts[0]?.drift).toEqual([]);
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });
});
