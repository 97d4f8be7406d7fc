/**
 * Builds the clients a reconcile pass talks through from one validated Config: the directory
 * session (options built here once, for `plan`, `apply`, `run`) and the host drivers. Used by the
 * composition root (main.ts) and the CLI's one-shot commands alike.
 */
import type { DirectoryConfig, HostsConfig } from "./config/index.ts";
import { readSecretFile } from "./config/index.ts";
import type { LdapDirectory, LdapOperationKind, PdcEmulator } from "./directory/index.ts";
import { childDn, connectDirectory, DirectoryError, directoryWriter, hasResultCode } from "./directory/index.ts";
import { createLocalDriver, createSshDriver } from "./hosts/index.ts";
import type { HostSettings } from "./reconcile/hosts.ts";
import type { LeaseStore } from "./reconcile/lease.ts";
import type { DirectorySession, OpenDirectory } from "./reconcile/pass.ts";

/** An LDAP connection as a reconcile pass uses it. */
export function directorySession(dir: LdapDirectory): DirectorySession {
  return {
    rootDse: () => dir.rootDse(),
    readGmsas: (baseDn, since) => dir.readGmsas(baseDn, since),
    readGroups: (baseDn, names) => dir.readGroups(baseDn, names),
    readComputers: (baseDn, names) => dir.readComputers(baseDn, names),
    changedGroups: (baseDn, since) => dir.changedGroups(baseDn, since),
    changedComputers: (baseDn, since) => dir.changedComputers(baseDn, since),
    watermark: () => dir.watermark(),
    deletedSince: (baseDn, since) => dir.deletedSince(baseDn, since),
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
