import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { loadConfig, parseDuration } from "./index.ts";

const dir = mkdtempSync(join(tmpdir(), "gmsa-config-"));
const passwordFile = join(dir, "pw");
writeFileSync(passwordFile, "S3cret-Bind-Pw!\n", { mode: 0o600 });
const keyFile = join(dir, "key");
const KEY = "config-test-ownership-key-0123456789abcdef";
writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });

const base = {
  "ldap-url": "ldaps://dc1:636",
  "bind-dn": "CN=svc,DC=x",
  "bind-password-file": passwordFile,
  "ownership-key-file": keyFile,
};

describe("loadConfig", () => {
  it("reads the password file without its trailing newline and defaults to the safe policy", () => {
    const r = loadConfig({ flags: base, env: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.directory).toMatchObject({
      url: "ldaps://dc1:636",
      bindPassword: "S3cret-Bind-Pw!",
      timeoutMs: 30_000,
    });
    expect(r.config.policy).toMatchObject({ mode: "enforce", prune: false, deletionBudget: 5, adopt: false });
    expect(r.config.policy.owner.ownerId).toBe("default");
  });

  it("--source-interval: default every reconcile, a duration up to 15m, longer refused naming the flag", () => {
    const byDefault = loadConfig({ flags: base, env: {} });
    expect(byDefault.ok && byDefault.config.sourceIntervalMs).toBe(0);
    const set = loadConfig({ flags: base, env: { GMSA_GITOPS_SOURCE_INTERVAL: "5m" } });
    expect(set.ok && set.config.sourceIntervalMs).toBe(300_000);
    const long = loadConfig({ flags: { ...base, "source-interval": "16m" }, env: {} });
    expect(!long.ok && long.errors).toEqual([
      { source: "--source-interval", message: "must be at most 15m (the source-stale alert fires after 30m)" },
    ]);
  });

  it("plan, apply and run need an ownership key: missing, unreadable or short is a clear error naming no secret", () => {
    const { "ownership-key-file": _k, ...noKey } = base;
    const cases: Array<[Record<string, string>, Record<string, string>, RegExp]> = [
      [noKey, {}, /--ownership-key-file: is required/],
      [
        { ...base, "ownership-key-file": join(dir, "absent") },
        {},
        /--ownership-key-file: cannot read .*absent: ENOENT/,
      ],
      [{ ...base, "ownership-key-file": passwordFile }, {}, /--ownership-key-file: .* holds 15 bytes; .* at least 32/],
      [{ ...base, "owner-id": "Team A" }, {}, /--owner-id: must be/],
      [noKey, { GMSA_GITOPS_OWNERSHIP_KEY: "short" }, /GMSA_GITOPS_OWNERSHIP_KEY: holds 5 bytes/],
    ];
    for (const [flags, env, want] of cases) {
      const r = loadConfig({ flags, env, require: { directory: true } });
      expect(r.ok).toBe(false);
      const text = r.ok ? "" : r.errors.map((e) => `${e.source}: ${e.message}`).join("\n");
      expect(text).toMatch(want);
      expect(text).not.toContain("S3cret-Bind-Pw!");
    }
    const fromEnv = loadConfig({ flags: noKey, env: { GMSA_GITOPS_OWNERSHIP_KEY: KEY }, require: { directory: true } });
    expect(fromEnv.ok && fromEnv.config.policy.owner.ownerId).toBe("default");
    // The key never shows in the configuration's JSON (status pages, debug dumps).
    const ok = loadConfig({ flags: { ...base, "owner-id": "team-a" }, env: {} });
    expect(ok.ok && JSON.stringify(ok.config)).not.toContain(KEY);
    expect(ok.ok && ok.config.policy.owner.ownerId).toBe("team-a");
  });

  it("refuses an ownership key or bind password file other users can read, naming the file and its mode", () => {
    const open = join(dir, "open-key");
    writeFileSync(open, `${KEY}\n`, { mode: 0o644 });
    chmodSync(open, 0o644);
    const key = loadConfig({ flags: { ...base, "ownership-key-file": open }, env: {}, require: { directory: true } });
    const keyText = key.ok ? "" : key.errors.map((e) => `${e.source}: ${e.message}`).join("\n");
    expect(keyText).toMatch(/--ownership-key-file: .*open-key is open to other users \(mode 0644\).*chmod 600/);
    expect(keyText).not.toContain(KEY);
    const pw = join(dir, "open-pw");
    writeFileSync(pw, "S3cret-Bind-Pw!\n");
    chmodSync(pw, 0o660);
    const bind = loadConfig({ flags: { ...base, "bind-password-file": pw }, env: {} });
    const bindText = bind.ok ? "" : bind.errors.map((e) => `${e.source}: ${e.message}`).join("\n");
    expect(bindText).toMatch(/--bind-password-file: .*open-pw is open to other users \(mode 0660\)/);
    expect(bindText).not.toContain("S3cret-Bind-Pw!");
    // Readable by the group only (a Kubernetes Secret mounted 0440 with fsGroup) is accepted.
    const grouped = join(dir, "group-key");
    writeFileSync(grouped, `${KEY}\n`);
    chmodSync(grouped, 0o440);
    expect(loadConfig({ flags: { ...base, "ownership-key-file": grouped }, env: {} }).ok).toBe(true);
  });

  it("takes settings from a file, the environment and flags, flags winning over the environment over the file", () => {
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      "ldap:\n  url: ldaps://from-file:636\n  bindDn: CN=file\n  bindPasswordFile: pw\nownership:\n  keyFile: key\npolicy:\n  mode: observe\n  deletionBudget: 2\ninterval: 5m\n",
    );
    const fromFile = loadConfig({ flags: {}, env: {}, configFile: file });
    if (!fromFile.ok) throw new Error(JSON.stringify(fromFile.errors));
    // A relative path in the file is relative to the file.
    expect(fromFile.config.directory).toMatchObject({ url: "ldaps://from-file:636", bindPassword: "S3cret-Bind-Pw!" });
    expect(fromFile.config.policy).toMatchObject({ mode: "observe", deletionBudget: 2 });
    expect(fromFile.config.intervalMs).toBe(300_000);

    const r = loadConfig({
      flags: { "deletion-budget": "9" },
      env: { GMSA_GITOPS_LDAP_URL: "ldaps://from-env:636", GMSA_GITOPS_DELETION_BUDGET: "7" },
      configFile: file,
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.directory?.url).toBe("ldaps://from-env:636");
    expect(r.config.policy.deletionBudget).toBe(9);
  });

  it("reads the notification webhook URL from a file or the environment, never quoting it in an error", () => {
    const none = loadConfig({ flags: base, env: {} });
    expect(none.ok && none.config.notify).toBeUndefined();

    const urlFile = join(dir, "notify-url");
    writeFileSync(urlFile, "https://hooks.slack.com/services/T0/B0/s3cretT0ken\n");
    const fromFile = loadConfig({ flags: { ...base, "notify-url-file": urlFile, "notify-format": "slack" }, env: {} });
    if (!fromFile.ok) throw new Error(JSON.stringify(fromFile.errors));
    expect(fromFile.config.notify).toEqual({
      url: "https://hooks.slack.com/services/T0/B0/s3cretT0ken",
      format: "slack",
      minIntervalMs: 600_000,
      maxPerMinute: 20,
      timeoutMs: 10_000,
    });

    const fromEnv = loadConfig({
      flags: base,
      env: { GMSA_GITOPS_NOTIFY_URL: "http://receiver:8080/x", GMSA_GITOPS_NOTIFY_MIN_INTERVAL: "1m" },
    });
    expect(fromEnv.ok && fromEnv.config.notify).toMatchObject({ url: "http://receiver:8080/x", minIntervalMs: 60_000 });

    const bad = loadConfig({ flags: base, env: { GMSA_GITOPS_NOTIFY_URL: "hooks.slack.com/s3cretT0ken" } });
    expect(bad.ok).toBe(false);
    expect(JSON.stringify(!bad.ok && bad.errors)).not.toContain("s3cretT0ken");
    expect(!bad.ok && bad.errors[0]?.source).toBe("GMSA_GITOPS_NOTIFY_URL");
  });

  it("accepts the bind password from the environment", () => {
    const r = loadConfig({
      flags: { "ldap-url": "ldaps://dc1", "bind-dn": "CN=svc", "ownership-key-file": keyFile },
      env: { GMSA_GITOPS_BIND_PASSWORD: "from-env" },
    });
    expect(r.ok && r.config.directory?.bindPassword).toBe("from-env");
  });

  it("refuses plaintext LDAP unless StartTLS or the insecure flag says otherwise", () => {
    const plain = loadConfig({ flags: { ...base, "ldap-url": "ldap://dc1:389" }, env: {} });
    expect(plain.ok).toBe(false);
    expect(!plain.ok && plain.errors[0]?.message).toMatch(/--start-tls/);
    expect(loadConfig({ flags: { ...base, "ldap-url": "ldap://dc1:389", "start-tls": true }, env: {} }).ok).toBe(true);
    expect(
      loadConfig({ flags: { ...base, "ldap-url": "ldap://dc1:389", "insecure-plaintext-ldap": true }, env: {} }).ok,
    ).toBe(true);
  });

  it("names the source of each bad value and never echoes the password", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "ldap:\n  urll: x\npolicy:\n  mode: sometimes\n");
    const r = loadConfig({
      flags: { ...base, "deletion-budget": "many", interval: "soon" },
      env: { GMSA_GITOPS_PRUNE: "perhaps" },
      configFile: file,
    });
    expect(r.ok).toBe(false);
    const errors = r.ok ? [] : r.errors;
    expect(errors.map((e) => e.source).sort()).toEqual(
      [`${file}: ldap.urll`, `${file}: policy.mode`, "--deletion-budget", "--interval", "GMSA_GITOPS_PRUNE"].sort(),
    );
    expect(JSON.stringify(errors)).not.toContain("S3cret-Bind-Pw!");
  });

  it("refuses a duration longer than a timer can wait, naming where it came from", () => {
    // A longer wait does not wait: Node fires the timer after 1 ms, so `--interval 999999h` meant
    // a cycle every millisecond, and a lease of 99999h a lease read every millisecond.
    const file = join(dir, "durations.yaml");
    writeFileSync(file, "leader:\n  leaseDuration: 99999h\n");
    const r = loadConfig({
      flags: { ...base, interval: "999999h", "leader-election": true },
      env: { GMSA_GITOPS_FULL_RESYNC_INTERVAL: "9".repeat(400) },
      configFile: file,
    });
    const errors = r.ok ? [] : r.errors;
    expect(errors.map((e) => e.source).sort()).toEqual(
      ["--interval", "GMSA_GITOPS_FULL_RESYNC_INTERVAL", `${file}: leader.leaseDuration`].sort(),
    );
    expect(new Set(errors.map((e) => e.message))).toEqual(new Set(["must be at most 596h"]));
    const longest = loadConfig({ flags: { ...base, interval: "596h", "full-resync-interval": "596h" }, env: {} });
    expect(longest.ok).toBe(true);
  });

  it("requires ssh key, user and pinned known hosts for the ssh host transport", () => {
    const r = loadConfig({ flags: { ...base, "host-transport": "ssh" }, env: {} });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors.map((e) => e.source)).toEqual(["--ssh-user", "--ssh-key-file", "--ssh-known-hosts"]);
  });
});

