// A throwaway Samba AD DC for integration tests: provisioned in its own temp folder, run from the
// Debian-stable root that scripts/install-test-deps.sh builds (Samba >= 4.21, the first version
// that generates gMSA passwords), inside its own mount and network namespace, reached from the
// test process over LDAPS through a Unix-socket forwarder. See docs/decisions/test-components.md.
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Options for {@link startDc}. Every field has a default matching examples/. */
export interface DcOptions {
  /** Kerberos realm, upper case by convention. Default COMPANY.LOCAL. */
  realm?: string;
  /** NetBIOS domain name. Default COMPANY. */
  domain?: string;
  /** Administrator password; must meet AD complexity. Default: random. */
  adminPassword?: string;
  /** Default true: keep the KDS root key provision creates; false: delete every root key after provision. */
  kdsRootKey?: boolean;
}

/** A running throwaway DC. Everything it created disappears with {@link Dc.stop}. */
export interface Dc {
  /** "ldaps://127.0.0.1:<port>", reachable from the test process's network namespace. */
  readonly url: string;
  /** PEM of the DC's own CA: the only CA its server certificate verifies against. */
  readonly caFile: string;
  /** Domain naming context, e.g. "DC=company,DC=local". */
  readonly baseDn: string;
  /** Configuration naming context, "CN=Configuration,<baseDn>". */
  readonly configDn: string;
  readonly realm: string;
  readonly domain: string;
  /** CN=Administrator,CN=Users,<baseDn> */
  readonly adminDn: string;
  readonly adminPassword: string;
  /** File holding adminPassword, without a trailing newline (mode 0600; usable with ldapsearch -y). */
  readonly passwordFile: string;
  /** A fresh ownership key for the controller (--ownership-key-file), one per DC, mode 0600. */
  readonly ownershipKeyFile: string;
  /** The DC's temp folder (certificates, logs, Samba's databases). */
  readonly dir: string;
  /**
   * Runs ldapsearch/ldapmodify/ldapadd/ldapdelete (from the host's ldap-utils) against this DC with
   * TLS verified against caFile and simple bind (-x), as admin unless bindDn/password are given.
   * ldapsearch gets `-o ldif-wrap=no`. Returns stdout; rejects with stderr on non-zero exit.
   */
  ldap(
    tool: "ldapsearch" | "ldapmodify" | "ldapadd" | "ldapdelete",
    args: string[],
    opts?: { input?: string; bindDn?: string; password?: string },
  ): Promise<string>;
  /**
   * Runs samba-tool inside the DC's root (chroot, in the DC's namespaces) against its sam.ldb,
   * with the DC's smb.conf appended as --configfile; returns stdout. Paths in args are seen from
   * inside the root, where the DC's folder is /gmsa-dc.
   */
  sambaTool(args: string[]): Promise<string>;
  /**
   * Creates a computer account NAME$ (sAMAccountName) in CN=Computers with dNSHostName
   * name.<realm lower-case> and the given password, so tests can bind as it. Returns its DN.
   */
  addComputer(name: string, password: string): Promise<string>;
  /** Stops the whole process group, removes the temp folder (mounts vanish with the namespace); idempotent. */
  stop(): Promise<void>;
}

/** Where the DC's folder appears inside the Samba root. Each DC has a private mount namespace, so one path serves all. */
const DC_MOUNT = "/gmsa-dc";
const MARKER = ".gmsa-gitops-root-complete";
const MIN_SAMBA: readonly [number, number] = [4, 21];
const STARTUP_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 10_000;

/** The Debian-stable root holding Samba (and its Python bindings, for decoding in tests). */
export function sambaRoot(): string {
  // Test code reads the same variable the installer honours, so a custom root works for both.
  return process.env["GMSA_SAMBA_ROOT"] ?? "/var/cache/gmsa-gitops/samba-root";
}

/** Runs a program; resolves stdout, rejects with an Error holding stderr (never the arguments: they may hold secrets). */
function run(
  file: string,
  args: string[],
  opts: { input?: string | undefined; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === "number" ? `exit ${error.code}` : String(error.code ?? error.signal);
          reject(new Error(`${file} failed (${code}): ${stderr.trim() || stdout.trim()}`));
        } else {
          resolve(stdout);
        }
      },
    );
    // A program that exits without reading its input (a failed bind) must not crash the test run.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.input ?? "");
  });
}

