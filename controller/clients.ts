/**
 * Builds the clients a reconcile pass talks through from one validated Config: the directory
 * session (options built here once, for `plan`, `apply`, `run`) and the host drivers. Used by the
 * composition root (main.ts) and the CLI's one-shot commands alike.
 */
import type { DirectoryConfig, HostsConfig } from "./config/index.ts";
import { readSecretFile } from "./config/index.ts";
import type { LdapDirectory, LdapOperationKind, PdcEmulator, RootDse } from "./directory/index.ts";
import { childDn, connectDirectory, DirectoryError, directoryWriter, hasResultCode } from "./directory/index.ts";
import { createLocalDriver, createSshDriver } from "./hosts/index.ts";
import type { HostSettings } from "./reconcile/hosts.ts";
import type { LeaseStore } from "./reconcile/lease.ts";
import type { Logger } from "./reconcile/revision.ts";
import type { DirectorySession, OpenDirectory } from "./reconcile/pass.ts";

/** An LDAP connection as a reconcile pass uses it. */
export function directorySession(dir: LdapDirectory): DirectorySession {
  return {
    rootDse: () => dir.rootDse(),
    readGmsas: (baseDn, since) => dir.readGmsas(baseDn, since),
    readGroups: (baseDn, names) => dir.readGroups(baseDn, names),
    readComputers: (baseDn, names) => dir.readComputers(baseDn, names),
    changedSince: (baseDn, since) => dir.changedSince(baseDn, since),
    watermark: (dse) => dir.watermark(dse),
    readKdsRootKeys: (configDn) => dir.readKdsRootKeys(configDn),
    resolveSids: (baseDn, sids) => dir.resolveSids(baseDn, sids),
    readPrincipals: (baseDn, names) => dir.readPrincipals(baseDn, names),
    readChangeHistory: (dn, configDn) => dir.readChangeHistory(dn, configDn),
    writer: directoryWriter(dir),
    close: () => dir.close(),
  };
}

/**
 * The bind password for one connect: read again from its file each time (a rotated password is
 * picked up without a restart; a trailing newline is not part of it), else the configured value.
 * A file that cannot be read is a stalled configuration error naming the file, never its content.
 */
export function bindPassword(directory: DirectoryConfig): string {
  if (directory.bindPasswordFile === undefined) return directory.bindPassword;
  // The same checks as at start-up: a FIFO swapped in for the file would otherwise hold the
  // cycle until someone writes to it, and a file made world-readable is refused.
  const read = readSecretFile(directory.bindPasswordFile, { private: true });
  if (read.ok) return read.data.toString("utf8").replace(/\r?\n$/, "");
  throw new DirectoryError(`bind password file: ${read.message}`, {
    outcome: "stalled",
    reason: "InvalidConfiguration",
    operation: "bind",
  });
}

type OnOperation = (op: LdapOperationKind, seconds: number, ok: boolean) => void;

async function connect(
  directory: DirectoryConfig,
  url: string,
  onOperation: OnOperation | undefined,
  signal: AbortSignal | undefined,
  timeoutMs = directory.timeoutMs,
): Promise<LdapDirectory> {
  return connectDirectory(
    {
      url,
      bindDn: directory.bindDn,
      bindPassword: bindPassword(directory),
      ...(directory.caFile ? { caFile: directory.caFile } : {}),
      startTls: directory.startTls,
      allowInsecurePlaintext: directory.insecurePlaintext,
      timeoutMs,
      ...(onOperation ? { onOperation } : {}),
    },
    signal,
  );
}

/** The configured URL with its host replaced by `host` (same scheme, port and TLS settings). */
export function urlForHost(url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString().replace(/\/$/, "");
}

/**
 * Connects to the domain's PDC emulator: asks the configured DC which DC holds the role and, when
 * that is another one, connects to it by its dNSHostName with the configured port and TLS
 * settings. Everything that must be atomic across replicas (the lease, and the leader's writes)
 * goes there.
 */
export async function connectPdc(
  directory: DirectoryConfig,
  onOperation?: OnOperation,
  signal?: AbortSignal,
  timeoutMs?: number,
): Promise<{ dir: LdapDirectory; pdc: PdcEmulator; baseDn: string }> {
  const first = await connect(directory, directory.url, onOperation, signal, timeoutMs);
  try {
    const baseDn = directory.baseDn ?? (await first.rootDse()).defaultNamingContext;
    const pdc = await first.pdcEmulator(baseDn);
    if (pdc.connected) return { dir: first, pdc, baseDn };
    await first.close();
    return {
      dir: await connect(directory, urlForHost(directory.url, pdc.dnsHostName), onOperation, signal, timeoutMs),
      pdc,
      baseDn,
    };
  } catch (error) {
    await first.close();
    throw error;
  }
}

