/**
 * The JSON file that stands for one Windows host in tests, read and written by the doubles
 * (the GmsaWindowsDoubles module for cmdlets and native commands, netapi32.c + netapi-helper.ts
 * for the P/Invoke side). Tests create it with writeHostState, point the driver at
 * launcherCommand/launcherShell (real pwsh run exactly as on Windows, the doubles found through
 * PSModulePath and LD_LIBRARY_PATH), and check what the host script changed with readHostState
 * (an independent path: the file, not the script's own result).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** How the NetQueryServiceAccount double reaches the DC (ldapsearch over LDAPS). */
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
  /** NetBIOS domain name LookupAccountName reports for a domain account. */
  readonly domain?: string;
}

/** A security principal the host can resolve (LookupAccountName/Sid). */
export interface DoublePrincipal {
  sid: string;
  /** The names it resolves from; the first is how Windows shows it (DOMAIN\\name). */
  names: string[];
  /** A group managed service account: needs no password, and a retrievable one to start. */
  gmsa?: boolean;
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
  /** The SID of an account the service's process cannot run as: a start as it fails. */
  failsToStartAs?: string;
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
  /** When present, NetQueryServiceAccount asks the DC; otherwise `retrievable` answers. */
  ad?: DoubleAd | null;
  retrievable?: Record<string, boolean>;
  /** cacheTickets: answers are cached per account until `klist -li 0x3e7 purge`, like a TGT. */
  kerberos: { cacheTickets: boolean; tickets: Record<string, boolean> };
  principals: DoublePrincipal[];
  /** Shows gMSA principals (service StartName, task UserId) as acct$, DOMAIN\\acct$, UPN or SID at random. */
  randomPrincipalForms?: boolean;
  /** Local group (its name on this host, e.g. "Administratoren") -> member SIDs. */
  localGroups: Record<string, string[]>;
  /** Local group name -> its SID (S-1-5-32-544 for Administrators in any language). */
  localGroupSids: Record<string, string>;
  /** Right name -> holders ('*S-1-...' or 'DOMAIN\\name'); secedit exports resolvable ones as SIDs. */
  rights: Record<string, string[]>;
  /** Rights a domain GPO defines (RSoP precedence 1): put back at the start of every run. */
  gpo?: Record<string, { id: string; name: string; accounts: string[] }>;
  /** secedit /configure ends with its "warnings occurred" exit code 3. */
  seceditWarnings?: boolean;
  services: DoubleService[];
  tasks: DoubleTask[];
  appPools: DoubleAppPool[];
  /** Commands that fail (e.g. "Get-LocalGroupMember", "secedit /export", "NetQueryServiceAccount"). */
  failOn?: string[];
  /** Appended by the doubles: one entry per call that asked or changed something. */
  events?: { command: string; detail: string }[];
}

const HERE = dirname(fileURLToPath(import.meta.url));
const HELPER = join(HERE, "netapi-helper.ts");

/**
 * Builds the netapi32/advapi32 double (once per source version) and returns its folder, which
 * goes on LD_LIBRARY_PATH: .NET then loads it for [DllImport("netapi32.dll")] and "advapi32.dll".
 */
export function nativeDoublesDir(): string {
  const source = join(HERE, "netapi32.c");
  const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), `gmsa-native-doubles-${hash}`);
  if (!existsSync(join(dir, "advapi32.dll"))) {
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `netapi32.${process.pid}.tmp`);
    execFileSync("gcc", ["-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, source]);
    copyFileSync(tmp, join(dir, `advapi32.${process.pid}.tmp`));
    renameSync(tmp, join(dir, "netapi32.dll"));
    renameSync(join(dir, `advapi32.${process.pid}.tmp`), join(dir, "advapi32.dll"));
  }
  return dir;
}

/**
 * Builds the Microsoft.Web.Administration.dll double (once per source version) where the host
 * script loads it from, `$windir/System32/inetsrv`; returns the folder that stands for %windir%.
 */
export function iisDoubleWindir(): string {
  const source = join(HERE, "Microsoft.Web.Administration.cs");
  const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 16);
  const windir = join(tmpdir(), `gmsa-iis-double-${hash}`);
  const inetsrv = join(windir, "System32", "inetsrv");
  const dll = join(inetsrv, "Microsoft.Web.Administration.dll");
  if (!existsSync(dll)) {
    mkdirSync(inetsrv, { recursive: true });
    const tmp = join(inetsrv, `build-${process.pid}.tmp`);
    execFileSync(
      "pwsh",
      [
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        "Add-Type -Path $env:IIS_SRC -OutputAssembly $env:IIS_OUT -OutputType Library",
      ],
      { env: { ...process.env, IIS_SRC: source, IIS_OUT: tmp } },
    );
    renameSync(tmp, dll);
  }
  return windir;
}

