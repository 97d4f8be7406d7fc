// What one quiet cycle costs in CPU, taken apart, in this process: the controller as `run` builds
// it (Git source, one kept LDAP connection) against a throwaway Samba DC holding examples/,
// reconciled by hand with nothing to change. Prints the CPU (process.cpuUsage: every thread of
// this process, V8's garbage collector included) per call of: a whole quiet cycle; the Git poll
// alone (an unchanged branch: one `git ls-remote`); one bare spawn of `git --version`; the
// incremental LDAP read of a quiet cycle over the kept connection; and the same read over a new
// connection each time (what a cycle did before the connection was kept); and the process's
// CPU over 30 s with no cycle at all.
//
// With --profile FILE, the whole quiet cycles' calls (and only them) are profiled with V8's CPU
// profiler and the profile written to FILE (open it in Chrome DevTools' Performance panel).
//
// Usage: node bench/quiet-cycle.ts [--cycles 40] [--idle-seconds 30] (0 leaves the idle row out) [--profile FILE]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { directoryOpener, keptDirectory } from "../controller/clients.ts";
import { loadManifests } from "../controller/manifests/index.ts";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { IncrementalObserver, observerFor } from "../controller/reconcile/incremental.ts";
import type { OpenDirectory } from "../controller/reconcile/pass.ts";
import { createGitSource } from "../controller/source/index.ts";
import { createGitRepo } from "../test/harness/git-repo.ts";
import { startDc } from "../test/harness/samba.ts";
import { directoryConfig } from "../test/support/directory.ts";
import { runInProcess } from "../test/support/in-process.ts";

const { values: flags } = parseArgs({
  options: {
    cycles: { type: "string", default: "40" },
    "idle-seconds": { type: "string", default: "30" },
    profile: { type: "string" },
  },
});
const N = Number(flags.cycles);
const IDLE_MS = Number(flags["idle-seconds"]) * 1000;
const examples = join(import.meta.dirname, "..", "examples");
const run = promisify(execFile);

/** Mean CPU milliseconds per call of `f`, after one call to warm it. */
async function cpuPer(f: () => Promise<unknown>): Promise<number> {
  await f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / N;
}

const dc = await startDc();
const repo = createGitRepo({ from: examples, message: "examples" });
const work = mkdtempSync(join(tmpdir(), "gmsa-quiet-"));
try {
  for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  const { running } = await runInProcess(
    dc,
    { "git-url": repo.url, "work-dir": join(work, "clone") },
    { interval: "1h" },
  );
  // The first cycles create the examples and make the picture settle; later ones are quiet.
  for (let i = 0; i < 3; i++) await running.controller.reconcile();
  const rows: [string, number][] = [];
  const inspector = new Session();
  if (flags.profile !== undefined) {
    inspector.connect();
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.start");
  }
  rows.push(["whole quiet cycle (controller.reconcile)", await cpuPer(() => running.controller.reconcile())]);
  if (flags.profile !== undefined) {
    const { profile } = await inspector.post("Profiler.stop");
    writeFileSync(flags.profile, JSON.stringify(profile));
    inspector.disconnect();
  }
  // No cycle at all (interval 1h): what the process costs per 10 s while it waits.
  if (IDLE_MS > 0) {
    const idle0 = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const idle = process.cpuUsage(idle0);
    rows.push(["idle controller, no cycle, per 10 s", ((idle.user + idle.system) / 1000) * (10_000 / IDLE_MS)]);
  }
  await running.stop();

  const git = createGitSource({ url: repo.url, workDir: join(work, "clone-alone") });
  rows.push(["Git poll of an unchanged branch (source.sync)", await cpuPer(() => git.sync())]);
  rows.push(["one spawn of `git --version`", await cpuPer(() => run("git", ["--version"]))]);

  const loaded = await loadManifests(examples);
  if (!loaded.ok) throw new Error("examples do not load");
  const desired = loaded.desired;
  const metrics = createMetricsRecorder();
  const quietRead = (open: OpenDirectory) => {
    const observe = observerFor(new IncrementalObserver(3_600_000), metrics, { info() {}, warn() {}, error() {} });
    return async (): Promise<void> => {
      const session = await open();
      try {
        const dse = await session.rootDse();
        await observe(desired, session, { baseDn: dse.defaultNamingContext, configDn: dse.configurationNamingContext });
      } finally {
        await session.close();
      }
    };
  };
  const kept = keptDirectory(directoryConfig(dc));
  rows.push(["incremental read, kept connection", await cpuPer(quietRead(kept.open))]);
  await kept.close();
  rows.push([
    "incremental read, a new connection each time",
    await cpuPer(quietRead(directoryOpener(directoryConfig(dc)))),
  ]);

  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(`quiet cycle, in process, examples/ against Samba, mean of ${N} calls:\n`);
  process.stdout.write(`| ${"what".padEnd(width)} | CPU ms per call |\n| ${"-".repeat(width)} | --------------- |\n`);
  for (const [what, ms] of rows) process.stdout.write(`| ${what.padEnd(width)} | ${ms.toFixed(2)} |\n`);
} finally {
  repo.remove();
  await dc.stop();
  rmSync(work, { recursive: true, force: true });
}
