// The Windows behaviours the host script relies on, each through a double as strict as Windows
// (controller/hosts/README.md lists them with the Microsoft document each comes from). Real
// pwsh behind a real sshd, launched exactly as on Windows: `pwsh -NoProfile -NonInteractive
// -ExecutionPolicy Bypass -EncodedCommand <bootstrap>`, script and request on stdin; the
// doubles are found through PSModulePath (cmdlets, native commands) and LD_LIBRARY_PATH
// (netapi32.dll / advapi32.dll for P/Invoke). Outcomes are checked in the host's state file.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostDriver, HostResult } from "../controller/hosts/index.ts";
import { bindingRequest, HostError } from "../controller/hosts/index.ts";
import { parseScriptOutput } from "../controller/hosts/result.ts";
import type { DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import { ADMIN_SID, launcherShell, readHostState, SERVICE1_SID } from "./harness/pwsh-doubles/state.ts";
import type { SshHostLab } from "./harness/ssh-hosts.ts";
import { hostRequest, rejection, startSshHostLab } from "./harness/ssh-hosts.ts";
import type { Sshd } from "./harness/sshd.ts";

const exec = promisify(execFile);
const IDENTITY = "COMPANY\\MSA-service1$";

let lab: SshHostLab;
let sshd: Sshd;
let driver: HostDriver;

beforeAll(async () => {
  lab = await startSshHostLab("WIN", 120_000);
  ({ sshd, driver } = lab);
});

afterAll(async () => {
  await lab?.stop();
});

const newHost = (edit?: (s: DoubleHostState) => void): ReturnType<SshHostLab["newHost"]> => lab.newHost(edit);
const request = hostRequest;

function summary(result: HostResult): [string, string, string, string | undefined][] {
  return (result.bindings[0]?.items ?? []).map((i) => [i.item, i.name, i.action, i.reason]);
}

describe("retrievability (item 1)", { timeout: 300_000 }, () => {
  it("is asked of the machine through NetQueryServiceAccount, so an ssh logon without delegated credentials works", async () => {
    // Over ssh with key authentication Test-ADServiceAccount cannot reach ADWS (double hop):
    // the double fails as Windows does. NetQueryServiceAccount runs in LSA and still answers.
    const { target, statePath } = await newHost((s) => {
      s.failOn = ["Test-ADServiceAccount"];
      s.retrievable = { "MSA-service1": true, "MSA-service2": false };
    });
    const result = await driver.run(
      target,
      request(target, "observe", [
        bindingRequest("one", "MSA-service1", {}),
        bindingRequest("two", "MSA-service2", {}),
        bindingRequest("three", "MSA-nobody", {}),
      ]),
    );
    expect(result.bindings.map((b) => [b.name, b.retrievable, b.items[0]?.action, b.items[0]?.reason])).toEqual([
      ["one", true, "none", undefined],
      ["two", false, "failed", "NotRetrievable"],
      ["three", false, "failed", "NotFound"],
    ]);
    expect(result.bindings[2]?.items[0]?.error).toContain("MsaInfoNotExist");
    const events = (await readHostState(statePath)).events ?? [];
    expect(events.filter((e) => e.command === "NetQueryServiceAccount").map((e) => e.detail)).toEqual([
      "MSA-service1$=4",
      "MSA-service2$=3",
      "MSA-nobody$=1",
    ]);
    expect(events.some((e) => e.command === "Test-ADServiceAccount")).toBe(false);
  });

  it("a failing NetQueryServiceAccount fails the retrievable item with the Win32 error", async () => {
    const { target } = await newHost((s) => {
      s.failOn = ["NetQueryServiceAccount"];
    });
    const result = await driver.run(target, request(target, "observe", [bindingRequest("b", "MSA-service1", {})]));
    expect(result.bindings[0]?.items[0]).toMatchObject({ action: "failed", reason: "Error" });
    expect(result.bindings[0]?.items[0]?.error).toMatch(/^NetQueryServiceAccount failed with error 1722 /);
  });
});

describe("identity switches (items 2 and 3)", { timeout: 300_000 }, () => {
  it("waits while the host cannot retrieve the password: the service keeps running as before", async () => {
    const { target, statePath } = await newHost((s) => {
      s.retrievable = { "MSA-service1": false };
    });
    const binding = bindingRequest(
      "b",
      "MSA-service1",
      {
        services: [{ name: "MyService" }],
        scheduledTasks: [{ name: "My Script", path: "\\SCSM\\" }],
        iisAppPools: [{ name: "ReportsPool" }],
      },
      { recentlyAllowed: true },
    );
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(result.bindings[0]?.retrievable).toBe("pending");
    expect(summary(result)).toEqual([
      ["retrievable", "MSA-service1", "pending", "TicketNotRefreshed"],
      ["logonRight", "SeServiceLogonRight", "changed", "Missing"],
      ["logonRight", "SeBatchLogonRight", "changed", "Missing"],
      ["service", "MyService", "pending", "WaitingForRetrieval"],
      ["scheduledTask", "\\SCSM\\My Script", "pending", "WaitingForRetrieval"],
      ["iisAppPool", "ReportsPool", "pending", "WaitingForRetrieval"],
    ]);
    expect(result.bindings[0]?.items[3]?.error).toContain("waits for a fresh Kerberos ticket");
    const host = await readHostState(statePath);
    expect(host.services[0]).toEqual({ Name: "MyService", StartName: "LocalSystem", State: "Running" });
    expect(host.tasks[0]?.UserId).toBe("SYSTEM");
    expect(host.appPools[0]?.IdentityType).toBe("ApplicationPoolIdentity");
  });

  it("grants the logon rights Windows needs, sends no password, and the service starts as the gMSA", async () => {
    // The manifest names no logon right; without SeServiceLogonRight the restart fails with 1069.
    const { target, statePath } = await newHost();
    const binding = bindingRequest("b", "MSA-service1", { services: [{ name: "MyService" }] });
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(summary(result)).toEqual([
      ["retrievable", "MSA-service1", "none", undefined],
      ["logonRight", "SeServiceLogonRight", "changed", "Missing"],
      ["service", "MyService", "changed", "WrongIdentity"],
    ]);
    expect(result.bindings[0]?.items[2]?.restarted).toBe(true);
    const host = await readHostState(statePath);
    expect(host.services[0]).toMatchObject({ StartName: IDENTITY, State: "Running", Restarts: 1 });
    expect(host.services[0] && "LastStartPassword" in host.services[0]).toBe(false);
    expect(host.rights["SeServiceLogonRight"]).toContain(`*${SERVICE1_SID}`);
  });

  it("a service that will not start as the gMSA is put back to its old account and started again", async () => {
    // Retrieval works and the right is held, but the service's process cannot run as the gMSA
    // (it may not read its own files): Restart-Service stopped it and the start failed.
    const { target, statePath } = await newHost((s) => {
      s.services = [{ Name: "MyService", StartName: "LocalSystem", State: "Running", failsToStartAs: SERVICE1_SID }];
    });
    const binding = bindingRequest("b", "MSA-service1", { services: [{ name: "MyService" }] });
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(result.bindings[0]?.items[2]).toMatchObject({ item: "service", action: "failed", restarted: false });
    expect(result.bindings[0]?.items[2]?.error).toMatch(
      /restart failed: .*; put back to LocalSystem and started again$/,
    );
    const host = await readHostState(statePath);
    expect(host.services[0]).toMatchObject({ StartName: "LocalSystem", State: "Running" });
  });
});

describe("identities by SID (items 5 and 6)", { timeout: 300_000 }, () => {
  it("a service or task shown as acct$, DOMAIN\\acct$, UPN or SID is in sync", async () => {
    const forms = ["MSA-service1$", IDENTITY, "MSA-service1$@company.local", SERVICE1_SID];
    const { target, statePath } = await newHost((s) => {
      s.randomPrincipalForms = true;
      s.services = forms.map((StartName, i) => ({ Name: `Svc${i}`, StartName, State: "Running" as const }));
      s.tasks = forms.map((UserId, i) => ({
        TaskName: `Task${i}`,
        TaskPath: "\\",
        UserId,
        LogonType: "Password",
        RunLevel: "Limited" as const,
      }));
      s.rights["SeServiceLogonRight"] = ["*S-1-5-80-0", IDENTITY];
      s.rights["SeBatchLogonRight"] = [`*${SERVICE1_SID}`];
    });
    const binding = bindingRequest("b", "MSA-service1", {
      services: forms.map((_, i) => ({ name: `Svc${i}` })),
      scheduledTasks: forms.map((_, i) => ({ name: `Task${i}` })),
    });
    for (let round = 0; round < 2; round++) {
      const result = await driver.run(target, request(target, "apply", [binding]));
      expect(result.bindings[0]?.items.filter((i) => i.action !== "none")).toEqual([]);
    }
    const host = await readHostState(statePath);
    expect(host.events?.filter((e) => e.command !== "NetQueryServiceAccount")).toEqual([]);
  });

  it("a built-in group is found by its SID on a German server, past an orphaned SID", async () => {
    const orphan = "S-1-5-21-4000-5000-6000-1234";
    const { target, statePath } = await newHost((s) => {
      s.localGroups = { Administratoren: [ADMIN_SID, orphan], Remotedesktopbenutzer: [orphan, SERVICE1_SID] };
      s.localGroupSids = { Administratoren: "S-1-5-32-544", Remotedesktopbenutzer: "S-1-5-32-555" };
    });
    const binding = bindingRequest("b", "MSA-service1", {
      localGroups: ["Administrators", "S-1-5-32-555", "Hyper-V Administrators"],
    });
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(summary(result)).toEqual([
      ["retrievable", "MSA-service1", "none", undefined],
      ["localGroup", "Administrators", "changed", "NotMember"],
      ["localGroup", "S-1-5-32-555", "none", undefined],
      ["localGroup", "Hyper-V Administrators", "failed", "Error"],
    ]);
    expect(result.bindings[0]?.items[3]?.error).toContain("no local group with the SID S-1-5-32-578");
    const host = await readHostState(statePath);
    expect(host.localGroups["Administratoren"]).toEqual([ADMIN_SID, orphan, SERVICE1_SID]);
  });
});

describe("logon rights and group policy (items 4 and 8)", { timeout: 300_000 }, () => {
  it("a right a GPO defines is reported with the GPO's name and never written", async () => {
    const { target, statePath } = await newHost((s) => {
      s.gpo = {
        SeServiceLogonRight: {
          id: "31B2F340-016D-11D2-945F-00C04FB984F9",
          name: "Server Baseline",
          accounts: ["*S-1-5-80-0"],
        },
      };
    });
    const binding = bindingRequest("b", "MSA-service1", {
      logonRights: ["SeServiceLogonRight"],
      services: [{ name: "MyService" }],
    });
    for (let round = 0; round < 2; round++) {
      const result = await driver.run(target, request(target, "apply", [binding]));
      expect(summary(result)).toEqual([
        ["retrievable", "MSA-service1", "none", undefined],
        ["logonRight", "SeServiceLogonRight", "failed", "DefinedByPolicy"],
        ["service", "MyService", "failed", "NoLogonRight"],
      ]);
      expect(result.bindings[0]?.items[1]?.error).toContain("GPO 'Server Baseline'");
    }
    const host = await readHostState(statePath);
    expect(host.events?.some((e) => e.command === "secedit /configure")).toBe(false);
    expect(host.services[0]).toEqual({ Name: "MyService", StartName: "LocalSystem", State: "Running" });
  });

  it("a deny right that lists the account is reported and blocks the switch", async () => {
    const { target, statePath } = await newHost((s) => {
      s.rights["SeDenyBatchLogonRight"] = [`*${SERVICE1_SID}`];
    });
    const binding = bindingRequest("b", "MSA-service1", { scheduledTasks: [{ name: "My Script", path: "\\SCSM\\" }] });
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(summary(result)).toEqual([
      ["retrievable", "MSA-service1", "none", undefined],
      ["logonRight", "SeDenyBatchLogonRight", "failed", "DeniedByPolicy"],
      ["logonRight", "SeBatchLogonRight", "changed", "Missing"],
      ["scheduledTask", "\\SCSM\\My Script", "failed", "NoLogonRight"],
    ]);
    expect((await readHostState(statePath)).tasks[0]?.UserId).toBe("SYSTEM");
  });

  it("native commands: secedit's warning exit code and klist's stderr do not fail the item", async () => {
    const { target, statePath } = await newHost((s) => {
      s.seceditWarnings = true;
      s.kerberos = { cacheTickets: true, tickets: { "MSA-service1": false } };
    });
    const binding = bindingRequest(
      "b",
      "MSA-service1",
      { logonRights: ["SeBatchLogonRight"], purgeKerberosTickets: true },
      { recentlyAllowed: true },
    );
    const result = await driver.run(target, request(target, "apply", [binding]));
    expect(summary(result)).toEqual([
      ["retrievable", "MSA-service1", "changed", "TicketNotRefreshed"],
      ["logonRight", "SeBatchLogonRight", "changed", "Missing"],
    ]);
    const events = (await readHostState(statePath)).events ?? [];
    expect(events.filter((e) => e.command === "klist").length).toBe(1);
  });
});

describe("errors from the host (items 9 and 10)", { timeout: 300_000 }, () => {
  it("stderr written as CLIXML by -EncodedCommand is decoded into the message", async () => {
    // Real pwsh, started with -EncodedCommand and a redirected stderr, as the transports do.
    const command = Buffer.from("Write-Error 'the disk <C:> is full & read-only'; exit 5", "utf16le").toString(
      "base64",
    );
    const child = await exec("pwsh", ["-NoProfile", "-NonInteractive", "-EncodedCommand", command]).catch(
      (e: { stdout: string; stderr: string; code: number }) => e,
    );
    expect(child.stderr).toContain("#< CLIXML");
    const req = { version: 2, mode: "observe", host: "H1", domain: "COMPANY", bindings: [] } as const;
    let error: unknown;
    try {
      parseScriptOutput("H1", req, { stdout: child.stdout, stderr: child.stderr, exitCode: 5 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HostError);
    const message = (error as HostError).message;
    expect(message).toContain("the disk <C:> is full & read-only");
    expect(message).not.toMatch(/CLIXML|<Objs|_x00/);
    expect(message.includes("\u001b")).toBe(false);
  });

  it("Constrained Language Mode is refused with a message naming the fix", async () => {
    // Linux has no AppLocker: clm-launcher.ps1 switches the session to ConstrainedLanguage and
    // runs the -EncodedCommand it is given there, as a locked-down Windows host would.
    const { target } = await newHost();
    const clm = { ...target, shell: launcherShell(join(sshd.dir, `${target.host}.json`), "pwsh", "clm") };
    const e = await rejection(driver.run(clm, request(clm, "observe", [bindingRequest("b", "MSA-service1", {})])));
    expect([e.reason, e.outcome]).toEqual(["RequestRejected", "stalled"]);
    expect(e.message).toContain("Constrained Language Mode");
    expect(e.message).toContain("signed");
  });
});
