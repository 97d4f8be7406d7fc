/**
 * Controller configuration: one validated object from a config file, the environment and
 * command-line flags (flags win over the environment, which wins over the file). This is the
 * only module that reads `process.env`; everything else receives values.
 *
 * Secrets (the bind password, the webhook secret) are read from files or the environment,
 * never from flags (flags show up in `ps`), and never appear in error messages.
 */
import { accessSync, closeSync, fstatSync, constants as fsConstants, openSync, readFileSync } from "node:fs";
import type { Stats } from "node:fs";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { MIN_OWNERSHIP_KEY_BYTES, OWNER_ID_PATTERN, OwnershipKey } from "../directory/index.ts";
import type { GitCredentials } from "../source/index.ts";

/** How a setting is typed. */
type SettingType = "string" | "boolean" | "integer" | "duration" | "enum";

interface Setting {
  /** Dot path in the config file, also the key in the flat result. */
  readonly key: string;
  readonly flag?: string;
  readonly env: string;
  readonly type: SettingType;
  readonly values?: readonly string[];
  readonly description: string;
  /** Relative paths in the config file are resolved against the file's folder. */
  readonly path?: boolean;
  readonly secretFile?: boolean;
  /** The value when nothing sets it, written as a flag's value would be (so it is converted and checked the same way). */
  readonly default?: string | number | boolean;
  /** A default worked out at run time, described for the reference table. */
  readonly defaultText?: string;
}

/** Every notification body the `notify.format` setting accepts (notify/ builds each). */
export const NOTIFICATION_FORMATS = ["json", "slack", "teams"] as const;

/** Which body a notification receiver understands. */
export type NotificationFormat = (typeof NOTIFICATION_FORMATS)[number];

/**
 * Every setting, its flag, environment variable and config-file key. README's configuration
 * table is this list; `gmsa-gitops --help` prints it.
 */
