/**
 * The JSON file that stands for one Windows host in tests, read and written by doubles.ps1.
 * Tests create it with writeHostState, point the driver at launcherCommand/launcherShell, and
 * check what the host script changed with readHostState (an independent path: the file, not
 * the script's own result).
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** How the Test-ADServiceAccount double reaches the DC (ldapsearch over LDAPS). */
export interface DoubleAd {
  readonly url: string;
  readonly caFile: string;
  readonly baseDn: string;
  /** The host's computer account DN: the double binds as HOST$. */
  readonly bindDn: string;
  /** A 0600 file holding the computer account's password (ldapsearch -y). */
  readonly passwordFile: string;
  /** argv prefix for ldapsearch, e.g. ["ldapsearch"] or ["nsenter", "--net=...", "ldapsearch"]. */
  readonly command: readonly string[];
}

/** One Windows service as Win32_Service shows it. */
export interface DoubleService {
  Name: string;
  StartName: string;
  State: "Running" | "Stopped";
  /** Set by the double: the StartPassword of the last Change call. */
  LastStartPassword?: string;
  /** Set by the double: how many times Restart-Service hit it. */
  Restarts?: number;
  /** Makes Win32_Service.Change return this code instead of changing anything. */
  changeReturnValue?: number;
}

/** One scheduled task with its principal. */
export interface DoubleTask {
  TaskName: string;
  TaskPath: string;
  UserId: string;
  LogonType: string;
  RunLevel: "Limited" | "Highest";
}

/** One IIS application pool. */
export interface DoubleAppPool {
  Name: string;
  State: "Started" | "Stopped";
  IdentityType: string;
  UserName: string;
  Password: string;
  Recycles?: number;
}

/** The whole test host. */
export interface DoubleHostState {
  /** $env:COMPUTERNAME on the test host. */
  computer: string;
  /** When present, Test-ADServiceAccount asks the DC; otherwise `retrievable` answers. */
  ad?: DoubleAd | null;
  retrievable?: Record<string, boolean>;
  /** cacheTickets: answers are cached per account until `klist -li 0x3e7 purge`, like a TGT. */
  kerberos: { cacheTickets: boolean; tickets: Record<string, boolean> };
  localGroups: Record<string, string[]>;
  /** Right name -> holders, as secedit exports them ('*S-1-...' or 'DOMAIN\name'). */
  rights: Record<string, string[]>;
  services: DoubleService[];
  tasks: DoubleTask[];
  appPools: DoubleAppPool[];
  /** Commands that throw (e.g. "Get-LocalGroupMember", "secedit /export", "Restart-Service"). */
  failOn?: string[];
  /** Appended by the doubles: one entry per call that asked or changed something. */
  events?: { command: string; detail: string }[];
}

/** The launcher that loads the doubles and then runs the transport's bootstrap unchanged. */
export const LAUNCHER = fileURLToPath(new URL("./launcher.ps1", import.meta.url));

/** argv for the local driver: pwsh running the launcher for one state file. */
export function launcherCommand(statePath: string, pwsh = "pwsh"): string[] {
  return [pwsh, "-NoProfile", "-NonInteractive", "-File", LAUNCHER, "-StatePath", statePath];
}

/**
 * The remote shell for the ssh driver (a command line run by the login user's shell; paths
 * must not contain whitespace). PowerShell's telemetry and update check are switched off: with
 * no internet they only add start-up time.
 */
export function launcherShell(statePath: string, pwsh = "pwsh"): string {
  for (const p of [LAUNCHER, statePath, pwsh])
    if (/\s/.test(p)) throw new Error(`path with whitespace cannot go into a shell command line: ${p}`);
  return [
    "env",
    "POWERSHELL_TELEMETRY_OPTOUT=1",
    "POWERSHELL_UPDATECHECK=Off",
    ...launcherCommand(statePath, pwsh),
  ].join(" ");
}

/** Writes a host's state (atomically: the doubles may be reading). */
export async function writeHostState(path: string, state: DoubleHostState): Promise<void> {
  await writeFile(`${path}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${path}.tmp`, path);
}

/** Reads a host's state as the doubles left it. */
export async function readHostState(path: string): Promise<DoubleHostState> {
  return JSON.parse(await readFile(path, "utf8")) as DoubleHostState;
}

/** A typical host: SERVER1-like, with a service, a task and a pool still on their old identities. */
export function sampleHost(computer: string): DoubleHostState {
  return {
    computer,
    ad: null,
    retrievable: {},
    kerberos: { cacheTickets: false, tickets: {} },
    localGroups: { Administrators: [`${computer}\\Administrator`], "Performance Log Users": [] },
    rights: { SeServiceLogonRight: ["*S-1-5-80-0"], SeBatchLogonRight: ["*S-1-5-32-544", "*S-1-5-32-551"] },
    services: [
      { Name: "MyService", StartName: "LocalSystem", State: "Running" },
      { Name: "Spooler", StartName: "LocalSystem", State: "Running" },
    ],
    tasks: [
      {
        TaskName: "My Script",
        TaskPath: "\\SCSM\\",
        UserId: "SYSTEM",
        LogonType: "ServiceAccount",
        RunLevel: "Limited",
      },
    ],
    appPools: [
      { Name: "ReportsPool", State: "Started", IdentityType: "ApplicationPoolIdentity", UserName: "", Password: "" },
    ],
    events: [],
  };
}
