/**
 * The JSON contract between the controller and the PowerShell host script (gmsa-host.ps1):
 * one request on the script's stdin, one result on its stdout. Every value from Git travels as
 * data inside this JSON; the script never turns it into code.
 *
 * Bump HOST_CONTRACT_VERSION (and the script's `$ContractVersion`) on any incompatible change:
 * the script refuses a request whose version it does not know, so an old script on a host
 * fails loudly instead of half-understanding a new request.
 */

/** The contract version this controller speaks; the script answers with the same number. */
export const HOST_CONTRACT_VERSION = 2;

/** observe: read and report only. apply: also fix what differs. */
export type HostMode = "observe" | "apply";

/** User rights a binding can require, as named in the Windows security policy (CRD enum). */
export const LOGON_RIGHTS = ["SeServiceLogonRight", "SeBatchLogonRight"] as const;
/** "Log on as a service" / "Log on as a batch job". */
export type LogonRight = (typeof LOGON_RIGHTS)[number];

/** Restart policies of services and app pools (CRD enum). */
export const RESTART_POLICIES = ["OnChange", "Never"] as const;
/** OnChange: restart a running service / recycle a started pool after its identity changed. */
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** Scheduled-task run levels (CRD enum). */
export const RUN_LEVELS = ["Limited", "Highest"] as const;
/** A scheduled task's run level (Highest = full token). */
export type RunLevel = (typeof RUN_LEVELS)[number];

/** One Windows service that must log on as the account. */
export interface ServiceRequest {
  readonly name: string;
  readonly restart: RestartPolicy;
}

/** One scheduled task whose principal must be the account (LogonType Password). */
export interface ScheduledTaskRequest {
  readonly name: string;
  /** Task folder, starting and ending with a backslash (`\` is the root folder). */
  readonly path: string;
  readonly runLevel: RunLevel;
}

/** One IIS application pool whose identity must be the account. */
export interface AppPoolRequest {
  readonly name: string;
  readonly restart: RestartPolicy;
}

/** The standard FileSystemRights sets a binding can grant on a folder (CRD enum). */
export const FILE_RIGHTS = ["Read", "ReadAndExecute", "Write", "Modify", "FullControl"] as const;
/** One standard FileSystemRights set, as the Security tab names it. */
export type FileRights = (typeof FILE_RIGHTS)[number];

/** Where a folder entry applies, as the Advanced Security dialog's "Applies to" names it (CRD enum). */
export type AppliesTo = "ThisFolderOnly" | "ThisFolderSubfoldersAndFiles" | "SubfoldersAndFilesOnly";

/** One folder on which the account must hold an explicit allow entry. */
export interface FileAccessRequest {
  /** Absolute local path in drive-letter form (validated against the CRD's pattern, and again by the script). */
  readonly path: string;
  readonly rights: FileRights;
  readonly appliesTo: AppliesTo;
  /** Create the folder (and its missing parents) in apply mode instead of reporting it missing. */
  readonly createIfMissing: boolean;
}

/**
 * What kind of managed account a binding puts to work. gmsa: the host only has to be allowed to
 * retrieve the password (nothing to install). smsa: a standalone account, which Windows must
 * install on the one computer AD links it to (Install-ADServiceAccount, NetAddServiceAccount)
 * before a service can run as it. Absent in a request means gmsa, so a gMSA request keeps the
 * shape of contract version 2 (the script travels with each request, so both ends always agree).
 */
export type AccountKind = "gmsa" | "smsa";

/** The desired state of one gMSA on the host: one HostBinding, with CRD defaults filled in. */
export interface BindingRequest {
  /** metadata.name of the HostBinding (echoed back in the result). */
  readonly name: string;
  /** The account's sAMAccountName without the trailing '$' (at most 15 characters). */
  readonly account: string;
  readonly accountKind: AccountKind;
  readonly localGroups: readonly string[];
  readonly logonRights: readonly LogonRight[];
  /** In apply mode, purge the machine's Kerberos tickets when the password is not retrievable yet. */
  readonly purgeKerberosTickets: boolean;
  /**
   * True when the host was allowed to retrieve the password recently (the controller changed
   * the group or the gMSA's principals), so a failed retrieval means "waiting for a fresh
   * Kerberos ticket" (pending), not "not allowed" (failed).
   */
  readonly recentlyAllowed: boolean;
  /**
   * Logon rights this binding held on the host at an earlier run. A right listed here but
   * missing now was taken away after it was granted (typically a GPO), and is reported with
   * reason `RevokedByPolicy` rather than `Missing`.
   */
  readonly rightsGrantedBefore: readonly LogonRight[];
  /**
   * True for a binding whose spec.mode is Observe: reported but never changed, even in an
   * apply request. (An observe request changes nothing whatever this says.)
   */
  readonly observeOnly: boolean;
  readonly services: readonly ServiceRequest[];
  readonly scheduledTasks: readonly ScheduledTaskRequest[];
  readonly iisAppPools: readonly AppPoolRequest[];
  readonly fileSystemAccess: readonly FileAccessRequest[];
  /** additive: add or widen, report a wider entry. exact: also narrow a wider entry. */
  readonly fileSystemAccessPolicy: "additive" | "exact";
}