/**
 * Opens bound directory sessions for the configured DC; `onOperation` times each LDAP call.
 * With `viaPdc` (leader election), sessions go to the PDC emulator, where the lease is kept.
 */
export function directoryOpener(directory: DirectoryConfig, onOperation?: OnOperation, viaPdc = false): OpenDirectory {
  return async (signal) =>
    directorySession(
      viaPdc
        ? (await connectPdc(directory, onOperation, signal)).dir
        : await connect(directory, directory.url, onOperation, signal),
    );
}

/** Options of {@link keptDirectory}. */
export interface KeptDirectoryOptions {
  readonly onOperation?: OnOperation;
  /** Sessions go to the PDC emulator (leader election), and follow the role when it moves. */
  readonly viaPdc?: boolean;
  /** Says why a kept connection was given up and a new one opened. */
  readonly logger?: Logger;
  /** Idle time after which the connection is not reused; default {@link KEPT_IDLE_MS}. */
  readonly idleMs?: number;
}

/** A directory opener that keeps its connection between passes, and closes it on stop. */
export interface KeptDirectory {
  readonly open: OpenDirectory;
  /** Unbinds the kept connection; the next open connects anew. */
  close(): Promise<void>;
}

/**
 * How long a kept connection may sit idle before it is replaced rather than reused: below the
 * MaxConnIdleTime of AD's and Samba's default query policy (900 s), after which the DC drops it.
 */
export const KEPT_IDLE_MS = 600_000;

interface Held {
  readonly dir: LdapDirectory;
  readonly password: string;
  readonly dsServiceName: string;
  lastUsed: number;
  /** Why it must not be reused: an operation failed on the connection itself. */
  broken: string | undefined;
  busy: boolean;
}

/** True for a failure that says nothing good about the connection (not an LDAP result such as noSuchObject). */
function connectionSuspect(error: unknown): boolean {
  return !(error instanceof DirectoryError) || error.resultCode === undefined || error.outcome === "transient";
}

/**
 * Wraps every method of `target` (and of its writer) so that a failure marks the held
 * connection broken; the session's close releases it instead of closing it.
 */
function watched(session: DirectorySession, held: Held, firstRootDse: RootDse | undefined): DirectorySession {
  const watch = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      if (connectionSuspect(error)) held.broken ??= message(error);
      throw error;
    }
  };
  const guard = <T extends object>(target: T): T => {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(target)) {
      out[name] =
        typeof value === "function"
          ? (...args: unknown[]) => watch(() => (value as (...a: unknown[]) => Promise<unknown>)(...args))
          : value;
    }
    return out as T;
  };
  let probe = firstRootDse;
  // The last rootDSE the pass got: its highestCommittedUSN is the watermark of the observe that
  // follows (a search fewer per cycle), used once.
  let last: RootDse | undefined;
  const inner = guard({ ...session, writer: undefined });
  return {
    ...inner,
    // The rootDSE read to check the connection is the one the pass asks for first.
    rootDse: async () => {
      const dse = probe ?? (await watch(() => held.dir.rootDse()));
      probe = undefined;
      last = dse;
      return dse;
    },
    watermark: () => {
      const dse = last;
      last = undefined;
      return watch(() => held.dir.watermark(dse));
    },
    writer: guard(session.writer),
    close: () => {
      held.busy = false;
      held.lastUsed = performance.now();
      return Promise.resolve();
    },
  };
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Opens directory sessions over one bound connection kept between passes, instead of a connect,
 * TLS handshake and bind per cycle. The connection is replaced, and the log says why, when the
 * DC or the network closed it, when an operation failed on it with anything but an LDAP result
 * (a timeout, a reset), when the bind password file holds another password (read at each open,
 * as every connect did), after {@link KEPT_IDLE_MS} idle, when another DC answers on it, and,
 * with `viaPdc`, when the PDC emulator role moved to another DC (the leader writes only there).
 * A rootDSE read checks the connection at each open; the pass gets that answer as its own first read.
 */
