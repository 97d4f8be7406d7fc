import { createHmac, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkHostKey, fingerprint, knownHostName, parseKnownHosts, pinnedAlgorithms } from "./known-hosts.ts";

/** An ssh-ed25519 public key blob (string "ssh-ed25519", string key). */
function ed25519Blob(): Buffer {
  const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from("ssh-ed25519")), str(raw)]);
}

const keyA = ed25519Blob();
const keyB = ed25519Blob();
const line = (hosts: string, key: Buffer, type = "ssh-ed25519"): string => `${hosts} ${type} ${key.toString("base64")}`;

describe("known_hosts pinning", () => {
  it("names non-22 ports in brackets as OpenSSH does", () => {
    expect(knownHostName("server1.company.local", 22)).toBe("server1.company.local");
    expect(knownHostName("10.0.0.5", 2222)).toBe("[10.0.0.5]:2222");
  });

  it("accepts the pinned key, refuses another key as a mismatch and an unlisted host as unknown", () => {
    const entries = parseKnownHosts(`# comment\n\n${line("server1.company.local,10.0.0.5", keyA)} admin@x\n`);
    expect(checkHostKey(entries, "10.0.0.5", keyA)).toEqual({ ok: true, line: 3 });
    expect(checkHostKey(entries, "SERVER1.company.local", keyA).ok).toBe(true);
    expect(checkHostKey(entries, "server1.company.local", keyB)).toEqual({
      ok: false,
      reason: "mismatch",
      fingerprint: fingerprint(keyB),
    });
    expect(checkHostKey(entries, "server2.company.local", keyA)).toMatchObject({ ok: false, reason: "unknown" });
  });

  it("matches hashed host names", () => {
    const salt = Buffer.from("0123456789abcdef0123");
    const hash = createHmac("sha1", salt).update("[10.0.0.5]:2222").digest();
    const entries = parseKnownHosts(line(`|1|${salt.toString("base64")}|${hash.toString("base64")}`, keyA));
    expect(checkHostKey(entries, "[10.0.0.5]:2222", keyA).ok).toBe(true);
    expect(checkHostKey(entries, "10.0.0.5", keyA)).toMatchObject({ ok: false, reason: "unknown" });
  });

  it("honours wildcards and negations, and refuses a revoked key even when also pinned", () => {
    const entries = parseKnownHosts(
      [
        line("*.company.local,!bad.company.local", keyA),
        `@revoked ${line("*", keyB)}`,
        line("old.company.local", keyB),
      ].join("\n"),
    );
    expect(checkHostKey(entries, "web7.company.local", keyA).ok).toBe(true);
    expect(checkHostKey(entries, "bad.company.local", keyA)).toMatchObject({ ok: false, reason: "unknown" });
    expect(checkHostKey(entries, "old.company.local", keyB)).toMatchObject({ ok: false, reason: "revoked" });
  });

  it("offers only the pinned key types, RSA with its SHA-2 signatures", () => {
    const entries = parseKnownHosts([line("h", keyA), line("h", keyB, "ssh-rsa")].join("\n"));
    expect(pinnedAlgorithms(entries, "h")).toEqual(["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    expect(pinnedAlgorithms(entries, "other")).toBeUndefined();
  });
});
