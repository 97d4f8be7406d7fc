// The host script end to end: real PowerShell 7 behind a real OpenSSH server on loopback, with
// the Windows-only commands replaced by doubles backed by one JSON file per test host. Every
// outcome is checked in that JSON file (what the host now holds), not only in the script's own
// result.
import { execFile } from "node:child_process";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostDriver, HostRequest, HostResult } from "../controller/hosts/index.ts";
import { bindingRequest, createLocalDriver, createSshDriver, rightsHeld, runFleet } from "../controller/hosts/index.ts";
import type { DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import { ADMIN_SID, launcherCommand, readHostState, SERVICE1_SID } from "./harness/pwsh-doubles/state.ts";
import type { SshHostLab } from "./harness/ssh-hosts.ts";
import { hostRequest, rejection, startSshHostLab } from "./harness/ssh-hosts.ts";
import { makeKey } from "./harness/sshd.ts";
import type { Sshd } from "./harness/sshd.ts";

const exec = promisify(execFile);
const IDENTITY = "COMPANY\\MSA-service1$";

let lab: SshHostLab;
let sshd: Sshd;
let driver: HostDriver;

beforeAll(async () => {
  lab = await startSshHostLab("SERVER", 90_000);
  ({ sshd, driver } = lab);
});

afterAll(async () => {
  await lab?.stop();
});

const newHost = (edit?: (s: DoubleHostState) => void): ReturnType<SshHostLab["newHost"]> => lab.newHost(edit);
const request = hostRequest;

function items(result: HostResult): { item: string; name: string; action: string; reason?: string }[] {
  return (result.bindings[0]?.items ?? []).map((i) => ({
    item: i.item,
    name: i.name,
    action: i.action,
    ...(i.reason !== undefined ? { reason: i.reason } : {}),
  }));
}

const fullBinding = bindingRequest("server-service1", "MSA-service1", {
  localGroups: ["Administrators"],
  logonRights: ["SeServiceLogonRight", "SeBatchLogonRight"],
  services: [{ name: "MyService" }],
  scheduledTasks: [{ name: "My Script", path: "\\SCSM\\", runLevel: "Highest" }],
  iisAppPools: [{ name: "ReportsPool" }],
});

describe("host script over ssh", { timeout: 300_000 }, () => {
  it("observe reports drift, apply fixes it on the host, and a second observe finds none", async () => {
    const { target, statePath } = await newHost();
    const before = await readHostState(statePath);

    const observed = await driver.run(target, request(target, "observe", [fullBinding]));
    expect(observed.powershell).toMatch(/^7\./);
    expect(observed.bindings[0]?.retrievable).toBe(true);
    expect(observed.bindings[0]?.install).toBe("NotNeeded");
    expect(items(observed)).toEqual([
      { item: "retrievable", name: "MSA-service1", action: "none" },
      { item: "localGroup", name: "Administrators", action: "would-change", reason: "NotMember" },
      { item: "logonRight", name: "SeServiceLogonRight", action: "would-change", reason: "Missing" },
      { item: "logonRight", name: "SeBatchLogonRight", action: "would-change", reason: "Missing" },
      { item: "service", name: "MyService", action: "would-change", reason: "WrongIdentity" },
      { item: "scheduledTask", name: "\\SCSM\\My Script", action: "would-change", reason: "WrongIdentity" },
      { item: "iisAppPool", name: "ReportsPool", action: "would-change", reason: "WrongIdentity" },
    ]);
    expect(observed.bindings[0]?.items.find((i) => i.item === "service")?.observed).toBe("LocalSystem");
    // Observe changed nothing on the host.
    const afterObserve = await readHostState(statePath);
    expect({ ...afterObserve, events: [] }).toEqual({ ...before, events: [] });

    const applied = await driver.run(target, request(target, "apply", [fullBinding]));
    expect(items(applied).map((i) => i.action)).toEqual([
      "none",
      "changed",
      "changed",
      "changed",
      "changed",
      "changed",
      "changed",
    ]);
    expect(applied.bindings[0]?.items.find((i) => i.item === "service")?.restarted).toBe(true);
    expect(applied.bindings[0]?.items.find((i) => i.item === "iisAppPool")?.restarted).toBe(true);

    const host = await readHostState(statePath);
    // Windows keeps members and right holders as SIDs.
    expect(host.localGroups["Administrators"]).toEqual([ADMIN_SID, SERVICE1_SID]);
    expect(host.rights["SeServiceLogonRight"]).toEqual(["*S-1-5-80-0", `*${SERVICE1_SID}`]);
    expect(host.rights["SeBatchLogonRight"]).toEqual(["*S-1-5-32-544", "*S-1-5-32-551", `*${SERVICE1_SID}`]);
    const service = host.services.find((s) => s.Name === "MyService");
    expect(service).toMatchObject({ StartName: IDENTITY, State: "Running", Restarts: 1 });
    // No password at all (NULL) for a managed account.
    expect(service && "LastStartPassword" in service).toBe(false);
    expect(host.services.find((s) => s.Name === "Spooler")).toEqual({
      Name: "Spooler",
      StartName: "LocalSystem",
      State: "Running",
    });
    expect(host.tasks[0]).toMatchObject({ UserId: IDENTITY, LogonType: "Password", RunLevel: "Highest" });
    expect(host.appPools[0]).toMatchObject({
      IdentityType: "SpecificUser",
      UserName: IDENTITY,
      Password: "",
      Recycles: 1,
    });
    // Install-ADServiceAccount has no effect for a gMSA: never called.
    expect(host.events?.some((e) => e.command === "Install-ADServiceAccount")).toBe(false);

    const again = await driver.run(target, request(target, "observe", [fullBinding]));
    expect(again.bindings.flatMap((b) => b.items.filter((i) => i.action !== "none"))).toEqual([]);
    expect(rightsHeld(again.bindings[0]!)).toEqual(["SeServiceLogonRight", "SeBatchLogonRight"]);
  });

  it("restart Never leaves a running service and a started pool alone, and a stopped service is not started", async () => {
    const { target, statePath } = await newHost((s) => {
      s.services.push({ Name: "Stopped", StartName: "LocalSystem", State: "Stopped" });
    });
    const binding = bindingRequest("b", "MSA-service1", {
      services: [
        { name: "MyService", restart: "Never" },
        { name: "Stopped", restart: "OnChange" },
      ],
      iisAppPools: [{ name: "ReportsPool", restart: "Never" }],
    });
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(
      result.bindings[0]?.items.filter((i) => i.item !== "retrievable").map((i) => [i.name, i.action, i.restarted]),
    ).toEqual([
      // Not in the manifest, but Windows needs it for a service: granted anyway.
      ["SeServiceLogonRight", "changed", undefined],
      ["MyService", "changed", false],
      ["Stopped", "changed", false],
      ["ReportsPool", "changed", false],
    ]);
    const host = await readHostState(statePath);
    expect(host.services.map((s) => [s.Name, s.StartName, s.Restarts ?? 0])).toEqual([
      ["MyService", IDENTITY, 0],
      ["Spooler", "LocalSystem", 0],
      ["Stopped", IDENTITY, 0],
    ]);
    expect(host.appPools[0]?.Recycles ?? 0).toBe(0);
  });

  it("a logon right taken away after it was granted is its own drift reason, apart from one never granted", async () => {
    const { target } = await newHost();
    const binding = bindingRequest(
      "b",
      "MSA-service1",
      { logonRights: ["SeServiceLogonRight", "SeBatchLogonRight"] },
      { rightsGrantedBefore: ["SeServiceLogonRight"] },
    );
    const result = await driver.run(target, request(target, "observe", [binding]));
    expect(items(result).slice(1)).toEqual([
      { item: "logonRight", name: "SeServiceLogonRight", action: "would-change", reason: "RevokedByPolicy" },
      { item: "logonRight", name: "SeBatchLogonRight", action: "would-change", reason: "Missing" },
    ]);
  });

  it("an observe-only binding is reported but left alone, even in an apply request", async () => {
    const { target, statePath } = await newHost((s) => {
      s.retrievable = { "MSA-service1": true, "MSA-service2": true };
    });
    const enforced = bindingRequest("enforced", "MSA-service1", { services: [{ name: "MyService" }] });
    const watched = bindingRequest(
      "watched",
      "MSA-service2",
      { services: [{ name: "Spooler" }] },
      { observeOnly: true },
    );
    const result = await driver.run(target, request(target, "apply", [enforced, watched]));
    expect(result.bindings.map((b) => [b.name, b.items[2]?.name, b.items[2]?.action])).toEqual([
      ["enforced", "MyService", "changed"],
      ["watched", "Spooler", "would-change"],
    ]);
    const host = await readHostState(statePath);
    expect(host.services.map((s) => [s.Name, s.StartName])).toEqual([
      ["MyService", IDENTITY],
      ["Spooler", "LocalSystem"],
    ]);
  });

  it("a failing command, a missing service and a refused change fail only their own items", async () => {
    const { target, statePath } = await newHost((s) => {
      s.failOn = ["NetLocalGroupGetMembers"];
      s.services.push({ Name: "Refuses", StartName: "LocalSystem", State: "Running", changeReturnValue: 22 });
    });
    const binding = bindingRequest("b", "MSA-service1", {
      localGroups: ["Administrators"],
      logonRights: ["SeServiceLogonRight"],
      services: [{ name: "NoSuchService" }, { name: "Refuses" }, { name: "MyService" }],
      scheduledTasks: [
        { name: "Gone", path: "\\" },
        { name: "My Script", path: "\\SCSM\\" },
      ],
      iisAppPools: [{ name: "NoPool" }, { name: "ReportsPool" }],
    });
    const result = await driver.run(target, request(target, "apply", [binding]));
    const got = result.bindings[0]?.items.map((i) => [i.item, i.name, i.action, i.reason, i.error]);
    expect(got).toEqual([
      ["retrievable", "MSA-service1", "none", undefined, undefined],
      [
        "localGroup",
        "Administrators",
        "failed",
        "Error",
        expect.stringMatching(/^NetLocalGroupGetMembers failed with error 5 /),
      ],
      ["logonRight", "SeServiceLogonRight", "changed", "Missing", undefined],
      ["logonRight", "SeBatchLogonRight", "changed", "Missing", undefined],
      ["service", "NoSuchService", "failed", "NotFound", "no service named 'NoSuchService' on this host"],
      ["service", "Refuses", "failed", "Error", "Win32_Service.Change returned 22 (invalid service account)"],
      ["service", "MyService", "changed", "WrongIdentity", undefined],
      ["scheduledTask", "\\Gone", "failed", "NotFound", "no scheduled task 'Gone' in folder '\\'"],
      ["scheduledTask", "\\SCSM\\My Script", "changed", "WrongIdentity", undefined],
      ["iisAppPool", "NoPool", "failed", "NotFound", "no IIS application pool named 'NoPool' on this host"],
      ["iisAppPool", "ReportsPool", "changed", "WrongIdentity", undefined],
    ]);
    const host = await readHostState(statePath);
    expect(host.services.find((s) => s.Name === "Refuses")?.StartName).toBe("LocalSystem");
    expect(host.services.find((s) => s.Name === "MyService")?.StartName).toBe(IDENTITY);
  });

  it("names full of PowerShell metacharacters stay inert data", async () => {
    const canary = join(sshd.dir, "canary.txt");
    await writeFile(canary, "untouched\n");
    const evil = {
      quote: `x'; Remove-Item -Recurse -Force ${sshd.dir} #`,
      subexpr: "$(Set-Content -Path " + canary + " -Value pwned)",
      backtick: 'a`nb`$(whoami)"; exit 1; "',
      newline: "line1\nRemove-Item " + canary + "\n#",
      wildcard: "Svc*",
      group: `Admins"; New-Item -Path ${sshd.dir}/pwned -ItemType File; "`,
      task: "@(Get-ChildItem /); ${env:HOME}",
      pool: "Pool[A]*",
    };
    const { target, statePath } = await newHost((s) => {
      s.services = [
        ...[evil.quote, evil.subexpr, evil.backtick, evil.newline, evil.wildcard].map((Name) => ({
          Name,
          StartName: "LocalSystem",
          State: "Running" as const,
        })),
        // Would match the wildcard 'Svc*' if a name were ever used as a pattern.
        { Name: "SvcOther", StartName: "LocalSystem", State: "Running" },
      ];
      s.localGroups = { [evil.group]: [], Administrators: [] };
      s.localGroupSids = { [evil.group]: "S-1-5-21-7-8-9-1001", Administrators: "S-1-5-32-544" };
      s.tasks = [
        { TaskName: evil.task, TaskPath: "\\", UserId: "SYSTEM", LogonType: "ServiceAccount", RunLevel: "Limited" },
      ];
      s.appPools = [
        { Name: evil.pool, State: "Started", IdentityType: "ApplicationPoolIdentity", UserName: "", Password: "" },
        { Name: "PoolA", State: "Started", IdentityType: "ApplicationPoolIdentity", UserName: "", Password: "" },
      ];
    });
    const binding = bindingRequest("b", "MSA-service1", {
      localGroups: [evil.group],
      services: [evil.quote, evil.subexpr, evil.backtick, evil.newline, evil.wildcard].map((name) => ({ name })),
      scheduledTasks: [{ name: evil.task, path: "\\" }],
      iisAppPools: [{ name: evil.pool }],
    });
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(result.bindings[0]?.items.map((i) => [i.name, i.action])).toEqual([
      ["MSA-service1", "none"],
      [evil.group, "changed"],
      ["SeServiceLogonRight", "changed"],
      ["SeBatchLogonRight", "changed"],
      [evil.quote, "changed"],
      [evil.subexpr, "changed"],
      [evil.backtick, "changed"],
      [evil.newline, "changed"],
      [evil.wildcard, "changed"],
      [`\\${evil.task}`, "changed"],
      [evil.pool, "changed"],
    ]);

    expect(await readFile(canary, "utf8")).toBe("untouched\n");
    const host = await readHostState(statePath);
    // Exactly the named objects changed, each restarted once; the look-alikes are untouched.
    expect(host.services.map((s) => [s.Name, s.StartName, s.Restarts ?? 0])).toEqual([
      [evil.quote, IDENTITY, 1],
      [evil.subexpr, IDENTITY, 1],
      [evil.backtick, IDENTITY, 1],
      [evil.newline, IDENTITY, 1],
      [evil.wildcard, IDENTITY, 1],
      ["SvcOther", "LocalSystem", 0],
    ]);
    expect(host.localGroups).toEqual({ [evil.group]: [SERVICE1_SID], Administrators: [] });
    expect(host.tasks[0]).toMatchObject({ TaskName: evil.task, UserId: IDENTITY });
    expect(host.appPools.map((p) => [p.Name, p.UserName, p.Recycles ?? 0])).toEqual([
      [evil.pool, IDENTITY, 1],
      ["PoolA", "", 0],
    ]);
    const { stdout } = await exec("ls", [sshd.dir]);
    expect(stdout.split("\n")).not.toContain("pwned");
  });

  it("a request the script cannot accept is refused as a whole, before anything is touched", async () => {
    const { target, statePath } = await newHost();
    const bad = { ...request(target, "apply", [fullBinding]), version: 99 } as unknown as HostRequest;
    const e1 = await rejection(driver.run(target, bad));
    expect([e1.reason, e1.outcome]).toEqual(["RequestRejected", "stalled"]);
    expect(e1.message).toContain("UnsupportedVersion");

    const tooLong = request(target, "apply", [{ ...fullBinding, account: "MSA-much-too-long-name" }]);
    const e2 = await rejection(driver.run(target, tooLong));
    expect(e2.reason).toBe("RequestRejected");
    expect(e2.message).toContain("bindings[0].account");

    // A request for another machine that reaches this one (a stale DNS record) acts on nothing.
    const misdirected = { ...target, host: "OTHERHOST" };
    const e3 = await rejection(driver.run(misdirected, request(misdirected, "apply", [fullBinding])));
    expect(e3.reason).toBe("RequestRejected");
    expect(e3.message).toContain(`this is '${target.host}'`);

    expect((await readHostState(statePath)).events).toEqual([]);
  });

  it("an unreachable host fails fast as transient while the other hosts of the fleet succeed", async () => {
    const a = await newHost();
    const b = await newHost();
    const closed = { host: "DOWN1", address: "127.0.0.1", port: 1 };
    const binding = bindingRequest("b", "MSA-service1", { services: [{ name: "MyService" }] });
    const outcomes = await runFleet(
      driver,
      [a.target, closed, b.target].map((t) => ({ target: t, request: request(t, "observe", [binding]) })),
      { concurrency: 2 },
    );
    expect(outcomes.map((o) => [o.target.host, o.ok])).toEqual([
      [a.target.host, true],
      ["DOWN1", false],
      [b.target.host, true],
    ]);
    const down = outcomes[1];
    if (down?.ok !== false) throw new Error("expected a failure");
    expect([down.error.reason, down.error.outcome]).toEqual(["Unreachable", "transient"]);
    expect(down.durationMs).toBeLessThan(2_000);
  });

  it("a changed host key and an unknown host are refused as stalled; a hashed known_hosts entry is accepted", async () => {
    const { target } = await newHost();
    const req = request(target, "observe", []);

    const otherKey = await makeKey(join(sshd.dir, "impostor_ed25519"));
    const changed = join(sshd.dir, "known_hosts.changed");
    await writeFile(changed, `[127.0.0.1]:${sshd.port} ${otherKey}\n`);
    const mismatch = await createSshDriver({
      privateKeyPath: sshd.clientKeyPath,
      knownHostsPath: changed,
      username: sshd.username,
    });
    const e1 = await rejection(mismatch.run(target, req));
    expect([e1.reason, e1.outcome]).toEqual(["HostKeyMismatch", "stalled"]);
    expect(e1.message).toMatch(/presented host key SHA256:\S+, which known_hosts does not list/);

    const empty = join(sshd.dir, "known_hosts.empty");
    await writeFile(empty, `# nothing pinned\n[127.0.0.1]:${sshd.port + 1} ${otherKey}\n`);
    const unknown = await createSshDriver({
      privateKeyPath: sshd.clientKeyPath,
      knownHostsPath: empty,
      username: sshd.username,
    });
    const e2 = await rejection(unknown.run(target, req));
    expect([e2.reason, e2.outcome]).toEqual(["HostKeyUnknown", "stalled"]);

    // ssh-keygen -H hashes host names as OpenSSH's HashKnownHosts does.
    const hashed = join(sshd.dir, "known_hosts.hashed");
    await copyFile(sshd.knownHostsPath, hashed);
    await exec("ssh-keygen", ["-H", "-f", hashed]);
    expect(await readFile(hashed, "utf8")).toMatch(/^\|1\|/);
    const viaHashed = await createSshDriver({
      privateKeyPath: sshd.clientKeyPath,
      knownHostsPath: hashed,
      username: sshd.username,
    });
    const ok = await viaHashed.run(target, req);
    expect(ok.host).toBe(target.host);
  });

  it("a key the server does not accept is refused as stalled", async () => {
    const { target } = await newHost();
    const stranger = join(sshd.dir, "stranger_ed25519");
    await makeKey(stranger);
    const d = await createSshDriver({
      privateKeyPath: stranger,
      knownHostsPath: sshd.knownHostsPath,
      username: sshd.username,
    });
    const e = await rejection(d.run(target, request(target, "observe", [])));
    expect([e.reason, e.outcome]).toEqual(["AuthFailed", "stalled"]);
  });

  it("an aborted run ends at once as Aborted", async () => {
    const { target } = await newHost();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const e = await rejection(
      driver.run({ ...target, shell: "sleep 30;true" }, request(target, "observe", []), controller.signal),
    );
    expect(e.reason).toBe("Aborted");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("a host script running past the command timeout is cut off as a transient timeout", async () => {
    const { target } = await newHost();
    const d = await createSshDriver({
      privateKeyPath: sshd.clientKeyPath,
      knownHostsPath: sshd.knownHostsPath,
      username: sshd.username,
      commandTimeoutMs: 1_500,
    });
    const started = Date.now();
    const e = await rejection(d.run({ ...target, shell: "sleep 30;true" }, request(target, "observe", [])));
    expect([e.reason, e.outcome]).toEqual(["Timeout", "transient"]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("host script through the local driver", () => {
  it("runs the same script with a local pwsh and applies through the doubles", async () => {
    const { target, statePath } = await newHost();
    const local = createLocalDriver({ command: launcherCommand(statePath), platform: "linux" });
    const binding = bindingRequest("b", "MSA-service1", { localGroups: ["Administrators"] });
    const result = await local.run(target, request(target, "apply", [binding]));
    expect(items(result)).toEqual([
      { item: "retrievable", name: "MSA-service1", action: "none" },
      { item: "localGroup", name: "Administrators", action: "changed", reason: "NotMember" },
    ]);
    expect((await readHostState(statePath)).localGroups["Administrators"]).toContain(SERVICE1_SID);
  });
});