export const SETTINGS: readonly Setting[] = [
  {
    key: "ldap.url",
    flag: "ldap-url",
    env: "GMSA_GITOPS_LDAP_URL",
    type: "string",
    description: "ldaps://host:636, or ldap://host:389 with --start-tls",
  },
  {
    key: "ldap.bindDn",
    flag: "bind-dn",
    env: "GMSA_GITOPS_BIND_DN",
    type: "string",
    description: "DN (or user@realm) to bind as",
  },
  {
    key: "ldap.bindPasswordFile",
    flag: "bind-password-file",
    env: "GMSA_GITOPS_BIND_PASSWORD_FILE",
    type: "string",
    path: true,
    secretFile: true,
    description: "file holding the bind password (GMSA_GITOPS_BIND_PASSWORD also works)",
  },
  {
    key: "ldap.caFile",
    flag: "ca-file",
    env: "GMSA_GITOPS_CA_FILE",
    type: "string",
    path: true,
    description: "PEM CA bundle that signed the DC's certificate",
    defaultText: "the system CAs",
  },
  {
    key: "ldap.startTls",
    flag: "start-tls",
    env: "GMSA_GITOPS_START_TLS",
    type: "boolean",
    description: "use StartTLS on an ldap:// URL",
    default: false,
  },
  {
    key: "ldap.insecurePlaintext",
    flag: "insecure-plaintext-ldap",
    env: "GMSA_GITOPS_INSECURE_PLAINTEXT_LDAP",
    type: "boolean",
    description: "allow ldap:// without TLS (sends the password in clear; labs only)",
    default: false,
  },
  {
    key: "ldap.baseDn",
    flag: "base-dn",
    env: "GMSA_GITOPS_BASE_DN",
    type: "string",
    description: "domain DN",
    defaultText: "the DC's defaultNamingContext",
  },
  {
    key: "ldap.timeout",
    flag: "ldap-timeout",
    env: "GMSA_GITOPS_LDAP_TIMEOUT",
    type: "duration",
    description: "timeout of one LDAP operation",
    default: "30s",
  },
  {
    key: "repo",
    flag: "repo",
    env: "GMSA_GITOPS_REPO",
    type: "string",
    path: true,
    description: "folder of manifests (plan, apply, validate)",
  },
  {
    key: "policy.mode",
    flag: "mode",
    env: "GMSA_GITOPS_MODE",
    type: "enum",
    values: ["enforce", "observe"],
    description: "enforce applies fixes; observe only reports drift",
    default: "enforce",
  },
  {
    key: "policy.prune",
    flag: "prune",
    env: "GMSA_GITOPS_PRUNE",
    type: "boolean",
    description: "delete objects gmsa-gitops created that left the repository",
    default: false,
  },
  {
    key: "policy.deletionBudget",
    flag: "deletion-budget",
    env: "GMSA_GITOPS_DELETION_BUDGET",
    type: "integer",
    description: "most deletions per run",
    default: 5,
  },
  {
    key: "policy.adopt",
    flag: "adopt",
    env: "GMSA_GITOPS_ADOPT",
    type: "boolean",
    description: "take over existing unmarked objects that have a managed name",
    default: false,
  },
  {
    key: "ownership.ownerId",
    flag: "owner-id",
    env: "GMSA_GITOPS_OWNER_ID",
    type: "string",
    description: "this controller's id in the ownership marker; controllers sharing a domain need different ids",
    default: "default",
  },
  {
    key: "ownership.keyFile",
    flag: "ownership-key-file",
    env: "GMSA_GITOPS_OWNERSHIP_KEY_FILE",
    type: "string",
    path: true,
    secretFile: true,
    description: `file holding the secret key (at least ${MIN_OWNERSHIP_KEY_BYTES} bytes) that signs the ownership marker; required by plan, apply and run (GMSA_GITOPS_OWNERSHIP_KEY also works)`,
  },
  {
    key: "source.url",
    flag: "git-url",
    env: "GMSA_GITOPS_GIT_URL",
    type: "string",
    description:
      "run: Git repository to watch (https://, ssh://, git@host:path, file://); without it, run watches --repo",
  },
  {
    key: "source.branch",
    flag: "git-branch",
    env: "GMSA_GITOPS_GIT_BRANCH",
    type: "string",
    description: "run: branch to follow",
    default: "main",
  },
  {
    key: "source.path",
    flag: "git-path",
    env: "GMSA_GITOPS_GIT_PATH",
    type: "string",
    description: "run: folder inside the repository holding the manifests",
    defaultText: "the root",
  },
  {
    key: "source.workDir",
    flag: "work-dir",
    env: "GMSA_GITOPS_WORK_DIR",
    type: "string",
    path: true,
    description: "run: where the clone is kept",
    defaultText: "a folder per repository, branch and path under the system temp dir",
  },
  {
    key: "source.allowedSignersFile",
    flag: "verify-allowed-signers",
    env: "GMSA_GITOPS_VERIFY_ALLOWED_SIGNERS",
    type: "string",
    path: true,
    description: "run: only apply commits SSH-signed by a key in this allowed-signers file",
  },
  {
    key: "source.gpgHome",
    flag: "verify-gpg-home",
    env: "GMSA_GITOPS_VERIFY_GPG_HOME",
    type: "string",
    path: true,
    description: "run: only apply commits GPG-signed by a key in this GNUPGHOME",
  },
  {
    key: "source.sshKeyFile",
    flag: "git-ssh-key-file",
    env: "GMSA_GITOPS_GIT_SSH_KEY_FILE",
    type: "string",
    path: true,
    description: "run: private key (deploy key, no passphrase) for an ssh:// or git@host:path repository",
  },
  {
    key: "source.sshKnownHostsFile",
    flag: "git-ssh-known-hosts",
    env: "GMSA_GITOPS_GIT_SSH_KNOWN_HOSTS",
    type: "string",
    path: true,
    description: "run: known_hosts file pinning the Git server's host key; unknown or changed keys are refused",
  },
  {
    key: "source.tokenFile",
    flag: "git-token-file",
    env: "GMSA_GITOPS_GIT_TOKEN_FILE",
    type: "string",
    path: true,
    secretFile: true,
    description: "run: file holding an access token for an https:// repository (sent as the basic-auth password)",
  },
  {
    key: "source.username",
    flag: "git-username",
    env: "GMSA_GITOPS_GIT_USERNAME",
    type: "string",
    description: "run: user name sent with --git-token-file",
    default: "x-access-token",
  },
  {
    key: "source.basicAuthFile",
    flag: "git-basic-auth-file",
    env: "GMSA_GITOPS_GIT_BASIC_AUTH_FILE",
    type: "string",
    path: true,
    secretFile: true,
    description: "run: file holding user:password for an https:// repository",
  },
  {
    key: "interval",
    flag: "interval",
    env: "GMSA_GITOPS_INTERVAL",
    type: "duration",
    description: "run: time between reconciles, with 10% jitter",
    default: "60s",
  },
  {
    key: "sourceInterval",
    flag: "source-interval",
    env: "GMSA_GITOPS_SOURCE_INTERVAL",
    type: "duration",
    description:
      "run: how often the source is checked for a new revision (a verified webhook or a watched folder's change checks at once); at most 15m; default: every reconcile",
  },
  {
    key: "fullResyncInterval",
    flag: "full-resync-interval",
    env: "GMSA_GITOPS_FULL_RESYNC_INTERVAL",
    type: "duration",
    description:
      "run: cycles read only what changed in AD (uSNChanged); a full read runs this often, and on a new DC (0: always)",
    default: "1h",
  },
  {
    key: "leader.enabled",
    flag: "leader-election",
    env: "GMSA_GITOPS_LEADER_ELECTION",
    type: "boolean",
    description: "run: several replicas, one writer: take a lease in AD on the PDC emulator; followers only observe",
    default: false,
  },
  {
    key: "leader.leaseDuration",
    flag: "lease-duration",
    env: "GMSA_GITOPS_LEASE_DURATION",
    type: "duration",
    description: "run: how long a leader's lease lasts without renewal; a follower takes over after it",
    default: "15s",
  },
  {
    key: "leader.replicaId",
    flag: "replica-id",
    env: "GMSA_GITOPS_REPLICA_ID",
    type: "string",
    description: "run: this replica's name in the lease",
    defaultText: "host name and process id",
  },
  {
    key: "leader.leaseDn",
    flag: "lease-dn",
    env: "GMSA_GITOPS_LEASE_DN",
    type: "string",
    description: "run: DN of the lease object",
    defaultText: "CN=gmsa-gitops-leader,CN=Managed Service Accounts,<base DN>",
  },
  {
    key: "server.address",
    flag: "listen",
    env: "GMSA_GITOPS_LISTEN",
    type: "string",
    description: "run: address of /metrics, /healthz, /readyz, /api/status and /hooks/git",
    default: "127.0.0.1:9464",
  },
  {
    key: "server.webhookSecretFile",
    flag: "webhook-secret-file",
    env: "GMSA_GITOPS_WEBHOOK_SECRET_FILE",
    type: "string",
    path: true,
    secretFile: true,
    description: "run: file holding the webhook secret; enables POST /hooks/git",
  },
  {
    key: "log.level",
    flag: "log-level",
    env: "GMSA_GITOPS_LOG_LEVEL",
    type: "enum",
    values: ["debug", "info", "warn", "error"],
    description: "log level",
    default: "info",
  },
  {
    key: "log.format",
    flag: "log-format",
    env: "GMSA_GITOPS_LOG_FORMAT",
    type: "enum",
    values: ["json", "pretty"],
    description: "json lines, or pretty for a terminal",
    defaultText: "pretty on a terminal, json otherwise",
  },
  {
    key: "hosts.transport",
    flag: "host-transport",
    env: "GMSA_GITOPS_HOST_TRANSPORT",
    type: "enum",
    values: ["none", "ssh"],
    description: "how HostBindings are reconciled: ssh to each host's dNSHostName, or none (AD only)",
    default: "none",
  },
  {
    key: "hosts.sshUser",
    flag: "ssh-user",
    env: "GMSA_GITOPS_SSH_USER",
    type: "string",
    description: "ssh: login name on the hosts",
  },
  {
    key: "hosts.sshKeyFile",
    flag: "ssh-key-file",
    env: "GMSA_GITOPS_SSH_KEY_FILE",
    type: "string",
    path: true,
    description: "ssh: private key file (key authentication only)",
  },
  {
    key: "hosts.knownHostsFile",
    flag: "ssh-known-hosts",
    env: "GMSA_GITOPS_SSH_KNOWN_HOSTS",
    type: "string",
    path: true,
    description: "ssh: known_hosts file pinning every host's key; unknown or changed keys are refused",
  },
  {
    key: "hosts.sshPort",
    flag: "ssh-port",
    env: "GMSA_GITOPS_SSH_PORT",
    type: "integer",
    description: "ssh: port",
    default: 22,
  },
  {
    key: "hosts.shell",
    flag: "host-shell",
    env: "GMSA_GITOPS_HOST_SHELL",
    type: "string",
    description: "the remote command that runs the host script",
    defaultText: "Windows PowerShell 5.1",
  },
  {
    key: "hosts.concurrency",
    flag: "host-concurrency",
    env: "GMSA_GITOPS_HOST_CONCURRENCY",
    type: "integer",
    description: "most hosts reconciled at once",
    default: 8,
  },
  {
    key: "hosts.domain",
    flag: "netbios-domain",
    env: "GMSA_GITOPS_NETBIOS_DOMAIN",
    type: "string",
    description: "NetBIOS domain name for DOMAIN\\account$ identities",
    defaultText: "the first DC= of the base DN, upper-cased",
  },
  {
    key: "notify.urlFile",
    flag: "notify-url-file",
    env: "GMSA_GITOPS_NOTIFY_URL_FILE",
    type: "string",
    path: true,
    secretFile: true,
    description:
      "run: file holding the webhook URL to POST notifications to (Stalled, failed apply, drift corrected); it may carry a token, so GMSA_GITOPS_NOTIFY_URL also works but no flag takes the URL itself",
  },
  {
    key: "notify.format",
    flag: "notify-format",
    env: "GMSA_GITOPS_NOTIFY_FORMAT",
    type: "enum",
    values: NOTIFICATION_FORMATS,
    description: "run: notification body: generic JSON, a Slack message, or a Teams Adaptive Card",
    default: "json",
  },
  {
    key: "notify.minInterval",
    flag: "notify-min-interval",
    env: "GMSA_GITOPS_NOTIFY_MIN_INTERVAL",
    type: "duration",
    description: "run: at most one notification per resource and event within this time",
    default: "10m",
  },
  {
    key: "notify.maxPerMinute",
    flag: "notify-max-per-minute",
    env: "GMSA_GITOPS_NOTIFY_MAX_PER_MINUTE",
    type: "integer",
    description: "run: at most this many notifications per minute in all; more are dropped and logged",
    default: 20,
  },
  {
    key: "notify.timeout",
    flag: "notify-timeout",
    env: "GMSA_GITOPS_NOTIFY_TIMEOUT",
    type: "duration",
    description: "run: timeout of one webhook call",
    default: "10s",
  },
];

