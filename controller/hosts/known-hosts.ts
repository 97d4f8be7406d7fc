/**
 * Host key pinning against an OpenSSH known_hosts file: plain and hashed (`|1|salt|hash`) host
 * names, `[host]:port` for ports other than 22, `*`/`?` wildcards, `!` negation and
 * `@revoked` lines. `@cert-authority` lines are skipped (no host certificates here).
 *
 * There is no trust on first use: a host without an entry is refused, as is a key that differs
 * from every entry for the host.
 */
import { createHash, createHmac } from "node:crypto";

type HostPattern =
  | { readonly type: "plain"; readonly patterns: readonly string[] }
  | {
      readonly type: "hashed";
      readonly salt: Buffer;
      readonly hash: Buffer;
    };

/** One usable line of a known_hosts file. */
export interface KnownHost {
  readonly revoked: boolean;
  readonly hosts: HostPattern;
  /** Key type as written (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...). */
  readonly keyType: string;
  /** The public key blob (the base64 field, decoded). */
  readonly key: Buffer;
  /** 1-based line number, for messages. */
  readonly line: number;
}

/** Parses known_hosts text; malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHost[] {
  const out: KnownHost[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith("@")) {
      const marker = fields.shift();
      if (marker === "@revoked") revoked = true;
      else return; // @cert-authority: not supported, never matches
    }
    const [hostField, keyType, keyB64] = fields;
    if (hostField === undefined || keyType === undefined || keyB64 === undefined) return;
    const key = Buffer.from(keyB64, "base64");
    if (key.length === 0) return;
    let hosts: HostPattern;
    if (hostField.startsWith("|1|")) {
      const [, , salt, hash] = hostField.split("|");
      if (salt === undefined || hash === undefined) return;
      hosts = { type: "hashed", salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") };
    } else {
      hosts = { type: "plain", patterns: hostField.split(",") };
    }
    out.push({ revoked, hosts, keyType, key, line: index + 1 });
  });
  return out;
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i").test(name);
}

function matchesHost(entry: KnownHost, name: string): boolean {
  if (entry.hosts.type === "hashed") {
    const h = createHmac("sha1", entry.hosts.salt).update(name).digest();
    return h.length === entry.hosts.hash.length && h.equals(entry.hosts.hash);
  }
  let matched = false;
  for (const p of entry.hosts.patterns) {
    if (p.startsWith("!")) {
      if (wildcardMatch(p.slice(1), name)) return false;
    } else if (wildcardMatch(p, name)) matched = true;
  }
  return matched;
}

/** SHA256 fingerprint as OpenSSH prints it (`SHA256:...`); public, safe to log. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** The outcome of checking a presented host key. */
export type HostKeyCheck =
  | { readonly ok: true; readonly line: number }
  | { readonly ok: false; readonly reason: "unknown" | "mismatch" | "revoked"; readonly fingerprint: string };

/** Checks the key a host presented against the entries for `name` (see knownHostName). */
export function checkHostKey(entries: readonly KnownHost[], name: string, key: Buffer): HostKeyCheck {
  const mine = entries.filter((e) => matchesHost(e, name));
  if (mine.some((e) => e.revoked && e.key.equals(key)))
    return { ok: false, reason: "revoked", fingerprint: fingerprint(key) };
  const hit = mine.find((e) => !e.revoked && e.key.equals(key));
  if (hit !== undefined) return { ok: true, line: hit.line };
  const pinned = mine.some((e) => !e.revoked);
  return { ok: false, reason: pinned ? "mismatch" : "unknown", fingerprint: fingerprint(key) };
}

/**
 * The host key algorithms to offer for `name`, so the server presents a key type we have
 * pinned (as OpenSSH orders them); undefined when nothing is pinned.
 */
export function pinnedAlgorithms(entries: readonly KnownHost[], name: string): string[] | undefined {
  const types = new Set(entries.filter((e) => !e.revoked && matchesHost(e, name)).map((e) => e.keyType));
  if (types.size === 0) return undefined;
  const algos: string[] = [];
  for (const t of types) {
    if (t === "ssh-rsa") algos.push("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa");
    else algos.push(t);
  }
  return algos;
}
