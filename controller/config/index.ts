/**
 * Controller configuration: one validated object from a config file, the environment and
 * command-line flags (flags win over the environment, which wins over the file). This is the
 * only module that reads `process.env`; everything else receives values.
 *
 * Secrets (the bind password, the webhook secret) are read from files or the environment,
 * never from flags (flags show up in `ps`), and never appear in error messages.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";

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

/** The validated configuration. */
export interface Config {
  readonly directory: DirectoryConfig | undefined;
  readonly repo: string | undefined;
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
    if (bindPassword === undefined || bindPassword === "")
      errors.push({ source: "--bind-password-file", message: "is required (or GMSA_GITOPS_BIND_PASSWORD)" });
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
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    config: {
      directory,
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