/** Settings for the LDAP connection. The password is resolved, never logged. */
export interface DirectoryConfig {
  readonly url: string;
  readonly bindDn: string;
  readonly bindPassword: string;
  /**
   * Where bindPassword came from, when a file: the directory client reads it again at each
   * connect, so a password rotated in the file (a Kubernetes Secret, a systemd credential) is
   * used without a restart.
   */
  readonly bindPasswordFile: string | undefined;
  readonly caFile: string | undefined;
  readonly startTls: boolean;
  readonly insecurePlaintext: boolean;
  readonly baseDn: string | undefined;
  readonly timeoutMs: number;
}

/** Where `run` reads manifests from. */
export type SourceConfig =
  | {
      readonly type: "git";
      readonly url: string;
      readonly branch: string;
      readonly path: string | undefined;
      readonly workDir: string | undefined;
      readonly verify:
        | { readonly mode: "ssh"; readonly allowedSignersFile: string }
        | { readonly mode: "gpg"; readonly keyringDir: string }
        | undefined;
      /** How to authenticate to the remote; holds a secret for https. */
      readonly credentials: GitCredentials | undefined;
    }
  | { readonly type: "local"; readonly dir: string };

/** How HostBindings are reached; undefined when hosts are not reconciled. */
export interface HostsConfig {
  readonly transport: "ssh";
  readonly sshUser: string;
  readonly sshKeyFile: string;
  readonly knownHostsFile: string;
  readonly sshPort: number;
  readonly shell: string | undefined;
  readonly concurrency: number;
  readonly domain: string | undefined;
}

