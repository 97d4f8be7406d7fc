/**
 * Controller configuration: one validated object from a config file, the environment and
 * command-line flags (flags win over the environment, which wins over the file). This is the
 * only module that reads `process.env`; everything else receives values.
 *
 * Secrets (the bind password, the webhook secret) are read from files or the environment,
 * never from flags (flags show up in `ps`), and never appear in error messages.
 */
import { accessSync, constants as fsConstants, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { GitCredentials } from "../source/credentials.ts";

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
}

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
    description: "ldaps://host:636 (default), or ldap://host:389 with --start-tls",
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
    description: "PEM CA bundle that signed the DC's certificate (default: system CAs)",
  },
  {
    key: "ldap.startTls",
    flag: "start-tls",
    env: "GMSA_GITOPS_START_TLS",
    type: "boolean",
    description: "use StartTLS on an ldap:// URL",
  },
  {
    key: "ldap.insecurePlaintext",
    flag: "insecure-plaintext-ldap",
    env: "GMSA_GITOPS_INSECURE_PLAINTEXT_LDAP",
    type: "boolean",
    description: "allow ldap:// without TLS (sends the password in clear; labs only)",
  },
  {
    key: "ldap.baseDn",
    flag: "base-dn",
    env: "GMSA_GITOPS_BASE_DN",
    type: "string",
    description: "domain DN (default: the DC's defaultNamingContext)",
  },
  {
    key: "ldap.timeout",
    flag: "ldap-timeout",
    env: "GMSA_GITOPS_LDAP_TIMEOUT",
    type: "duration",
    description: "timeout of one LDAP operation (default 30s)",
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
    description: "enforce applies fixes; observe only reports drift (default enforce)",
  },
  {
    key: "policy.prune",
    flag: "prune",
    env: "GMSA_GITOPS_PRUNE",
    type: "boolean",
    description: "delete objects gmsa-gitops created that left the repository",
  },
  {
    key: "policy.deletionBudget",
    flag: "deletion-budget",
    env: "GMSA_GITOPS_DELETION_BUDGET",
    type: "integer",
    description: "most deletions per run (default 5)",
  },
  {
    key: "policy.adopt",
    flag: "adopt",
    env: "GMSA_GITOPS_ADOPT",
    type: "boolean",
    description: "take over existing unmarked objects that have a managed name",
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
    description: "run: branch to follow (default main)",
  },
  {
    key: "source.path",
    flag: "git-path",
    env: "GMSA_GITOPS_GIT_PATH",
    type: "string",
    description: "run: folder inside the repository holding the manifests (default: the root)",
  },
  {
    key: "source.workDir",
    flag: "work-dir",
    env: "GMSA_GITOPS_WORK_DIR",
    type: "string",
    path: true,
    description:
      "run: where the clone is kept (default: a folder per repository, branch and path under the system temp dir)",
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
    description: "run: user name sent with --git-token-file (default x-access-token)",
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
    description: "run: time between reconciles, with 10% jitter (default 60s)",
  },
  {
    key: "server.address",
    flag: "listen",
    env: "GMSA_GITOPS_LISTEN",
    type: "string",
    description: "run: address of /metrics, /healthz, /readyz, /api/status and /hooks/git (default 127.0.0.1:9090)",
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
    description: "log level (default info)",
  },
  {
    key: "log.format",
    flag: "log-format",
    env: "GMSA_GITOPS_LOG_FORMAT",
    type: "enum",
    values: ["json", "pretty"],
    description: "json lines, or pretty for a terminal (default: pretty on a terminal)",
  },
  {
    key: "hosts.transport",
    flag: "host-transport",
    env: "GMSA_GITOPS_HOST_TRANSPORT",
    type: "enum",
    values: ["none", "ssh"],
    description: "how HostBindings are reconciled: ssh to each host's dNSHostName, or none (AD only; the default)",
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
    description: "ssh: port (default 22)",
  },
  {
    key: "hosts.shell",
    flag: "host-shell",
    env: "GMSA_GITOPS_HOST_SHELL",
    type: "string",
    description: "the remote command that runs the host script (default: Windows PowerShell 5.1)",
  },
  {
    key: "hosts.concurrency",
    flag: "host-concurrency",
    env: "GMSA_GITOPS_HOST_CONCURRENCY",
    type: "integer",
    description: "most hosts reconciled at once (default 8)",
  },
  {
    key: "hosts.domain",
    flag: "netbios-domain",
    env: "GMSA_GITOPS_NETBIOS_DOMAIN",
    type: "string",
    description:
      "NetBIOS domain name for DOMAIN\\account$ identities (default: the first DC= of the base DN, upper-cased)",
  },
];

