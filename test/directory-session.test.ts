// The controller keeps one bound LDAP connection between cycles (docs/decisions/incremental-observe.md).
// Connections are counted on the DC's side, with `ss` in the DC's network namespace, not through
// the code under test; one is killed there the same way (`ss -K`).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningController } from "../controller/main.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { keptDirectory } from "../controller/clients.ts";
import { directoryConfig } from "./support/directory.ts";
import { runInProcess } from "./support/in-process.ts";

const run = promisify(execFile);
const examples = join(import.meta.dirname, "..", "examples");

describe("one LDAP session kept between cycles, against Samba", () => {
  let dc: Dc;
  let dir: string;
  let passwordFile: string;
  let running: RunningController | undefined;
  let logs: () => { msg: string; reason?: string }[];

  /** The DC's side of every established LDAPS connection: the peer's address and port. */
  const connections = async (): Promise<string[]> => {
    const nsPid = readFileSync(join(dc.dir, "ns.pid"), "utf8").trim();
    const { stdout } = await run("nsenter", [
      "--target",
      nsPid,
      "--net",
      "ss",
      "-Htn",
      "state",
      "established",
      "( sport = :636 )",
    ]);
    return stdout
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => l.trim().split(/\s+/).at(-1)!);
  };

  /** Kills every established LDAPS connection on the DC's side (the socket is destroyed, the peer reset). */
  const killConnections = async (): Promise<void> => {
    const nsPid = readFileSync(join(dc.dir, "ns.pid"), "utf8").trim();
    await run("nsenter", ["--target", nsPid, "--net", "ss", "-K", "-tn", "state", "established", "( sport = :636 )"]);
  };

  /** Every cycle's start time so far, and its result. */
  const lastCycle = (): { startedAt: string; result: string } | null =>
    running!.controller.status().controller.lastReconcile;

  /**
   * Waits for `n` more cycles, sampling the DC's connections every 50 ms meanwhile. Returns the
   * distinct connections seen and the results of the cycles.
   */
  const cycles = async (n: number): Promise<{ seen: Set<string>; results: string[] }> => {
    const seen = new Set<string>();
    const results: string[] = [];
    let last = lastCycle()?.startedAt;
    const deadline = Date.now() + 60_000;
    while (results.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${results.length} of ${n} cycles within 60 s`);
      for (const c of await connections()) seen.add(c);
      const now = lastCycle();
      if (now && now.startedAt !== last) {
        last = now.startedAt;
        results.push(now.result);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { seen, results };
  };

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
    dir = mkdtempSync(join(tmpdir(), "gmsa-session-"));
    passwordFile = join(dir, "bind.password");
    writeFileSync(passwordFile, dc.adminPassword, { mode: 0o600 });
    let text: () => string;
    ({ running, text } = await runInProcess(dc, examples, { passwordFile }));
    logs = () =>
      text()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string; reason?: string });
    // The first cycle creates the examples' objects; the tests start from a settled domain.
    await cycles(2);
  }, 180_000);

  afterAll(async () => {
    await running?.stop();
    await dc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const reconnects = (): string[] =>
    logs().flatMap((l) => (l.msg === "directory: connecting to the domain controller again" ? [l.reason ?? ""] : []));

  it("five cycles in a row use one TCP connection, still open between cycles", async () => {
    const { seen, results } = await cycles(5);
    expect(results.every((r) => r === "success")).toBe(true);
    expect([...seen]).toHaveLength(1);
    // Between cycles too: the DC still holds the same connection.
    expect(await connections()).toEqual([...seen]);
    expect(reconnects()).toEqual([]);
  }, 90_000);

  it("a connection the DC drops is reopened by the next cycle, which says why", async () => {
    const [before] = await connections();
    expect(before).toBeDefined();
    await killConnections();
    const { results } = await cycles(3);
    expect(results.every((r) => r === "success")).toBe(true);
    const after = await connections();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
    expect(reconnects()).toEqual([expect.stringContaining("closed")]);
  }, 90_000);

  it("a new bind password in the file makes the next cycle bind anew with it, on a new connection", async () => {
    const [before] = await connections();
    const newPassword = `Adm1n-New-${Date.now()}`;
    const unicodePwd = Buffer.from(`"${newPassword}"`, "utf16le").toString("base64");
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dc.adminDn}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: ${unicodePwd}\n-\n`,
    });
    // The connection bound with the old password still works (AD does not end sessions on a
    // password change): only the file tells the controller to bind again.
    writeFileSync(passwordFile, `${newPassword}\n`, { mode: 0o600 });
    const { results } = await cycles(3);
    expect(results.every((r) => r === "success")).toBe(true);
    const after = await connections();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
    expect(reconnects().at(-1)).toContain("bind password changed");
  }, 90_000);

  it("a connection idle longer than the limit is replaced at the next open, which says why", async () => {
    const reasons: string[] = [];
    const logger = { info: (o: object) => reasons.push((o as { reason: string }).reason), warn() {}, error() {} };
    const kept = keptDirectory({ ...directoryConfig(dc), bindPasswordFile: passwordFile }, { logger, idleMs: 200 });
    const pass = async (): Promise<void> => {
      const session = await kept.open();
      await session.rootDse();
      await session.close();
    };
    try {
      const before = new Set(await connections());
      await pass();
      await pass();
      const first = (await connections()).filter((c) => !before.has(c));
      expect(first).toHaveLength(1);
      expect(reasons).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await pass();
      const second = (await connections()).filter((c) => !before.has(c));
      expect(second).toHaveLength(1);
      expect(second[0]).not.toBe(first[0]);
      expect(reasons).toEqual([expect.stringContaining("idle")]);
    } finally {
      await kept.close();
    }
  }, 60_000);
});