/** Outbound notifications; undefined when no webhook URL is configured. */
export interface NotifyConfig {
  /** May carry a token: never logged or put in an error whole. */
  readonly url: string;
  readonly format: NotificationFormat;
  readonly minIntervalMs: number;
  readonly maxPerMinute: number;
  readonly timeoutMs: number;
}

/** How replicas elect the one that writes. */
export interface LeaderConfig {
  readonly durationMs: number;
  readonly replicaId: string;
  readonly leaseDn: string | undefined;
}

/** The validated configuration. */
export interface Config {
  readonly notify: NotifyConfig | undefined;
  readonly hosts: HostsConfig | undefined;
  /** NetBIOS domain override (also used by the agent). */
  readonly netbiosDomain: string | undefined;
  /** The command line that runs the host script (ssh: the remote command; agent: the local PowerShell). */
  readonly hostShell: string | undefined;
  readonly directory: DirectoryConfig | undefined;
  readonly repo: string | undefined;
  readonly source: SourceConfig | undefined;
  readonly intervalMs: number;
  /** How often the source is polled; 0: at every reconcile. */
  readonly sourceIntervalMs: number;
  /** The longest time between two full reads of AD; cycles between them read only changes. */
  readonly fullResyncMs: number;
  /** Leader election among replicas; undefined when off (this replica is the only writer). */
  readonly leader: LeaderConfig | undefined;
  readonly server: { readonly address: string; readonly webhookSecret: string | undefined };
  readonly log: { readonly level: "debug" | "info" | "warn" | "error"; readonly format: "json" | "pretty" | undefined };
  readonly policy: {
    readonly mode: "enforce" | "observe";
    readonly prune: boolean;
    readonly deletionBudget: number;
    readonly adopt: boolean;
    /** Makes and checks the ownership marker; present whenever the directory is. */
    readonly owner: OwnershipKey;
  };
}

/** A configuration problem, naming the source (flag, variable or file key) but never a secret value. */
export interface ConfigError {
  readonly source: string;
  readonly message: string;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; errors: ConfigError[] };

/** Inputs: parsed flags (by flag name), the environment, and an optional config file path. */
export interface ConfigInput {
  readonly flags: Readonly<Record<string, string | boolean | undefined>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly configFile?: string;
  /** Which groups of settings the command needs (plan/apply need the directory). */
  readonly require?: { readonly directory?: boolean };
}

const DURATION = /^(\d+)(ms|s|m|h)?$/;
/** The longest `--source-interval`: half the 30 minutes after which the source-stale alert fires. */
const MAX_SOURCE_INTERVAL_MS = 15 * 60_000;

/** The longest duration a setting may hold: 596h, the whole hours under the 2^31-1 ms a timer can wait. */
const MAX_DURATION_MS = 596 * 3_600_000;

/** Parses "500ms", "30s", "5m", "1h" or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
}

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>): void {
  if (obj !== null && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (v !== null && typeof v === "object" && !Array.isArray(v) && !SETTINGS.some((s) => s.key === key))
        flatten(v, key, out);
      else out.set(key, v);
    }
  }
}

function convert(setting: Setting, raw: unknown, source: string, errors: ConfigError[]): unknown {
  const text =
    typeof raw === "string" ? raw : typeof raw === "number" || typeof raw === "boolean" ? String(raw) : undefined;
  if (text === undefined) {
    errors.push({ source, message: `must be a ${setting.type}` });
    return undefined;
  }
  switch (setting.type) {
    case "string":
      return text;
    case "boolean":
      if (/^(true|1|yes)$/i.test(text)) return true;
      if (/^(false|0|no)$/i.test(text)) return false;
      errors.push({ source, message: "must be true or false" });
      return undefined;
    case "integer":
      if (/^\d+$/.test(text)) return Number(text);
      errors.push({ source, message: "must be a whole number" });
      return undefined;
    case "duration": {
      const ms = parseDuration(text);
      if (ms === undefined) errors.push({ source, message: "must be a duration such as 30s, 5m or 1h" });
      // Node fires a timer set beyond 2^31-1 ms (24.8 days) after 1 ms: a longer interval or
      // lease would mean a cycle or a lease read every millisecond.
      else if (ms > MAX_DURATION_MS) errors.push({ source, message: "must be at most 596h" });
      return ms;
    }
    case "enum":
      if (setting.values?.includes(text)) return text;
      errors.push({ source, message: `must be one of ${setting.values?.join(", ")}` });
      return undefined;
  }
}

/** Reads a one-line secret file (a trailing newline is not part of it); errors name the flag, never the content. */
/** The most a secret file may hold: a key, a password or a URL is a line, never megabytes. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** What a path that is not a regular file is, for the message. */
function fileKind(stat: Stats): string {
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isDirectory()) return "a directory";
  if (stat.isSocket()) return "a socket";
  return "not a file";
}

