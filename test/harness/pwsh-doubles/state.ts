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

/** One access-control entry of a folder's DACL (FileSystemRights as a number, flags by their .NET names). */
export interface DoubleAce {
  sid: string;
  type: "Allow" | "Deny";
  rights: number;
  /** InheritanceFlags: "None", "ContainerInherit", "ObjectInherit" or "ContainerInherit, ObjectInherit". */
  inheritance: string;
  /** PropagationFlags: "None", "InheritOnly", "NoPropagateInherit" or both. */
  propagation: string;
  /** Inherited from the parent folder (INHERITED_ACE): Windows recomputes these, nobody writes them. */
  inherited: boolean;
}

/** A folder (or file) on the test host, keyed in `files` by its path as Windows shows it. */
export interface DoubleFsItem {
  type: "Directory" | "File";
  owner: string;
  /** The DACL does not inherit from the parent (SE_DACL_PROTECTED). */
  protected?: boolean;
  /** Explicit entries first (deny, then allow), inherited entries after, as in a canonical ACL. */
  acl: DoubleAce[];
  /**
   * The SACL's audit entries, which only a caller holding SeSecurityPrivilege reads or writes; a
   * write that carries no SACL (Set-Acl of a DACL-only object, run elevated) removes them.
   */
  audit?: { sid: string; rights: number; flags: "Success" | "Failure" | "Success, Failure" }[];
  /** A junction or symbolic link (FILE_ATTRIBUTE_REPARSE_POINT) and where it points. */
  reparse?: { type: "Junction" | "SymbolicLink"; target: string };
}

/** FileSystemRights values (System.Security.AccessControl). */
export const RIGHTS = {
  Read: 0x20089,
  ReadAndExecute: 0x200a9,
  Write: 0x116,
  Modify: 0x301bf,
  FullControl: 0x1f01ff,
  Synchronize: 0x100000,
} as const;

/** The whole test host. */
export interface DoubleHostState {
  /** $env:COMPUTERNAME on the test host. */
  computer: string;
  /** When present, NetQueryServiceAccount asks the DC; otherwise `retrievable` answers. */
  ad?: DoubleAd | null;
  retrievable?: Record<string, boolean>;
  /** Standalone MSAs installed in this host's LSA by NetAddServiceAccount (sAMAccountName without '$'). */
  installedServiceAccounts?: string[];
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
  /** Drive letter ("D:") -> its volume as Win32_LogicalDisk shows it (FileSystem null: no media). */
  volumes?: Record<string, { fileSystem: string | null; driveType: number }>;
  /** Path -> folder or file, drive roots ("D:\\") included; compared without regard to case. */
  files?: Record<string, DoubleFsItem>;
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
 * Compiles a C# double (once per source version) with pwsh's Add-Type into
 * `$TMPDIR/<prefix>-<hash>/<subdir>/<dll>`; returns the folder `<prefix>-<hash>`.
 */
function buildDouble(sourceName: string, prefix: string, subdir: string[], dllName: string): string {
  const source = join(HERE, sourceName);
  const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 16);
  const root = join(tmpdir(), `${prefix}-${hash}`);
  const dir = join(root, ...subdir);
  const dll = join(dir, dllName);
  if (!existsSync(dll)) {
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `build-${process.pid}.tmp`);
    execFileSync(
      "pwsh",
      [
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        "Add-Type -Path $env:DOUBLE_SRC -OutputAssembly $env:DOUBLE_OUT -OutputType Library",
      ],
      { env: { ...process.env, DOUBLE_SRC: source, DOUBLE_OUT: tmp } },
    );
    renameSync(tmp, dll);
  }
  return root;
}

/**
 * Builds the Microsoft.Web.Administration.dll double (once per source version) where the host
 * script loads it from, `$windir/System32/inetsrv`; returns the folder that stands for %windir%.
 */
export function iisDoubleWindir(): string {
  return buildDouble(
    "Microsoft.Web.Administration.cs",
    "gmsa-iis-double",
    ["System32", "inetsrv"],
    "Microsoft.Web.Administration.dll",
  );
}

/**
 * Builds the access-control double (AccessControl.cs: SecurityIdentifier, FileSystemAccessRule,
 * DirectorySecurity, as the doubles module's New-Object hands them out); returns the assembly.
 */