/** One request to one host: all bindings of that host. */
export interface HostRequest {
  readonly version: typeof HOST_CONTRACT_VERSION;
  readonly mode: HostMode;
  /** The host's computer name (sAMAccountName without '$'); the script echoes it back. */
  readonly host: string;
  /** NetBIOS domain name: identities are written as `DOMAIN\account$`. */
  readonly domain: string;
  readonly bindings: readonly BindingRequest[];
}

/** What one result item is about. */
export type ItemKind =
  "retrievable" | "install" | "localGroup" | "logonRight" | "service" | "scheduledTask" | "iisAppPool" | "fileAccess";

/**
 * none: in sync. changed: apply fixed it. would-change: observe found drift. failed: could not
 * observe or fix (see error). pending: waiting for something that will happen on its own (a
 * fresh Kerberos ticket, or an identity switch waiting for the host to retrieve the password).
 */
export type ItemAction = "none" | "changed" | "would-change" | "failed" | "pending";

/**
 * Why an item is not in sync (closed set, usable as a metric label). Absent when in sync.
 * RevokedByPolicy: a logon right granted before is gone (a GPO took it away).
 * TicketNotRefreshed: the host is allowed but still holds a Kerberos ticket from before.
 * WaitingForRetrieval: an identity switch waits until the host can retrieve the password.
 * DefinedByPolicy: a GPO defines the logon right without the account; never written locally.
 * DeniedByPolicy: a deny right (SeDenyServiceLogonRight / SeDenyBatchLogonRight) lists the account.
 * NoLogonRight: an identity switch not made because the account lacks the logon right.
 * MissingRights: the account's explicit allow entries on a folder lack declared rights.
 * WiderThanDeclared: they grant more than declared (narrowed only when the policy is exact).
 * DeniedByAcl: a deny entry for the account on the folder denies a declared right.
 * ReparsePoint: the folder, or a folder above it, is a junction or symbolic link: not followed.
 * UnsupportedVolume: the drive is not NTFS or ReFS (or is a network drive): no folder ACLs.
 * NotInstalled: a standalone account Windows can install here is not installed yet.
 * LinkedToAnotherComputer: Windows refuses to install a standalone account here
 * (MsaInfoCannotInstall): AD links it to another computer.
 */
export type ItemReason =
  | "NotRetrievable"
  | "TicketNotRefreshed"
  | "NotMember"
  | "Missing"
  | "RevokedByPolicy"
  | "WrongIdentity"
  | "NotFound"
  | "WaitingForRetrieval"
  | "DefinedByPolicy"
  | "DeniedByPolicy"
  | "NoLogonRight"
  | "MissingRights"
  | "WiderThanDeclared"
  | "DeniedByAcl"
  | "ReparsePoint"
  | "UnsupportedVolume"
  | "NotInstalled"
  | "LinkedToAnotherComputer"
  | "Error";

/** The observed and desired state of one item, and what was (or would be) done. */
export interface HostItemResult {
  readonly item: ItemKind;
  /** The item's name: group, right, service, `\path\task`, pool, or the account for retrievable. */
  readonly name: string;
  /** What the host had before any change (null when it could not be read or does not exist). */
  readonly observed: string | boolean | null;
  readonly desired: string | boolean;
  readonly action: ItemAction;
  readonly reason?: ItemReason;
  /** True when a service was restarted / a pool recycled after its identity changed. */
  readonly restarted?: boolean;
  /** Human-readable cause of a failure, from the host; never contains secrets (none are sent). */
  readonly error?: string;
  /** For a folder: the rights the account lacks, per scope, e.g. "Write, Delete (this folder, subfolders, files)". */
  readonly missing?: string;
}

/** Per-binding retrievability: `pending` when the host waits for a fresh Kerberos ticket. */
export type Retrievability = true | false | "pending";