/**
 * Permission bits a private secret file (the ownership key, the bind password) must not have:
 * any access for other users, or write for the group. As ssh refuses a private key others can
 * read: whoever reads the key can forge ownership markers, whoever reads the password can bind
 * as the controller. Read access for the group stays allowed (Kubernetes mounts a Secret 0440
 * with fsGroup). Windows has no mode bits (Node reports 0666 there), so the check is skipped.
 */
const OPEN_TO_OTHERS = 0o027;

/**
 * Reads a secret file (a key, a password, a URL with a token), or says why not in words that
 * name the path, never the content. Only a regular file of at most 64 KiB is read: a FIFO would
 * hold start-up until someone writes to it (it is opened without blocking, then refused), and
 * a device such as /dev/urandom never ends. Symbolic links are followed: Kubernetes mounts a
 * Secret's keys as links.
 */
export function readSecretFile(
  path: string,
  options: { private?: boolean } = {},
): { ok: true; data: Buffer } | { ok: false; message: string } {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (error) {
    return { ok: false, message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}` };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, message: `${path} is not a regular file (${fileKind(stat)})` };
    if (stat.size > MAX_SECRET_FILE_BYTES)
      return {
        ok: false,
        message: `${path} holds ${stat.size} bytes; a secret file holds at most ${MAX_SECRET_FILE_BYTES}`,
      };
    if (options.private && (stat.mode & OPEN_TO_OTHERS) !== 0 && process.platform !== "win32")
      return {
        ok: false,
        message: `${path} is open to other users (mode ${(stat.mode & 0o777).toString(8).padStart(4, "0")}); make it private: chmod 600 (or 440 for a group, as Kubernetes mounts it with fsGroup)`,
      };
    return { ok: true, data: readFileSync(fd) };
  } catch (error) {
    return { ok: false, message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}` };
  } finally {
    closeSync(fd);
  }
}

/** A secret file's text (UTF-8), or undefined with the reason pushed as an error of `source`. */
function readSecretText(
  path: string,
  source: string,
  errors: ConfigError[],
  options: { private?: boolean } = {},
): string | undefined {
  const read = readSecretFile(path, options);
  if (read.ok) return read.data.toString("utf8");
  errors.push({ source, message: read.message });
  return undefined;
}

function readSecretLine(path: string, flag: string, errors: ConfigError[]): string | undefined {
  const value = readSecretText(path, `--${flag}`, errors)?.replace(/\r?\n$/, "");
  if (value === "") errors.push({ source: `--${flag}`, message: `${path} is empty` });
  return value === "" ? undefined : value;
}

function checkReadable(path: string, flag: string, errors: ConfigError[]): void {
  try {
    accessSync(path, fsConstants.R_OK);
  } catch (error) {
    errors.push({
      source: `--${flag}`,
      message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
    });
  }
}

// Basic auth over plain http would send the secret in clear; a loopback server is the one exception.
const loopbackHttp = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//i;