/**
 * The environment a test host runs with: where its state is, where PowerShell finds the doubles
 * module, where .NET finds the native doubles and IIS's assembly, and the computer name Windows
 * would set.
 */
export function hostEnv(statePath: string): Record<string, string> {
  const computer = (JSON.parse(readFileSync(statePath, "utf8")) as DoubleHostState).computer;
  return {
    GMSA_DOUBLE_STATE: statePath,
    GMSA_DOUBLE_NODE: process.execPath,
    GMSA_DOUBLE_NETAPI_HELPER: HELPER,
    PSModulePath: HERE,
    LD_LIBRARY_PATH: nativeDoublesDir(),
    COMPUTERNAME: computer,
    windir: iisDoubleWindir(),
    // With no internet these only add start-up time.
    POWERSHELL_TELEMETRY_OPTOUT: "1",
    POWERSHELL_UPDATECHECK: "Off",
  };
}

/** The PowerShell command line, as on Windows (the transport appends `-EncodedCommand <bootstrap>`). */
const PWSH_ARGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"];

/** Runs the -EncodedCommand in Constrained Language Mode (a host under AppLocker/WDAC). */
const CLM_LAUNCHER = join(HERE, "clm-launcher.ps1");

/**
 * argv for the local driver: `env VAR=... pwsh -NoProfile ...` for one state file; with "clm",
 * a host whose PowerShell runs in Constrained Language Mode.
 */
export function launcherCommand(statePath: string, pwsh = "pwsh", variant: "windows" | "clm" = "windows"): string[] {
  const env = ["env", ...Object.entries(hostEnv(statePath)).map(([k, v]) => `${k}=${v}`)];
  if (variant === "clm") return [...env, pwsh, "-NoProfile", "-NonInteractive", "-File", CLM_LAUNCHER];
  return [...env, pwsh, ...PWSH_ARGS];
}

/**
 * The remote shell for the ssh driver: the same command line as a Windows host's
 * (`pwsh -NoProfile -NonInteractive -ExecutionPolicy Bypass`), run by the login user's shell
 * with the test host's environment in front (paths must not contain whitespace).
 */
export function launcherShell(statePath: string, pwsh = "pwsh", variant: "windows" | "clm" = "windows"): string {
  const argv = launcherCommand(statePath, pwsh, variant);
  for (const p of argv) if (/[\s'"$`\\;&|<>]/.test(p)) throw new Error(`cannot go into a shell command line: ${p}`);
  return argv.join(" ");
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

/** The SID of a test domain account (domain COMPANY, S-1-5-21-1000-2000-3000). */
export function domainSid(rid: number): string {
  return `S-1-5-21-1000-2000-3000-${rid}`;
}

/** A gMSA principal as the test hosts resolve it: COMPANY\\name$, name$, name$@company.local. */
export function gmsaPrincipal(account: string, rid: number): DoublePrincipal {
  return {
    sid: domainSid(rid),
    names: [`COMPANY\\${account}$`, `${account}$`, `${account}$@company.local`],
    gmsa: true,
  };
}

/** SID of MSA-service1 on every sample host. */
export const SERVICE1_SID = domainSid(1105);

/** SID of the local Administrator account on every sample host. */
export const ADMIN_SID = "S-1-5-21-7-8-9-500";

/** A typical host: SERVER1-like, with a service, a task and a pool still on their old identities. */
export function sampleHost(computer: string): DoubleHostState {
  const admin = ADMIN_SID;
  return {
    computer,
    ad: null,
    retrievable: {},
    kerberos: { cacheTickets: false, tickets: {} },
    principals: [
      { sid: admin, names: [`${computer}\\Administrator`, "Administrator"] },
      { sid: "S-1-5-18", names: ["NT AUTHORITY\\SYSTEM", "LocalSystem", "SYSTEM"] },
      { sid: "S-1-5-80-0", names: ["NT SERVICE\\ALL SERVICES"] },
      { sid: "S-1-5-32-544", names: ["BUILTIN\\Administrators"] },
      { sid: "S-1-5-32-551", names: ["BUILTIN\\Backup Operators"] },
      gmsaPrincipal("MSA-service1", 1105),
      gmsaPrincipal("MSA-service2", 1106),
    ],
    localGroups: { Administrators: [admin], "Performance Log Users": [] },
    localGroupSids: { Administrators: "S-1-5-32-544", "Performance Log Users": "S-1-5-32-559" },
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
