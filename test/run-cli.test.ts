// Runs the real `gmsa-gitops run` process and checks how it starts and fails to start.
import { spawn } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(ROOT, "bin", "gmsa-gitops.mjs");

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs the bin until it exits (or `timeoutMs` passes, then kills it and reports `code: "timeout"`). */
function runCli(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | "timeout"; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? "timeout", stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** Flags for a DC nobody answers at, with `password` and `ownership.key` from `dir`. */
const unreachableDirectory = (dir: string): string[] => [
  "--ldap-url",
  "ldaps://127.0.0.1:1",
  "--bind-dn",
  "CN=svc,DC=example,DC=test",
  "--bind-password-file",
  join(dir, "password"),
  "--ownership-key-file",
  join(dir, "ownership.key"),
];

describe("gmsa-gitops run start-up", () => {
  it("exits 1 with one clear line when the --listen port is taken, leaving nothing running", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gmsa-run-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, "password"), "not-used\n", { mode: 0o600 });
    await writeFile(join(dir, "ownership.key"), `${"k".repeat(48)}\n`, { mode: 0o600 });
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as AddressInfo).port;

    const result = await runCli(
      [
        "run",
        "--repo",
        dir,
        "--listen",
        `127.0.0.1:${port}`,
        ...unreachableDirectory(dir),
        "--log-format",
        "json",
        "--interval",
        "1",
      ],
      30_000,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `gmsa-gitops: cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE); stop the other process or choose another --listen\n`,
    );
    // Nothing reconciled: the loop never started, so nothing tried to reach the directory.
    expect(result.stdout).not.toMatch(/reconcile|sync|ldap/i);
  }, 60_000);
});

describe("gmsa-gitops run --repo on a folder it cannot fully read", () => {
  it("rejects the revision with the folder at PATH:1:1 and keeps serving, as an unprivileged user whose watcher gets EACCES", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gmsa-run-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await chmod(dir, 0o755);
    await mkdir(join(dir, "repo/apps/locked"), { recursive: true });
    await writeFile(
      join(dir, "repo/apps/group.yaml"),
      "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: web\nspec:\n  accountName: web\n",
    );
    await chmod(join(dir, "repo/apps/locked"), 0o000);
    // Owned by the unprivileged user that runs the controller, private to it (0600), as the
    // controller requires of a bind password and an ownership key.
    await writeFile(join(dir, "password"), "not-used\n", { mode: 0o600 });
    await writeFile(join(dir, "ownership.key"), `${"k".repeat(48)}\n`, { mode: 0o600 });
    await chown(join(dir, "password"), 65534, 65534);
    await chown(join(dir, "ownership.key"), 65534, 65534);

    // As nobody (root reads a mode-000 folder anyway), with the process left running.
    const child = spawn(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        BIN,
        "run",
        "--repo",
        join(dir, "repo"),
        "--listen",
        "127.0.0.1:0",
        ...unreachableDirectory(dir),
        "--log-format",
        "json",
        "--ldap-timeout",
        "1",
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    });

    const deadline = Date.now() + 30_000;
    let status: { controller?: { source?: { rejected?: { errors?: Array<{ file: string; line: number }> } | null } } } =
      {};
    while (Date.now() < deadline) {
      const port = /"port":(\d+)/.exec(stdout)?.[1];
      if (port !== undefined) {
        status = (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as typeof status;
        if (status.controller?.source?.rejected) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(status.controller?.source?.rejected?.errors?.map((e) => `${e.file}:${e.line}`)).toEqual(["apps/locked:1"]);
    // Still running (no uncaught watcher error), and it stops cleanly on SIGTERM.
    expect(child.exitCode).toBeNull();
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/EACCES|Error:/);
  }, 60_000);
});

describe("secret files that are not regular files", () => {
  // A FIFO blocks the read until someone writes to it (`--ownership-key-file /dev/stdin` in a
  // service does the same); a device such as /dev/urandom never ends. Either is refused at once.
  it.each([
    ["ownership-key-file", "ownership.key"],
    ["bind-password-file", "password"],
  ])(
    "plan refuses a FIFO as --%s with one line, without waiting for a writer",
    async (flag, name) => {
      const dir = await mkdtemp(join(tmpdir(), "gmsa-secret-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      await writeFile(join(dir, "password"), "not-used\n", { mode: 0o600 });
      await writeFile(join(dir, "ownership.key"), `${"k".repeat(48)}\n`, { mode: 0o600 });
      await rm(join(dir, name));
      await new Promise<void>((resolve, reject) =>
        spawn("mkfifo", [join(dir, name)]).on("close", (code) =>
          code === 0 ? resolve() : reject(new Error("mkfifo")),
        ),
      );
      const result = await runCli(["plan", "--repo", join(ROOT, "examples"), ...unreachableDirectory(dir)], 15_000);
      expect(result.code).not.toBe("timeout");
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`--${flag}: ${join(dir, name)} is not a regular file (a FIFO)`);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    },
    30_000,
  );
});