/** Settings for the LDAP connection. The password is resolved, never logged. */
export interface DirectoryConfig {
  readonly url: string;
  readonly bindDn: string;
  readonly bindPassword: string;
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

/** The validated configuration. */
export interface Config {
  readonly hosts: HostsConfig | undefined;
  /** NetBIOS domain override (also used by the agent). */
  readonly netbiosDomain: string | undefined;
  /** The command line that runs the host script (ssh: the remote command; agent: the local PowerShell). */
  readonly hostShell: string | undefined;
  readonly directory: DirectoryConfig | undefined;
  readonly repo: string | undefined;
  readonly source: SourceConfig | undefined;
  readonly intervalMs: number;
  readonly server: { readonly address: string; readonly webhookSecret: string | undefined };
  readonly log: { readonly level: "debug" | "info" | "warn" | "error"; readonly format: "json" | "pretty" | undefined };
  readonly policy: {
    readonly mode: "enforce" | "observe";
    readonly prune: boolean;
    readonly deletionBudget: number;
    readonly adopt: boolean;
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
      return ms;
    }
    case "enum":
      if (setting.values?.includes(text)) return text;
      errors.push({ source, message: `must be one of ${setting.values?.join(", ")}` });
      return undefined;
  }
}

/** Reads a one-line secret file (a trailing newline is not part of it); errors name the flag, never the content. */
function readSecretLine(path: string, flag: string, errors: ConfigError[]): string | undefined {
  try {
    const value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    if (value === "") errors.push({ source: `--${flag}`, message: `${path} is empty` });
    return value === "" ? undefined : value;
  } catch (error) {
    errors.push({
      source: `--${flag}`,
      message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
    });
    return undefined;
  }
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
function gitCredentials(
  get: <T>(key: string) => T | undefined,
  url: string | undefined,
  errors: ConfigError[],
): GitCredentials | undefined {
  const keyFile = get<string>("source.sshKeyFile");
  const knownHostsFile = get<string>("source.sshKnownHostsFile");
  const tokenFile = get<string>("source.tokenFile");
  const basicAuthFile = get<string>("source.basicAuthFile");
  const username = get<string>("source.username");
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

/**
 * Whether the CLI colours its output: only on a terminal, and never when NO_COLOR is set to a
 * non-empty value (https://no-color.org) or TERM is "dumb".
 */
export function colorWanted(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!isTTY) return false;
  if ((env["NO_COLOR"] ?? "") !== "") return false;
  return env["TERM"] !== "dumb";
}

/** Builds and validates the configuration. Reads the config file and the password file. */
export function loadConfig(input: ConfigInput): ConfigResult {
  const env = input.env ?? process.env;
  const errors: ConfigError[] = [];
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

  const get = <T>(key: string): T | undefined => values.get(key) as T | undefined;
  let directory: DirectoryConfig | undefined;
  const url = get<string>("ldap.url");
  if (url !== undefined || input.require?.directory) {
    if (url === undefined) errors.push({ source: "--ldap-url", message: "is required (or GMSA_GITOPS_LDAP_URL)" });
    const bindDn = get<string>("ldap.bindDn");
    if (bindDn === undefined) errors.push({ source: "--bind-dn", message: "is required (or GMSA_GITOPS_BIND_DN)" });
    let bindPassword = env["GMSA_GITOPS_BIND_PASSWORD"];
    const passwordFile = get<string>("ldap.bindPasswordFile");
    if (passwordFile !== undefined) {
      try {
        // A trailing newline from `echo pw > file` is not part of the password.
        bindPassword = readFileSync(passwordFile, "utf8").replace(/\r?\n$/, "");
      } catch (error) {
        errors.push({
          source: "--bind-password-file",
          message: `cannot read ${passwordFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
        });
      }
    }
    if (passwordFile === undefined && (bindPassword === undefined || bindPassword === ""))
      errors.push({ source: "--bind-password-file", message: "is required (or GMSA_GITOPS_BIND_PASSWORD)" });
    else if (passwordFile !== undefined && bindPassword === "")
      errors.push({ source: "--bind-password-file", message: `${passwordFile} is empty` });
    const startTls = get<boolean>("ldap.startTls") ?? false;
    const insecurePlaintext = get<boolean>("ldap.insecurePlaintext") ?? false;
    if (url !== undefined && !/^ldaps?:\/\//i.test(url))
      errors.push({ source: "--ldap-url", message: "must start with ldaps:// or ldap://" });
    if (url !== undefined && /^ldap:\/\//i.test(url) && !startTls && !insecurePlaintext)
      errors.push({
        source: "--ldap-url",
        message:
          "ldap:// sends the bind password in clear: use ldaps://, or --start-tls, or (labs only) --insecure-plaintext-ldap",
      });
    if (url !== undefined && bindDn !== undefined && bindPassword !== undefined)
      directory = {
        url,
        bindDn,
        bindPassword,
        caFile: get<string>("ldap.caFile"),
        startTls,
        insecurePlaintext,
        baseDn: get<string>("ldap.baseDn"),
        timeoutMs: get<number>("ldap.timeout") ?? 30_000,
      };
  }
  let source: SourceConfig | undefined;
  const gitUrl = get<string>("source.url");
  const allowedSignersFile = get<string>("source.allowedSignersFile");
  const gpgHome = get<string>("source.gpgHome");
  if (allowedSignersFile !== undefined && gpgHome !== undefined)
    errors.push({ source: "--verify-allowed-signers", message: "choose SSH or GPG signature verification, not both" });
  const credentials = gitCredentials(get, gitUrl, errors);
  if (gitUrl !== undefined)
    source = {
      type: "git",
      url: gitUrl,
      branch: get<string>("source.branch") ?? "main",
      path: get<string>("source.path"),
      workDir: get<string>("source.workDir"),
      verify:
        allowedSignersFile !== undefined
          ? { mode: "ssh", allowedSignersFile }
          : gpgHome !== undefined
            ? { mode: "gpg", keyringDir: gpgHome }
            : undefined,
      credentials,
    };
  else if (get<string>("repo") !== undefined) source = { type: "local", dir: get<string>("repo")! };
  let webhookSecret: string | undefined;
  const secretFile = get<string>("server.webhookSecretFile");
  if (secretFile !== undefined) {
    try {
      webhookSecret = readFileSync(secretFile, "utf8").trim();
      if (webhookSecret === "") errors.push({ source: "--webhook-secret-file", message: `${secretFile} is empty` });
    } catch (error) {
      errors.push({
        source: "--webhook-secret-file",
        message: `cannot read ${secretFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      });
    }
  }
  const intervalMs = get<number>("interval") ?? 60_000;
  if (intervalMs < 1000) errors.push({ source: "--interval", message: "must be at least 1s" });

  let hosts: HostsConfig | undefined;
  if (get<string>("hosts.transport") === "ssh") {
    const sshUser = get<string>("hosts.sshUser");
    const sshKeyFile = get<string>("hosts.sshKeyFile");
    const knownHostsFile = get<string>("hosts.knownHostsFile");
    if (sshUser === undefined) errors.push({ source: "--ssh-user", message: "is required with --host-transport ssh" });
    if (sshKeyFile === undefined)
      errors.push({ source: "--ssh-key-file", message: "is required with --host-transport ssh" });
    if (knownHostsFile === undefined)
      errors.push({
        source: "--ssh-known-hosts",
        message: "is required with --host-transport ssh: host keys are pinned, never trusted on first use",
      });
    const concurrency = get<number>("hosts.concurrency") ?? 8;
    if (concurrency < 1) errors.push({ source: "--host-concurrency", message: "must be at least 1" });
    if (sshUser !== undefined && sshKeyFile !== undefined && knownHostsFile !== undefined)
      hosts = {
        transport: "ssh",
        sshUser,
        sshKeyFile,
        knownHostsFile,
        sshPort: get<number>("hosts.sshPort") ?? 22,
        shell: get<string>("hosts.shell"),
        concurrency,
        domain: get<string>("hosts.domain"),
      };
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    config: {
      hosts,
      netbiosDomain: get<string>("hosts.domain"),
      hostShell: get<string>("hosts.shell"),
      directory,
      source,
      intervalMs,
      server: { address: get<string>("server.address") ?? "127.0.0.1:9090", webhookSecret },
      log: { level: get<Config["log"]["level"]>("log.level") ?? "info", format: get<"json" | "pretty">("log.format") },
      repo: get<string>("repo"),
      policy: {
        mode: get<"enforce" | "observe">("policy.mode") ?? "enforce",
        prune: get<boolean>("policy.prune") ?? false,
        deletionBudget: get<number>("policy.deletionBudget") ?? 5,
        adopt: get<boolean>("policy.adopt") ?? false,
      },
    },
  };
}