/** Everything observed (and done) for one binding. */
export interface BindingResult {
  readonly name: string;
  readonly account: string;
  readonly retrievable: Retrievability;
  /**
   * NotNeeded: a gMSA (Install-ADServiceAccount has no effect: the host only has to be allowed by
   * msDS-GroupMSAMembership), so the script never installs it. For an sMSA: Installed (before or
   * by this run, see the `install` item) or NotInstalled (observe mode, or Windows refused).
   */
  readonly install: "NotNeeded" | "Installed" | "NotInstalled";
  readonly items: readonly HostItemResult[];
}

/** The script's answer to a well-formed request. */
export interface HostResult {
  readonly version: typeof HOST_CONTRACT_VERSION;
  readonly host: string;
  readonly mode: HostMode;
  /** The PowerShell that ran the script, e.g. "7.6.9" or "5.1.20348.2849". */
  readonly powershell: string;
  readonly bindings: readonly BindingResult[];
}

/** The script's answer to a request it refused before touching anything. */
export interface HostRequestError {
  readonly version: number;
  readonly error: {
    readonly code: "BadRequest" | "UnsupportedVersion" | "ConstrainedLanguage" | "Internal";
    readonly message: string;
  };
}

/** The subset of HostBinding.spec (crds/hostbindings.yaml) that reaches the host. */
export interface HostBindingSpecLike {
  readonly localGroups?: readonly string[];
  readonly logonRights?: readonly LogonRight[];
  readonly purgeKerberosTickets?: boolean;
  readonly services?: readonly { readonly name: string; readonly restart?: RestartPolicy }[];
  readonly scheduledTasks?: readonly { readonly name: string; readonly path?: string; readonly runLevel?: RunLevel }[];
  readonly iisAppPools?: readonly { readonly name: string; readonly restart?: RestartPolicy }[];
  readonly fileSystemAccess?: readonly {
    readonly path: string;
    readonly rights: FileRights;
    readonly appliesTo?: AppliesTo;
    readonly createIfMissing?: boolean;
  }[];
  readonly fileSystemAccessPolicy?: "additive" | "exact";
}

/**
 * Builds one binding of a request from a HostBinding spec, filling the CRD's defaults
 * (restart OnChange, task path `\`, runLevel Limited, appliesTo ThisFolderSubfoldersAndFiles, policy additive). `account` is the account's sAMAccountName
 * without '$' (the spec names the resource, the host needs the AD name); `state.accountKind`
 * says whether it is a gMSA (the default) or an sMSA.
 */
export function bindingRequest(
  name: string,
  account: string,
  spec: HostBindingSpecLike,
  state: {
    readonly recentlyAllowed?: boolean;
    readonly rightsGrantedBefore?: readonly LogonRight[];
    readonly observeOnly?: boolean;
    readonly accountKind?: AccountKind;
  } = {},
): BindingRequest {
  return {
    name,
    account,
    accountKind: state.accountKind ?? "gmsa",
    localGroups: [...(spec.localGroups ?? [])],
    logonRights: [...(spec.logonRights ?? [])],
    purgeKerberosTickets: spec.purgeKerberosTickets ?? false,
    recentlyAllowed: state.recentlyAllowed ?? false,
    rightsGrantedBefore: [...(state.rightsGrantedBefore ?? [])],
    observeOnly: state.observeOnly ?? false,
    services: (spec.services ?? []).map((s) => ({ name: s.name, restart: s.restart ?? "OnChange" })),
    scheduledTasks: (spec.scheduledTasks ?? []).map((t) => ({
      name: t.name,
      path: t.path ?? "\\",
      runLevel: t.runLevel ?? "Limited",
    })),
    iisAppPools: (spec.iisAppPools ?? []).map((p) => ({ name: p.name, restart: p.restart ?? "OnChange" })),
    fileSystemAccess: (spec.fileSystemAccess ?? []).map((f) => ({
      path: f.path,
      rights: f.rights,
      appliesTo: f.appliesTo ?? "ThisFolderSubfoldersAndFiles",
      createIfMissing: f.createIfMissing ?? false,
    })),
    fileSystemAccessPolicy: spec.fileSystemAccessPolicy ?? "additive",
  };
}

/** The logon rights a binding holds after this run, for the next request's `rightsGrantedBefore`. */
export function rightsHeld(binding: BindingResult): LogonRight[] {
  return binding.items
    .filter((i) => i.item === "logonRight" && (i.action === "none" || i.action === "changed"))
    .map((i) => i.name)
    .filter((name): name is LogonRight => (LOGON_RIGHTS as readonly string[]).includes(name));
}