/** The Git credentials the source.* settings name, checked against the URL they are for. */
function gitCredentials(get: Lookup, url: string | undefined, errors: ConfigError[]): GitCredentials | undefined {
  const keyFile = get.value<string>("source.sshKeyFile");
  const knownHostsFile = get.value<string>("source.sshKnownHostsFile");
  const tokenFile = get.value<string>("source.tokenFile");
  const basicAuthFile = get.value<string>("source.basicAuthFile");
  const username = get.explicit<string>("source.username");
  const ssh = keyFile !== undefined || knownHostsFile !== undefined;
  const https = tokenFile !== undefined || basicAuthFile !== undefined;
  if (!ssh && !https) {
    if (username !== undefined)
      errors.push({ source: "--git-username", message: "is only used with --git-token-file" });
    return undefined;
  }
  const first = ssh
    ? keyFile !== undefined
      ? "git-ssh-key-file"
      : "git-ssh-known-hosts"
    : tokenFile !== undefined
      ? "git-token-file"
      : "git-basic-auth-file";
  if (url === undefined) {
    errors.push({ source: `--${first}`, message: "needs --git-url" });
    return undefined;
  }
  if (ssh && https) {
    errors.push({
      source: `--${first}`,
      message:
        "choose ssh (--git-ssh-key-file) or https (--git-token-file, --git-basic-auth-file) credentials, not both",
    });
    return undefined;
  }
  if (ssh) {
    if (keyFile === undefined)
      errors.push({ source: "--git-ssh-key-file", message: "is required with --git-ssh-known-hosts" });
    if (knownHostsFile === undefined)
      errors.push({
        source: "--git-ssh-known-hosts",
        message: "is required with --git-ssh-key-file: host keys are pinned, never trusted on first use",
      });
    if (!/^ssh:\/\//i.test(url) && !/^[^/\\:]+@[^/\\:]+:/.test(url))
      errors.push({ source: "--git-url", message: "ssh credentials need an ssh://host/path or user@host:path URL" });
    if (keyFile === undefined || knownHostsFile === undefined) return undefined;
    checkReadable(keyFile, "git-ssh-key-file", errors);
    checkReadable(knownHostsFile, "git-ssh-known-hosts", errors);
    return { type: "ssh", keyFile, knownHostsFile };
  }
  if (tokenFile !== undefined && basicAuthFile !== undefined) {
    errors.push({ source: "--git-token-file", message: "choose a token or a basic-auth file, not both" });
    return undefined;
  }
  if (!/^https:\/\//i.test(url) && !loopbackHttp.test(url))
    errors.push({
      source: "--git-url",
      message: "https credentials are only sent over https:// (plain http:// only to a loopback address)",
    });
  if (tokenFile !== undefined) {
    const token = readSecretLine(tokenFile, "git-token-file", errors);
    return token === undefined ? undefined : { type: "https", username: username ?? "x-access-token", password: token };
  }
  if (username !== undefined)
    errors.push({
      source: "--git-username",
      message: "is only used with --git-token-file (the basic-auth file holds the user name)",
    });
  const pair = readSecretLine(basicAuthFile!, "git-basic-auth-file", errors);
  if (pair === undefined) return undefined;
  const colon = pair.indexOf(":");
  if (colon <= 0 || colon === pair.length - 1 || pair.includes("\n")) {
    errors.push({ source: "--git-basic-auth-file", message: `${basicAuthFile} must hold one line user:password` });
    return undefined;
  }
  return { type: "https", username: pair.slice(0, colon), password: pair.slice(colon + 1) };
}

/** Settings as layered: `value` gives the setting's default when nothing set it, `explicit` does not. */
interface Lookup {
  value<T>(key: string): T | undefined;
  explicit<T>(key: string): T | undefined;
}

/** Reads the config file, the environment and the flags, in that order (later wins), converting each value. */
function layer(input: ConfigInput, env: Readonly<Record<string, string | undefined>>, errors: ConfigError[]): Lookup {
  const values = new Map<string, unknown>();
  const configFile = input.configFile ?? env["GMSA_GITOPS_CONFIG"];
  if (configFile !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(configFile, "utf8"));
    } catch (error) {
      errors.push({
        source: configFile,
        message: `cannot read config file: ${(error as Error).message.split("\n")[0]}`,
      });
    }
    const fileValues = new Map<string, unknown>();
    flatten(parsed, "", fileValues);
    for (const [key, raw] of fileValues) {
      const setting = SETTINGS.find((s) => s.key === key);
      if (!setting) {
        errors.push({ source: `${configFile}: ${key}`, message: "unknown setting" });
        continue;
      }
      let v = convert(setting, raw, `${configFile}: ${key}`, errors);
      if (setting.path && typeof v === "string") v = resolve(dirname(configFile), v);
      if (v !== undefined) values.set(key, v);
    }
  }
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    if (raw !== undefined && raw !== "") {
      const v = convert(setting, raw, setting.env, errors);
      if (v !== undefined) values.set(setting.key, v);
    }
  }
  for (const setting of SETTINGS) {
    if (!setting.flag) continue;
    const raw = input.flags[setting.flag];
    if (raw !== undefined) {
      const v = convert(setting, raw, `--${setting.flag}`, errors);
      if (v !== undefined) values.set(setting.key, v);
    }
  }
  const defaults = new Map<string, unknown>();
  for (const setting of SETTINGS)
    if (setting.default !== undefined) defaults.set(setting.key, convert(setting, setting.default, "default", errors));
  return {
    value: <T>(key: string) => (values.has(key) ? values.get(key) : defaults.get(key)) as T | undefined,
    explicit: <T>(key: string) => values.get(key) as T | undefined,
  };
}

