// ldap-utils (ldapsearch, ldapadd, ldapmodify, ldapdelete) as timed child processes: the baselines the
// controller is measured against. Unlike Dc.ldap, output can go straight to /dev/null, so the
// baseline pays for what the tool does, not for this process buffering megabytes of LDIF.
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Dc } from "../../test/harness/samba.ts";

/** Where a tool's standard output goes: discarded (/dev/null) or returned. */
export type Output = "discard" | "capture";

/** The tool's exit, captured output (empty when discarded) and wall-clock time from spawn to exit. */
export interface ToolRun {
  readonly ms: number;
  readonly stdout: string;
}

/**
 * Runs an ldap-utils tool against the DC as its administrator, TLS verified against the DC's
 * CA only (the same environment as Dc.ldap), the password read from the DC's 0600 file (-y).
 * Rejects with the tool's standard error when it exits non-zero.
 */
export function runLdapTool(
  dc: Dc,
  tool: "ldapsearch" | "ldapadd" | "ldapmodify" | "ldapdelete",
  args: readonly string[],
  output: Output,
): Promise<ToolRun> {
  const base = ["-H", dc.url, "-x", "-D", dc.adminDn, "-y", dc.passwordFile];
  if (tool === "ldapsearch") base.push("-o", "ldif-wrap=no");
  const env = {
    PATH: process.env["PATH"],
    HOME: dc.dir,
    LDAPCONF: join(dc.dir, "ldap.conf"),
    LDAPTLS_CACERT: dc.caFile,
    LDAPTLS_REQCERT: "demand",
  };
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(tool, [...base, ...args], {
      env,
      cwd: dc.dir,
      stdio: ["ignore", output === "discard" ? "ignore" : "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, stdout: Buffer.concat(out).toString("utf8") });
      else
        reject(
          new Error(`${tool} failed (${code ?? signal}): ${Buffer.concat(err).toString("utf8").trim().slice(0, 2000)}`),
        );
    });
  });
}

/** Records of unwrapped LDIF (ldapsearch -o ldif-wrap=no) as attribute → values, comments and result lines dropped. */
export function parseLdif(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const block of text.split(/\n\n+/)) {
    let dn: string | undefined;
    const attrs = new Map<string, string[]>();
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^([^:]+):(:?) ?(.*)$/.exec(line);
      if (!m) continue;
      const [, name, b64, raw] = m as unknown as [string, string, string, string];
      const value = b64 === ":" ? Buffer.from(raw, "base64").toString("hex") : raw;
      if (name.toLowerCase() === "dn") dn = b64 === ":" ? Buffer.from(raw, "base64").toString("utf8") : raw;
      else attrs.set(name.toLowerCase(), [...(attrs.get(name.toLowerCase()) ?? []), value]);
    }
    if (dn !== undefined) out.set(dn.toLowerCase(), attrs);
  }
  return out;
}