export function aclDoubleDll(): string {
  return join(
    buildDouble("AccessControl.cs", "gmsa-acl-double", [], "GmsaDoubles.AccessControl.dll"),
    "GmsaDoubles.AccessControl.dll",
  );
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
    GMSA_DOUBLE_ACL: aclDoubleDll(),
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

/**
 * A sample host that asks a real DC whether it can retrieve a password: its NetQueryServiceAccount
 * double binds as the host's computer account (`bindDn`, password in `passwordFile`). The gMSAs
 * are the DC's own, so their SIDs are looked up there, as LSA would, not in the sample's list.
 */
export function dcBackedHost(
  computer: string,
  dc: { readonly url: string; readonly caFile: string; readonly baseDn: string; readonly domain: string },
  bindDn: string,
  passwordFile: string,
): DoubleHostState {
  const s = sampleHost(computer);
  const { url, caFile, baseDn, domain } = dc;
  s.ad = { url, caFile, baseDn, bindDn, passwordFile, command: ["ldapsearch"], domain };
  s.principals = s.principals.filter((p) => p.gmsa !== true);
  return s;
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

const SYSTEM_SID = "S-1-5-18";
const ADMINISTRATORS_SID = "S-1-5-32-544";
const USERS_SID = "S-1-5-32-545";
const CREATOR_OWNER_SID = "S-1-3-0";
const CI_OI = "ContainerInherit, ObjectInherit";

/** An explicit allow entry. */
export function allow(sid: string, rights: number, inheritance = CI_OI, propagation = "None"): DoubleAce {
  return { sid, type: "Allow", rights: rights | RIGHTS.Synchronize, inheritance, propagation, inherited: false };
}

/** What a new child folder inherits from `parent`'s entries (inheritable ones, as Windows computes them). */
export function inheritedFrom(parent: readonly DoubleAce[]): DoubleAce[] {
  return parent.flatMap((a): DoubleAce[] => {
    if (!a.inheritance.includes("ContainerInherit")) return [];
    const noPropagate = a.propagation.includes("NoPropagateInherit");
    return [
      {
        ...a,
        inheritance: noPropagate ? "None" : a.inheritance,
        propagation: "None",
        inherited: true,
      },
    ];
  });
}

/** A data drive as Windows setup leaves one: SYSTEM and Administrators full, Users read, CREATOR OWNER. */
const DRIVE_ROOT_ACL: DoubleAce[] = [
  allow(SYSTEM_SID, RIGHTS.FullControl),
  allow(ADMINISTRATORS_SID, RIGHTS.FullControl),
  allow(USERS_SID, RIGHTS.ReadAndExecute),
  allow(CREATOR_OWNER_SID, RIGHTS.FullControl, CI_OI, "InheritOnly"),
];

/** A folder below `parentAcl` with only inherited entries, owned by Administrators. */
export function childFolder(parentAcl: readonly DoubleAce[], explicit: DoubleAce[] = []): DoubleFsItem {
  return { type: "Directory", owner: ADMINISTRATORS_SID, acl: [...explicit, ...inheritedFrom(parentAcl)] };
}

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
    volumes: {
      "C:": { fileSystem: "NTFS", driveType: 3 },
      "D:": { fileSystem: "NTFS", driveType: 3 },
      "E:": { fileSystem: "FAT32", driveType: 2 },
    },
    files: sampleFiles(),
    events: [],
  };
}

/** D:\\Scripts\\MyScript\\Data (the field guide's "My Script" keeps its data there), with inherited entries only. */
function sampleFiles(): Record<string, DoubleFsItem> {
  const root: DoubleFsItem = { type: "Directory", owner: SYSTEM_SID, acl: DRIVE_ROOT_ACL };
  const scripts = childFolder(root.acl);
  const myScript = childFolder(scripts.acl);
  const data = childFolder(myScript.acl);
  return {
    "C:\\": {
      type: "Directory",
      owner: "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
      acl: DRIVE_ROOT_ACL,
    },
    "D:\\": root,
    "D:\\Scripts": scripts,
    "D:\\Scripts\\MyScript": myScript,
    "D:\\Scripts\\MyScript\\Data": data,
    "E:\\": { type: "Directory", owner: SYSTEM_SID, acl: [] },
  };
}