/** The ldap.* settings; required for plan and apply, optional for the agent. */
function directorySection(
  get: Lookup,
  env: Readonly<Record<string, string | undefined>>,
  required: boolean,
  errors: ConfigError[],
): DirectoryConfig | undefined {
  const url = get.value<string>("ldap.url");
  if (url === undefined && !required) return undefined;
  if (url === undefined) errors.push({ source: "--ldap-url", message: "is required (or GMSA_GITOPS_LDAP_URL)" });
  const bindDn = get.value<string>("ldap.bindDn");
  if (bindDn === undefined) errors.push({ source: "--bind-dn", message: "is required (or GMSA_GITOPS_BIND_DN)" });
  let bindPassword = env["GMSA_GITOPS_BIND_PASSWORD"];
  const passwordFile = get.value<string>("ldap.bindPasswordFile");
  if (passwordFile !== undefined) {
    // A trailing newline from `echo pw > file` is not part of the password.
    bindPassword = readSecretText(passwordFile, "--bind-password-file", errors, { private: true })?.replace(
      /\r?\n$/,
      "",
    );
  }
  if (passwordFile === undefined && (bindPassword === undefined || bindPassword === ""))
    errors.push({ source: "--bind-password-file", message: "is required (or GMSA_GITOPS_BIND_PASSWORD)" });
  else if (passwordFile !== undefined && bindPassword === "")
    errors.push({ source: "--bind-password-file", message: `${passwordFile} is empty` });
  const startTls = get.value<boolean>("ldap.startTls")!;
  const insecurePlaintext = get.value<boolean>("ldap.insecurePlaintext")!;
  if (url !== undefined && !/^ldaps?:\/\//i.test(url))
    errors.push({ source: "--ldap-url", message: "must start with ldaps:// or ldap://" });
  if (url !== undefined && /^ldap:\/\//i.test(url) && !startTls && !insecurePlaintext)
    errors.push({
      source: "--ldap-url",
      message:
        "ldap:// sends the bind password in clear: use ldaps://, or --start-tls, or (labs only) --insecure-plaintext-ldap",
    });
  if (url === undefined || bindDn === undefined || bindPassword === undefined) return undefined;
  return {
    url,
    bindDn,
    bindPassword,
    bindPasswordFile: passwordFile,
    caFile: get.value<string>("ldap.caFile"),
    startTls,
    insecurePlaintext,
    baseDn: get.value<string>("ldap.baseDn"),
    timeoutMs: get.value<number>("ldap.timeout")!,
  };
}

/** The source.* settings (a Git branch for `run`), or `repo` (a local folder). */
function sourceSection(get: Lookup, errors: ConfigError[]): SourceConfig | undefined {
  const gitUrl = get.value<string>("source.url");
  const allowedSignersFile = get.value<string>("source.allowedSignersFile");
  const gpgHome = get.value<string>("source.gpgHome");
  if (allowedSignersFile !== undefined && gpgHome !== undefined)
    errors.push({ source: "--verify-allowed-signers", message: "choose SSH or GPG signature verification, not both" });
  const credentials = gitCredentials(get, gitUrl, errors);
  if (gitUrl !== undefined)
    return {
      type: "git",
      url: gitUrl,
      branch: get.value<string>("source.branch")!,
      path: get.value<string>("source.path"),
      workDir: get.value<string>("source.workDir"),
      verify:
        allowedSignersFile !== undefined
          ? { mode: "ssh", allowedSignersFile }
          : gpgHome !== undefined
            ? { mode: "gpg", keyringDir: gpgHome }
            : undefined,
      credentials,
    };
  const repo = get.value<string>("repo");
  return repo !== undefined ? { type: "local", dir: repo } : undefined;
}

/** The server.* settings: where to listen, and the webhook secret. */
function serverSection(get: Lookup, errors: ConfigError[]): Config["server"] {
  let webhookSecret: string | undefined;
  const secretFile = get.value<string>("server.webhookSecretFile");
  if (secretFile !== undefined) {
    webhookSecret = readSecretText(secretFile, "--webhook-secret-file", errors)?.trim();
    if (webhookSecret === "") errors.push({ source: "--webhook-secret-file", message: `${secretFile} is empty` });
  }
  return { address: get.value<string>("server.address")!, webhookSecret };
}

/** The hosts.* settings; only with `--host-transport ssh`. */
function hostsSection(get: Lookup, errors: ConfigError[]): HostsConfig | undefined {
  if (get.value<string>("hosts.transport") !== "ssh") return undefined;
  const sshUser = get.value<string>("hosts.sshUser");
  const sshKeyFile = get.value<string>("hosts.sshKeyFile");
  const knownHostsFile = get.value<string>("hosts.knownHostsFile");
  if (sshUser === undefined) errors.push({ source: "--ssh-user", message: "is required with --host-transport ssh" });
  if (sshKeyFile === undefined)
    errors.push({ source: "--ssh-key-file", message: "is required with --host-transport ssh" });
  if (knownHostsFile === undefined)
    errors.push({
      source: "--ssh-known-hosts",
      message: "is required with --host-transport ssh: host keys are pinned, never trusted on first use",
    });
  const concurrency = get.value<number>("hosts.concurrency")!;
  if (concurrency < 1) errors.push({ source: "--host-concurrency", message: "must be at least 1" });
  if (sshUser === undefined || sshKeyFile === undefined || knownHostsFile === undefined) return undefined;
  return {
    transport: "ssh",
    sshUser,
    sshKeyFile,
    knownHostsFile,
    sshPort: get.value<number>("hosts.sshPort")!,
    shell: get.value<string>("hosts.shell"),
    concurrency,
    domain: get.value<string>("hosts.domain"),
  };
}

/** The leader.* settings; undefined when leader election is off. */
function leaderSection(get: Lookup, hasLdapUrl: boolean, errors: ConfigError[]): LeaderConfig | undefined {
  const durationMs = get.value<number>("leader.leaseDuration")!;
  if (durationMs < 2_000) errors.push({ source: "--lease-duration", message: "must be at least 2s" });
  if (get.value<boolean>("leader.enabled") !== true) return undefined;
  if (!hasLdapUrl) errors.push({ source: "--leader-election", message: "needs --ldap-url: the lease is kept in AD" });
  return {
    durationMs,
    replicaId: get.value<string>("leader.replicaId") ?? `${hostname()}-${process.pid}`,
    leaseDn: get.value<string>("leader.leaseDn"),
  };
}

/** For commands that never touch AD: marks are never made or checked with it. */
const NO_DIRECTORY_OWNER = new OwnershipKey("none", Buffer.alloc(MIN_OWNERSHIP_KEY_BYTES));

/** The owner id and the key from its file; errors name the setting, never the key. */
function ownershipKey(
  get: Lookup,
  env: Readonly<Record<string, string | undefined>>,
  errors: ConfigError[],
): OwnershipKey | undefined {
  const ownerId = get.value<string>("ownership.ownerId")!;
  if (!OWNER_ID_PATTERN.test(ownerId)) {
    errors.push({
      source: "--owner-id",
      message: "must be 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit",
    });
    return undefined;
  }
  const file = get.value<string>("ownership.keyFile");
  const inline = env["GMSA_GITOPS_OWNERSHIP_KEY"];
  if (file === undefined && inline !== undefined && inline !== "") {
    const key = Buffer.from(inline, "utf8");
    if (key.length >= MIN_OWNERSHIP_KEY_BYTES) return new OwnershipKey(ownerId, key);
    errors.push({
      source: "GMSA_GITOPS_OWNERSHIP_KEY",
      message: `holds ${key.length} bytes; an ownership key needs at least ${MIN_OWNERSHIP_KEY_BYTES}`,
    });
    return undefined;
  }
  if (file === undefined) {
    errors.push({
      source: "--ownership-key-file",
      message: `is required (or GMSA_GITOPS_OWNERSHIP_KEY_FILE): a file of at least ${MIN_OWNERSHIP_KEY_BYTES} secret bytes, e.g. from \`openssl rand -base64 48\``,
    });
    return undefined;
  }
  const read = readSecretFile(file, { private: true });
  if (!read.ok) {
    errors.push({ source: "--ownership-key-file", message: read.message });
    return undefined;
  }
  let key = read.data;
  // A trailing newline from `openssl rand -base64 48 > file` is not part of the key.
  const text = key.toString("latin1").replace(/\r?\n$/, "");
  key = Buffer.from(text, "latin1");
  if (key.length < MIN_OWNERSHIP_KEY_BYTES) {
    errors.push({
      source: "--ownership-key-file",
      message: `${file} holds ${key.length} bytes; an ownership key needs at least ${MIN_OWNERSHIP_KEY_BYTES}`,
    });
    return undefined;
  }
  return new OwnershipKey(ownerId, key);
}

/**
 * Builds one validated Config: the settings layered (file, environment, flags; defaults from
 * SETTINGS), then one builder per section. Every problem is collected; none names a secret.
 */
export function loadConfig(input: ConfigInput): ConfigResult {
  const env = input.env ?? process.env;
  const errors: ConfigError[] = [];
  const get = layer(input, env, errors);
  const directory = directorySection(get, env, input.require?.directory === true, errors);
  const source = sourceSection(get, errors);
  const server = serverSection(get, errors);
  const hosts = hostsSection(get, errors);
  const owner = directory !== undefined || input.require?.directory ? ownershipKey(get, env, errors) : undefined;
  const intervalMs = get.value<number>("interval")!;
  if (intervalMs < 1000) errors.push({ source: "--interval", message: "must be at least 1s" });
  const sourceIntervalMs = get.value<number>("sourceInterval") ?? 0;
  // The source-stale alert fires after 30 minutes without a fetch: a poll every 15 minutes at most.
  if (sourceIntervalMs > MAX_SOURCE_INTERVAL_MS)
    errors.push({
      source: "--source-interval",
      message: "must be at most 15m (the source-stale alert fires after 30m)",
    });
  const notify = notifySection(get, env, errors);
  const leader = leaderSection(get, get.value<string>("ldap.url") !== undefined, errors);
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    config: {
      notify,
      hosts,
      netbiosDomain: get.value<string>("hosts.domain"),
      hostShell: get.value<string>("hosts.shell"),
      directory,
      source,
      intervalMs,
      sourceIntervalMs,
      fullResyncMs: get.value<number>("fullResyncInterval")!,
      leader,
      server,
      log: {
        level: get.value<Config["log"]["level"]>("log.level")!,
        format: get.value<"json" | "pretty">("log.format"),
      },
      repo: get.value<string>("repo"),
      policy: {
        mode: get.value<"enforce" | "observe">("policy.mode")!,
        prune: get.value<boolean>("policy.prune")!,
        deletionBudget: get.value<number>("policy.deletionBudget")!,
        adopt: get.value<boolean>("policy.adopt")!,
        // Without a directory nothing is ever marked (validate, the agent): a key that signs nothing.
        owner: owner ?? NO_DIRECTORY_OWNER,
      },
    },
  };
}

/** The notification settings; the URL comes from a file or GMSA_GITOPS_NOTIFY_URL, and no error quotes it. */
function notifySection(
  get: Lookup,
  env: Readonly<Record<string, string | undefined>>,
  errors: ConfigError[],
): NotifyConfig | undefined {
  const file = get.value<string>("notify.urlFile");
  let url = env["GMSA_GITOPS_NOTIFY_URL"];
  let source = "GMSA_GITOPS_NOTIFY_URL";
  if (file !== undefined) {
    source = "--notify-url-file";
    url = readSecretText(file, source, errors)?.trim();
    if (url === undefined) return undefined;
  }
  if (url === undefined || url === "") {
    if (file !== undefined) errors.push({ source, message: `${file} is empty` });
    return undefined;
  }
  if (!/^https?:\/\/[^\s]+$/i.test(url)) {
    errors.push({
      source,
      message: "must hold an http:// or https:// URL (the value is not shown: it may hold a token)",
    });
    return undefined;
  }
  const maxPerMinute = get.value<number>("notify.maxPerMinute")!;
  if (maxPerMinute < 1) errors.push({ source: "--notify-max-per-minute", message: "must be at least 1" });
  const timeoutMs = get.value<number>("notify.timeout")!;
  if (timeoutMs < 100) errors.push({ source: "--notify-timeout", message: "must be at least 100ms" });
  return {
    url,
    format: get.value<NotifyConfig["format"]>("notify.format")!,
    minIntervalMs: get.value<number>("notify.minInterval")!,
    maxPerMinute,
    timeoutMs,
  };
}
