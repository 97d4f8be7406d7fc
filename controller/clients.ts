/**
 * Builds the clients a reconcile pass talks through from one validated Config: the directory
 * session (options built here once, for `plan`, `apply`, `run`) and the host drivers. Used by the
 * composition root (main.ts) and the CLI's one-shot commands alike.
 */
import { readFile } from "node:fs/promises";
import type { DirectoryConfig, HostsConfig } from "./config/index.ts";
import type { LdapDirectory, LdapOperationKind } from "./directory/index.ts";
import { connectDirectory, DirectoryError, directoryWriter } from "./directory/index.ts";
import { createLocalDriver, createSshDriver } from "./hosts/index.ts";
import type { HostSettings } from "./reconcile/hosts.ts";
import type { DirectorySession, OpenDirectory } from "./reconcile/pass.ts";

/** An LDAP connection as a reconcile pass uses it. */
export function directorySession(dir: LdapDirectory): DirectorySession {
  return {
    rootDse: () => dir.rootDse(),
    readGmsas: (baseDn) => dir.readGmsas(baseDn),
    readGroups: (baseDn, names) => dir.readGroups(baseDn, names),
    readComputers: (baseDn, names) => dir.readComputers(baseDn, names),
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
export async function bindPassword(directory: DirectoryConfig): Promise<string> {
  if (directory.bindPasswordFile === undefined) return directory.bindPassword;
  try {
    return (await readFile(directory.bindPasswordFile, "utf8")).replace(/\r?\n$/, "");
  } catch (error) {
    throw new DirectoryError(
      `cannot read the bind password file ${directory.bindPasswordFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      { outcome: "stalled", reason: "InvalidConfiguration", operation: "bind" },
    );
  }
}

/** Opens bound directory sessions for the configured DC; `onOperation` times each LDAP call. */
export function directoryOpener(
  directory: DirectoryConfig,
  onOperation?: (op: LdapOperationKind, seconds: number, ok: boolean) => void,
): OpenDirectory {
  return async (signal) =>
    directorySession(
      await connectDirectory(
        {
          url: directory.url,
          bindDn: directory.bindDn,
          bindPassword: await bindPassword(directory),
          ...(directory.caFile ? { caFile: directory.caFile } : {}),
          startTls: directory.startTls,
          allowInsecurePlaintext: directory.insecurePlaintext,
          timeoutMs: directory.timeoutMs,
          ...(onOperation ? { onOperation } : {}),
        },
        signal,
      ),
    );
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