describe("Git credentials", () => {
  const tokenFile = join(dir, "git-token");
  writeFileSync(tokenFile, "glpat-unit-token-123\n");
  const load = (flags: Record<string, string>) => loadConfig({ flags, env: {} });
  const errors = (flags: Record<string, string>) => {
    const r = load(flags);
    return r.ok ? [] : r.errors.map((e) => `${e.source}: ${e.message}`);
  };

  it("reads a token file into https credentials with the default user name", () => {
    const r = load({ "git-url": "https://git.company.local/ad/gmsa.git", "git-token-file": tokenFile });
    expect(r.ok && r.config.source?.type === "git" && r.config.source.credentials).toEqual({
      type: "https",
      username: "x-access-token",
      password: "glpat-unit-token-123",
    });
  });

  it("refuses to send https credentials over plain http to another host, without showing the secret", () => {
    const found = errors({ "git-url": "http://git.company.local/ad/gmsa.git", "git-token-file": tokenFile });
    expect(found).toEqual([expect.stringMatching(/^--git-url: https credentials are only sent over https/)]);
    expect(found.join()).not.toContain("glpat-unit-token-123");
  });

  it("needs a pinned known_hosts file with an ssh key, and an ssh URL", () => {
    expect(errors({ "git-url": "git@git.company.local:ad/gmsa.git", "git-ssh-key-file": tokenFile })).toEqual([
      expect.stringMatching(/^--git-ssh-known-hosts: is required with --git-ssh-key-file/),
    ]);
    expect(
      errors({
        "git-url": "https://git.company.local/ad/gmsa.git",
        "git-ssh-key-file": tokenFile,
        "git-ssh-known-hosts": tokenFile,
      }),
    ).toEqual([expect.stringMatching(/^--git-url: ssh credentials need/)]);
  });

  it("names the flag of a missing or malformed secret file, never its content", () => {
    const basic = join(dir, "basic-no-colon");
    writeFileSync(basic, "only-a-secret-value\n");
    const found = errors({ "git-url": "https://git.company.local/x.git", "git-basic-auth-file": basic });
    expect(found).toEqual([`--git-basic-auth-file: ${basic} must hold one line user:password`]);
    expect(errors({ "git-url": "https://h/x.git", "git-token-file": join(dir, "missing") })).toEqual([
      `--git-token-file: cannot read ${join(dir, "missing")}: ENOENT`,
    ]);
  });

  it("refuses ssh and https credentials together, and credentials without --git-url", () => {
    expect(
      errors({
        "git-url": "https://h/x.git",
        "git-token-file": tokenFile,
        "git-ssh-key-file": tokenFile,
        "git-ssh-known-hosts": tokenFile,
      }),
    ).toEqual([expect.stringMatching(/not both$/)]);
    expect(errors({ ...base, "git-token-file": tokenFile })).toEqual(["--git-token-file: needs --git-url"]);
  });
});

describe("the shipped deployment examples", () => {
  it("the Kubernetes ConfigMap's config.yaml uses only known settings with valid values", () => {
    const docs = parseAllDocuments(
      readFileSync(join(import.meta.dirname, "../../deploy/kubernetes/controller.yaml"), "utf8"),
    ).map((d) => d.toJS() as { kind: string; data?: Record<string, string> });
    const configMap = docs.find((d) => d.kind === "ConfigMap");
    const file = join(dir, "k8s-config.yaml");
    writeFileSync(file, configMap?.data?.["config.yaml"] ?? "");
    const r = loadConfig({ flags: {}, env: {}, configFile: file });
    // Only the secret files are missing on this machine; every key and value is understood.
    expect(r.ok ? [] : r.errors.map((e) => e.source)).toEqual([
      "--bind-password-file",
      "--git-token-file",
      "--webhook-secret-file",
    ]);
  });
});

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["10", 10_000],
  ])("%s is %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it("refuses what is not a duration", () => expect(parseDuration("5 minutes")).toBeUndefined());
});
