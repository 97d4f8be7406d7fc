import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bindPassword } from "./clients.ts";
import type { DirectoryConfig } from "./config/index.ts";

const dir = mkdtempSync(join(tmpdir(), "gmsa-clients-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (bindPasswordFile: string): DirectoryConfig => ({
  url: "ldaps://dc1",
  bindDn: "CN=svc,DC=example,DC=test",
  bindPassword: "from start-up",
  bindPasswordFile,
  caFile: undefined,
  startTls: false,
  insecurePlaintext: false,
  baseDn: undefined,
  timeoutMs: 1_000,
});

describe("bindPassword, read again at each connect", () => {
  it("reads a rotated password from the file, without its trailing newline", () => {
    const file = join(dir, "pw");
    writeFileSync(file, "Rotated-Pw-1\n", { mode: 0o600 });
    expect(bindPassword(config(file))).toBe("Rotated-Pw-1");
  });

  it("refuses a FIFO swapped in for the file at once, instead of waiting for a writer", () => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    const read = (): string => bindPassword(config(fifo));
    expect(read).toThrow(/bind password file: .*fifo is not a regular file/);
    expect(read).toThrow(expect.objectContaining({ outcome: "stalled", reason: "InvalidConfiguration" }));
  });

  it("refuses the file once other users can read it, naming no secret", () => {
    const file = join(dir, "pw-open");
    writeFileSync(file, "Secret-Pw-2\n");
    chmodSync(file, 0o644);
    const read = (): string => bindPassword(config(file));
    expect(read).toThrow(/pw-open is open to other users \(mode 0644\)/);
    expect(read).not.toThrow(/Secret-Pw-2/);
  });
});