export function keptDirectory(directory: DirectoryConfig, options: KeptDirectoryOptions = {}): KeptDirectory {
  const { onOperation, viaPdc = false, logger } = options;
  const idleMs = options.idleMs ?? KEPT_IDLE_MS;
  let held: Held | undefined;
  const drop = async (): Promise<void> => {
    const gone = held;
    held = undefined;
    await gone?.dir.close();
  };
  /** Why `h` must not be reused, or undefined when it may (with the rootDSE it answered). */
  const check = async (h: Held, password: string): Promise<{ why?: string; dse?: RootDse }> => {
    if (h.broken !== undefined) return { why: `an operation failed on it: ${h.broken}` };
    if (!h.dir.bound) return { why: "the connection was closed (by the domain controller or the network)" };
    if (password !== h.password) return { why: "the bind password changed" };
    if (performance.now() - h.lastUsed > idleMs) return { why: `idle for more than ${idleMs / 1000} s` };
    let dse: RootDse;
    try {
      dse = await h.dir.rootDse();
    } catch (error) {
      return { why: `the domain controller did not answer on it: ${message(error)}` };
    }
    if (dse.dsServiceName.toLowerCase() !== h.dsServiceName.toLowerCase())
      return { why: `another domain controller answers (${dse.dsServiceName})` };
    if (viaPdc) {
      const baseDn = directory.baseDn ?? dse.defaultNamingContext;
      const owner = (await h.dir.readText(baseDn, "fSMORoleOwner").catch(() => undefined))?.[0];
      if (owner?.toLowerCase() !== dse.dsServiceName.toLowerCase())
        return { why: `the PDC emulator role is no longer on this domain controller (${owner ?? "unreadable"})` };
    }
    return { dse };
  };
  const open: OpenDirectory = async (signal) => {
    const password = bindPassword(directory);
    // A second pass while one runs (none in the controller: its poller runs one at a time) gets
    // a connection of its own.
    if (held?.busy) return directoryOpener(directory, onOperation, viaPdc)(signal);
    let dse: RootDse | undefined;
    if (held) {
      const verdict = await check(held, password);
      if (verdict.why !== undefined) {
        logger?.info({ reason: verdict.why }, "directory: connecting to the domain controller again");
        await drop();
      } else dse = verdict.dse;
    }
    if (!held) {
      const dir = viaPdc
        ? (await connectPdc(directory, onOperation, signal)).dir
        : await connect(directory, directory.url, onOperation, signal);
      try {
        dse = await dir.rootDse();
      } catch (error) {
        await dir.close();
        throw error;
      }
      held = {
        dir,
        password,
        dsServiceName: dse.dsServiceName,
        lastUsed: performance.now(),
        broken: undefined,
        busy: false,
      };
    }
    held.busy = true;
    return watched(directorySession(held.dir), held, dse);
  };
  return { open, close: drop };
}

/** Where the lease lives unless configured: an object beside the gMSAs, in CN=Managed Service Accounts. */
export function defaultLeaseDn(baseDn: string): string {
  return childDn("CN", "gmsa-gitops-leader", `CN=Managed Service Accounts,${baseDn}`);
}

/**
 * The leader lease over LDAP on the PDC emulator: a `container` object whose one `description`
 * value is the lease. Operations time out within a third of the lease, so a hung DC cannot keep
 * a renew pending past the fencing deadline unnoticed.
 */
export function leaseOpener(
  directory: DirectoryConfig,
  leaseDn: string | undefined,
  durationMs: number,
  onOperation?: OnOperation,
): () => Promise<LeaseStore> {
  return async () => {
    const timeoutMs = Math.max(500, Math.min(directory.timeoutMs, durationMs / 3));
    const { dir, pdc, baseDn } = await connectPdc(directory, onOperation, undefined, timeoutMs);
    const dn = leaseDn ?? defaultLeaseDn(baseDn);
    return {
      server: pdc.dnsHostName,
      read: () => dir.readText(dn, "description"),
      create: async (value) => {
        try {
          await dir.add(dn, { objectClass: "container", description: value });
          return true;
        } catch (error) {
          if (hasResultCode(error, 68)) return false;
          throw error;
        }
      },
      swap: (oldValues, newValue) => dir.swapValues(dn, "description", oldValues, newValue),
      close: () => dir.close(),
    };
  };
}

/** Builds the ssh host driver and how targets are addressed (the computer's dNSHostName). */
export async function sshHostSettings(hosts: HostsConfig): Promise<HostSettings> {
  const driver = await createSshDriver({
    username: hosts.sshUser,
    privateKeyPath: hosts.sshKeyFile,
    knownHostsPath: hosts.knownHostsFile,
    ...(hosts.shell ? { shell: hosts.shell } : {}),
  });
  return {
    driver,
    domain: hosts.domain,
    concurrency: hosts.concurrency,
    target: (host, dnsHostName) => ({ host, address: dnsHostName ?? host, port: hosts.sshPort }),
  };
}

/**
 * The host agent's driver: the host script run by the local PowerShell, for the bindings of
 * this host only. `shell` overrides the PowerShell command line (split on spaces).
 */
export function localHostSettings(domain: string, shell: string | undefined): HostSettings {
  const command = shell?.trim().split(/\s+/);
  return {
    driver: createLocalDriver(command ? { command } : {}),
    domain,
    concurrency: 1,
    target: (host) => ({ host, address: "localhost" }),
  };
}