let checkedRoot: string | undefined;

/** Fails with the installer's name when the root is missing or its Samba is too old to generate gMSA passwords. */
async function checkSambaRoot(root: string): Promise<void> {
  if (checkedRoot === root) return;
  const hint = `Samba ${MIN_SAMBA.join(".")}+ root not found at ${root}: run scripts/install-test-deps.sh`;
  if (!existsSync(join(root, MARKER)) || !existsSync(join(root, "usr/sbin/samba"))) throw new Error(hint);
  const version = await run("chroot", [root, "samba", "--version"]).catch((error: unknown) => {
    throw new Error(`${hint} (samba --version failed: ${String(error)})`);
  });
  const match = /Version (\d+)\.(\d+)/.exec(version);
  const [major, minor] = [Number(match?.[1]), Number(match?.[2])];
  if (!match || major < MIN_SAMBA[0] || (major === MIN_SAMBA[0] && minor < MIN_SAMBA[1])) {
    throw new Error(`${hint} (found ${version.trim() || "no version"})`);
  }
  checkedRoot = root;
}

/** Makes a CA and a server certificate for 127.0.0.1, localhost and dc1.<realm>, valid for a day. */
async function makeCertificates(tlsDir: string, realm: string): Promise<void> {
  const ca = join(tlsDir, "ca");
  const server = join(tlsDir, "server");
  const ext = join(tlsDir, "server.ext");
  writeFileSync(
    ext,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:dc1.${realm.toLowerCase()}`,
      "",
    ].join("\n"),
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run(
    "openssl",
    ["req", "-x509", ...ec, "-keyout", `${ca}.key`, "-out", `${ca}.pem`, "-days", "2"]
      .concat(["-subj", "/CN=gmsa-gitops throwaway test CA", "-addext", "basicConstraints=critical,CA:TRUE"])
      .concat(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
  );
  await run(
    "openssl",
    ["req", "-new", ...ec, "-keyout", `${server}.key`, "-out", `${server}.csr`].concat([
      "-subj",
      `/CN=dc1.${realm.toLowerCase()}`,
    ]),
  );
  await run(
    "openssl",
    ["x509", "-req", "-in", `${server}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`].concat([
      "-CAcreateserial",
      "-out",
      `${server}.pem`,
      "-days",
      "1",
      "-extfile",
      ext,
    ]),
  );
  // Samba refuses a TLS private key that others could read.
  chmodSync(`${server}.key`, 0o600);
}

// Runs first on the host side (watchdog + host forwarder), then re-executes itself inside new
// mount and network namespaces. Provisions unless DC_DIR/samba already holds a domain (copied
// from a template); MODE "provision" stops there, MODE "run" starts Samba. Arguments: PHASE
// (host|ns) MODE ROOT DC_DIR NODE FORWARD WATCH_PID KEEP_KDS REALM DOMAIN. The admin password
// is read from DC_DIR/admin.password.
const DC_SCRIPT = String.raw`#!/bin/bash
set -euo pipefail
phase=$1 mode=$2 root=$3 dc=$4 node=$5 forward=$6 watch_pid=$7 keep_kds=$8 realm=$9 domain=${"${10}"}
if [[ $phase == host ]]; then
  # Whatever kills the test process (even SIGKILL), the DC dies with it: a watchdog in its own
  # session (so killing our group spares it) kills our group and removes the folder. It exits
  # quietly once our group is gone, which is what stop() does.
  setsid bash -c 'watch=$1 group=$2 dir=$3
    while kill -0 "$watch" && kill -0 -- "-$group"; do sleep 0.5; done 2>/dev/null
    kill -0 "$watch" 2>/dev/null && exit 0
    kill -KILL -- "-$group" 2>/dev/null
    sleep 1
    rm -rf --one-file-system "$dir"' watchdog "$watch_pid" "$$" "$dc" </dev/null >/dev/null 2>&1 &
  echo "$!" >"$dc/watchdog.pid"
  if [[ $mode == run ]]; then
    "$node" "$forward" tcp-to-unix "$dc/ldaps.sock" "$dc/ldaps.port" &
  fi
  shift
  exec unshare --mount --net --fork bash "$0" ns "$@"
fi
echo "$$" >"$dc/ns.pid"
ip link set lo up
mount --make-rprivate /
mount --bind "$dc" "$root${DC_MOUNT}"
mount -t proc proc "$root/proc"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mkdir -p "$root/run/samba"
log() { echo "$(date +%T.%3N) $*"; }
conf=${DC_MOUNT}/samba/etc/smb.conf
provision() {
  log "provisioning $realm"
  chroot "$root" samba-tool domain provision --targetdir=${DC_MOUNT}/samba \
    --realm="$realm" --domain="$domain" --adminpass="$(cat "$dc/admin.password")" \
    --server-role=dc --dns-backend=NONE --host-name=DC1 \
    --option="interfaces=127.0.0.1" --option="bind interfaces only=yes" \
    --option="pid directory=${DC_MOUNT}/run" --option="log file=${DC_MOUNT}/log/samba.log" \
    --option="tls enabled=yes" --option="tls keyfile=${DC_MOUNT}/tls/server.key" \
    --option="tls certfile=${DC_MOUNT}/tls/server.pem" --option="tls cafile=${DC_MOUNT}/tls/ca.pem" \
    --option="server services=-s3fs -nbt -wrepl -dns -dnsupdate -ntp_signd" \
    >"$dc/log/provision.log" 2>&1 || { log "samba-tool domain provision failed"; exit 1; }
  if [[ $keep_kds == 0 ]]; then
    # Tests of "no KDS root key" need a domain without one; Samba >= 4.21 makes one at provision.
    log "deleting KDS root keys"
    local name
    for name in $(chroot "$root" samba-tool domain kds root-key list --json -s "$conf" | grep -o '"name": "[^"]*"' | cut -d'"' -f4); do
      chroot "$root" samba-tool domain kds root-key delete --name="$name" -s "$conf"
    done
  fi
}
[[ -e "$dc/samba/etc/smb.conf" ]] || provision
if [[ $mode == provision ]]; then
  log "provisioned"
  exit 0
fi
"$node" "$forward" unix-to-tcp "$dc/ldaps.sock" 127.0.0.1 636 &
log "starting samba"
exec chroot "$root" samba -s "$conf" --foreground --no-process-group
`;

/** Process groups of DCs not yet stopped, killed synchronously if the test process exits first. */
const live = new Map<number, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [pgid, dir] of live) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // already gone
      }
      // Safe even while the group is dying: the bind mount of dir lives only in its namespace.
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** True while any non-zombie process is in process group pgid (read from /proc). */
function groupAlive(pgid: number): boolean {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && Number(fields[2]) === pgid) return true;
  }
  return false;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function tail(file: string, lines: number, secret: string): string {
  if (!existsSync(file)) return `(${file} missing)`;
  const text = readFileSync(file, "utf8").split(secret).join("***");
  return text.split("\n").slice(-lines).join("\n");
}

function dnFromRealm(realm: string): string {
  return realm
    .toLowerCase()
    .split(".")
    .map((part) => `DC=${part}`)
    .join(",");
}

/** True while pid runs (zombies count as gone). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * Kills a DC's process group (TERM, then KILL after a grace period) and its watchdog, waits
 * until none of them runs, then removes its folder unless `keep` (a template just built).
 */
async function killDc(pgid: number, child: ChildProcess, dir: string, keep = false): Promise<void> {
  const watchdogFile = join(dir, "watchdog.pid");
  const watchdog = existsSync(watchdogFile) ? Number(readFileSync(watchdogFile, "utf8")) : undefined;
  const signal = (target: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(target, sig);
    } catch {
      // already gone
    }
  };
  signal(-pgid, "SIGTERM");
  const deadline = Date.now() + STOP_GRACE_MS;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pgid)) {
    signal(-pgid, "SIGKILL");
    while (groupAlive(pgid)) await sleep(100);
  }
  if (child.exitCode === null && child.signalCode === null) {
    await new Promise((resolve) => child.once("exit", resolve));
  }
  // The watchdog would exit by itself within half a second of the group; don't wait for that.
  if (watchdog !== undefined) {
    signal(watchdog, "SIGKILL");
    while (processAlive(watchdog)) await sleep(50);
  }
  live.delete(pgid);
  // Safe: the bind mount of dir into the root exists only in the DC's mount namespace, gone now.
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

class SambaDc implements Dc {
  readonly url: string;
  readonly caFile: string;
  readonly baseDn: string;
  readonly configDn: string;
  readonly realm: string;
  readonly domain: string;
  readonly adminDn: string;
  readonly adminPassword: string;
  readonly passwordFile: string;
  readonly ownershipKeyFile: string;
  readonly dir: string;
  readonly #root: string;
  readonly #child: ChildProcess;
  readonly #pgid: number;
  #stopping: Promise<void> | undefined;

  constructor(fields: {
    port: number;
    dir: string;
    root: string;
    realm: string;
    domain: string;
    adminPassword: string;
    child: ChildProcess;
    pgid: number;
  }) {
    this.url = `ldaps://127.0.0.1:${fields.port}`;
    this.dir = fields.dir;
    this.caFile = join(fields.dir, "tls", "ca.pem");
    this.realm = fields.realm;
    this.domain = fields.domain;
    this.baseDn = dnFromRealm(fields.realm);
    this.configDn = `CN=Configuration,${this.baseDn}`;
    this.adminDn = `CN=Administrator,CN=Users,${this.baseDn}`;
    this.adminPassword = fields.adminPassword;
    this.passwordFile = join(fields.dir, "admin.password");
    this.ownershipKeyFile = join(fields.dir, "ownership.key");
    this.#root = fields.root;
    this.#child = fields.child;
    this.#pgid = fields.pgid;
  }

  /** Environment that makes ldap-utils verify the DC's certificate against its own CA only. */
  #ldapEnv(): NodeJS.ProcessEnv {
    return {
      PATH: process.env["PATH"],
      HOME: this.dir,
      LDAPCONF: join(this.dir, "ldap.conf"),
      LDAPTLS_CACERT: this.caFile,
      LDAPTLS_REQCERT: "demand",
    };
  }

  async ldap(
    tool: "ldapsearch" | "ldapmodify" | "ldapadd" | "ldapdelete",
    args: string[],
    opts: { input?: string; bindDn?: string; password?: string } = {},
  ): Promise<string> {
    // The password goes through a 0600 file (-y), never the command line.
    let passwordFile = this.passwordFile;
    let tempFile: string | undefined;
    if (opts.password !== undefined) {
      tempFile = join(this.dir, `bind-${randomBytes(6).toString("hex")}.password`);
      writeFileSync(tempFile, opts.password, { mode: 0o600 });
      passwordFile = tempFile;
    }
    const base = ["-H", this.url, "-x", "-D", opts.bindDn ?? this.adminDn, "-y", passwordFile];
    if (tool === "ldapsearch") base.push("-o", "ldif-wrap=no");
    try {
      return await run(tool, [...base, ...args], { input: opts.input, env: this.#ldapEnv(), cwd: this.dir });
    } finally {
      if (tempFile) rmSync(tempFile, { force: true });
    }
  }

  async sambaTool(args: string[]): Promise<string> {
    const nsPid = readFileSync(join(this.dir, "ns.pid"), "utf8").trim();
    const inner = ["chroot", this.#root, "samba-tool", ...args, `--configfile=${DC_MOUNT}/samba/etc/smb.conf`];
    return run("nsenter", ["--target", nsPid, "--mount", "--net", ...inner], { cwd: this.dir });
  }

  async addComputer(name: string, password: string): Promise<string> {
    // The name reaches a DN and LDIF unescaped, so only NetBIOS-safe names are accepted.
    if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,14}$/.test(name)) {
      throw new Error(`computer name "${name}" must be 1-15 letters, digits or '-'`);
    }
    const dn = `CN=${name},CN=Computers,${this.baseDn}`;
    // unicodePwd is the password in double quotes, UTF-16LE; AD accepts it only over TLS.
    const unicodePwd = Buffer.from(`"${password}"`, "utf16le").toString("base64");
    const ldif = [
      `dn: ${dn}`,
      "objectClass: computer",
      `sAMAccountName: ${name}$`,
      "userAccountControl: 4096",
      `dNSHostName: ${name.toLowerCase()}.${this.realm.toLowerCase()}`,
      `unicodePwd:: ${unicodePwd}`,
      "",
    ].join("\n");
    await this.ldap("ldapadd", [], { input: ldif });
    return dn;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await killDc(this.#pgid, this.#child, this.dir);
  }
}

/** Writes the files a DC folder (or a template being built) needs before dc.sh runs. */
function prepareDcDir(dir: string, adminPassword: string): void {
  for (const sub of ["log", "run", "tls", "samba"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "admin.password"), adminPassword, { mode: 0o600 });
  writeFileSync(join(dir, "ownership.key"), `${randomBytes(48).toString("base64")}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "ldap.conf"), `TLS_CACERT ${join(dir, "tls", "ca.pem")}\nTLS_REQCERT demand\n`);
  writeFileSync(join(dir, "dc.sh"), DC_SCRIPT, { mode: 0o700 });
}

/** Starts dc.sh in its own process group (setsid), registered for the exit hook. */
function spawnDc(
  dir: string,
  root: string,
  mode: "provision" | "run",
  domain: { realm: string; domain: string; keepKds: boolean },
): { child: ChildProcess; pgid: number } {
  mkdirSync(join(root, DC_MOUNT.slice(1)), { recursive: true });
  const logFd = openSync(join(dir, "log", "dc.log"), "a");
  const forward = fileURLToPath(new URL("./forward.ts", import.meta.url));
  const keepKds = domain.keepKds ? "1" : "0";
  const args = [join(dir, "dc.sh"), "host", mode, root, dir, process.execPath, forward, String(process.pid)];
  args.push(keepKds, domain.realm, domain.domain);
  // detached: setsid, so the DC and all its helpers form one process group that stop() kills.
  const child = spawn("bash", args, { detached: true, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const pgid = child.pid;
  if (pgid === undefined) throw new Error("could not start bash for the DC");
  installExitHook();
  live.set(pgid, dir);
  child.unref();
  return { child, pgid };
}

/** An error quoting the tails of a DC folder's logs, with the admin password masked. */
function dcError(dir: string, why: string, secret: string): Error {
  const logs = [
    `--- dc.log ---\n${tail(join(dir, "log", "dc.log"), 20, secret)}`,
    `--- provision.log ---\n${tail(join(dir, "log", "provision.log"), 15, secret)}`,
    `--- samba.log ---\n${tail(join(dir, "log", "samba.log"), 30, secret)}`,
  ];
  return new Error(`Samba DC ${why}\n${logs.join("\n")}`);
}

/** A provisioned, never started domain that DCs copy instead of provisioning their own. */
interface Template {
  readonly sambaDir: string;
  readonly adminPassword: string;
}

/**
 * Returns the cached template domain for these settings, provisioning it first if needed.
 * Provisioning costs 5-15 s of Python; copying 35 MB of databases costs well under one, so each
 * test file pays for provisioning once per machine, not once per DC. Templates live under
 * os.tmpdir() and are keyed by the DC script, the Samba root's build and the domain settings.
 * Concurrent builders race safely: each builds in its own folder, the first rename wins.
 */
async function domainTemplate(
  root: string,
  domain: { realm: string; domain: string; keepKds: boolean },
): Promise<Template> {
  const key = createHash("sha256")
    .update(
      [DC_SCRIPT, readFileSync(join(root, MARKER), "utf8"), domain.realm, domain.domain, domain.keepKds].join("\0"),
    )
    .digest("hex")
    .slice(0, 16);
  const templates = join(tmpdir(), "gmsa-dc-templates");
  const final = join(templates, key);
  const load = (): Template => ({
    sambaDir: join(final, "samba"),
    adminPassword: readFileSync(join(final, "admin.password"), "utf8"),
  });
  if (existsSync(join(final, "complete"))) return load();

  mkdirSync(templates, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(templates, "build-"));
  const adminPassword = `Tmpl-${randomBytes(12).toString("hex")}`;
  prepareDcDir(dir, adminPassword);
  const { child, pgid } = spawnDc(dir, root, "provision", domain);
  const deadline = setTimeout(() => child.kill("SIGKILL"), STARTUP_TIMEOUT_MS);
  const exit = await new Promise<number | string>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  clearTimeout(deadline);
  if (exit !== 0) {
    const error = dcError(dir, `provisioning failed (${exit})`, adminPassword);
    await killDc(pgid, child, dir);
    throw error;
  }
  await killDc(pgid, child, dir, true);
  writeFileSync(join(dir, "complete"), "");
  try {
    renameSync(dir, final);
  } catch {
    // Another process finished the same template first; use theirs.
    rmSync(dir, { recursive: true, force: true });
  }
  return load();
}

/**
 * Starts a throwaway Samba AD DC and resolves once LDAPS answers and the admin password is set.
 * The domain is a copy of a cached template (provisioned on first use). The DC runs in its own
 * mount and network namespace and process group; it is killed when {@link Dc.stop} is called or,
 * failing that, when this process exits. Rejects with the tail of Samba's logs when provisioning
 * or startup fails, and with an install hint when the Samba root is missing or too old.
 */
export async function startDc(options: DcOptions = {}): Promise<Dc> {
  const root = sambaRoot();
  await checkSambaRoot(root);
  const realm = (options.realm ?? "COMPANY.LOCAL").toUpperCase();
  const domain = (options.domain ?? "COMPANY").toUpperCase();
  const adminPassword = options.adminPassword ?? `Adm1n-${randomBytes(12).toString("hex")}`;
  const template = await domainTemplate(root, { realm, domain, keepKds: options.kdsRootKey !== false });

  const dir = mkdtempSync(join(tmpdir(), "gmsa-dc-"));
  try {
    prepareDcDir(dir, adminPassword);
    await makeCertificates(join(dir, "tls"), realm);
    await run("cp", ["-a", `${template.sambaDir}/.`, join(dir, "samba")]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const { child, pgid } = spawnDc(dir, root, "run", { realm, domain, keepKds: options.kdsRootKey !== false });

  let dc: SambaDc;
  try {
    const port = await waitForLdaps(dir, child, Date.now(), (why) => dcError(dir, why, adminPassword));
    dc = new SambaDc({ port, dir, root, realm, domain, adminPassword, child, pgid });
    if (adminPassword !== template.adminPassword) {
      // The copy still has the template's password: reset it (an admin reset, so no minimum
      // password age applies), bound with the template's password.
      const unicodePwd = Buffer.from(`"${adminPassword}"`, "utf16le").toString("base64");
      const ldif = `dn: ${dc.adminDn}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: ${unicodePwd}\n-\n`;
      await dc.ldap("ldapmodify", [], { input: ldif, password: template.adminPassword });
    }
  } catch (error) {
    // The error already quotes the logs that killDc removes.
    await killDc(pgid, child, dir);
    throw error;
  }
  return dc;
}

/** Polls the rootDSE over LDAPS (anonymous, CA verified) until it answers; returns the forwarder's port. */
async function waitForLdaps(
  dir: string,
  child: ChildProcess,
  started: number,
  failure: (why: string) => Error,
): Promise<number> {
  const portFile = join(dir, "ldaps.port");
  let lastError = "";
  while (Date.now() - started < STARTUP_TIMEOUT_MS) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw failure(`exited during startup (${child.exitCode ?? child.signalCode})`);
    }
    if (existsSync(portFile)) {
      const port = Number(readFileSync(portFile, "utf8"));
      const env = { PATH: process.env["PATH"], HOME: dir, LDAPCONF: join(dir, "ldap.conf") };
      const probe = ["-H", `ldaps://127.0.0.1:${port}`, "-x", "-s", "base", "-b", "", "namingContexts"];
      try {
        await run("ldapsearch", probe, { env, cwd: dir, timeoutMs: 5_000 });
        return port;
      } catch (error) {
        lastError = String(error);
      }
    }
    await sleep(250);
  }
  throw failure(`did not answer LDAPS within ${STARTUP_TIMEOUT_MS / 1000} s (last probe: ${lastError})`);
}
