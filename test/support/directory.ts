// The directory settings for a throwaway DC, as `loadConfig` would build them from its flags,
// and a connection to it as its administrator.
import type { DirectoryConfig } from "../../controller/config/index.ts";
import { connectDirectory } from "../../controller/directory/index.ts";
import type { LdapDirectory } from "../../controller/directory/index.ts";
import type { Dc } from "../harness/samba.ts";

/** Settings to reach `dc` as its administrator, at `url` (default: the DC's own forwarder). */
export function directoryConfig(dc: Dc, url = dc.url): DirectoryConfig {
  return {
    url,
    bindDn: dc.adminDn,
    bindPassword: dc.adminPassword,
    bindPasswordFile: undefined,
    caFile: dc.caFile,
    startTls: false,
    insecurePlaintext: false,
    baseDn: undefined,
    timeoutMs: 10_000,
  };
}

/** The plain (not base64) values of one attribute in unwrapped LDIF, as ldapsearch prints it. */
export function attr(ldif: string, name: string): string[] {
  return ldif
    .split("\n")
    .map((l) => /^([^:]+): (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[1]!.toLowerCase() === name.toLowerCase())
    .map((m) => m[2]!);
}

/** A bound connection to `dc` as its administrator, TLS verified against the DC's CA. */
export function adminConnection(dc: Dc): Promise<LdapDirectory> {
  return connectDirectory({ url: dc.url, bindDn: dc.adminDn, bindPassword: dc.adminPassword, caFile: dc.caFile });
}
