// In-process breakdown of commit → applied at benchmark scale (default 4,500 gMSAs + 500 groups
// = 5,000 resources): the controller loop against an in-memory directory that keeps USNs as a DC
// does (test/support/reconcile.ts), so every cost but the network's is the controller's own.
//
//   1. A generated repository (bench/lib/repo.ts) is created in the fake directory by the
//      controller's first cycles; a quiet cycle follows.
//   2. --runs times: a commit changing one gMSA's description, then one reconcile (the loop's
//      own cycle, timed whole and with the time spent inside the fake directory taken out);
//      then a hand edit of one object in the directory, then one reconcile (drift corrected).
//   3. The Git source's sync of such a commit (a real repository served by file://, a bare clone
//      of it kept between syncs as the controller keeps it): fetch and read the changed blob; then
//      the same after a webhook said the branch moved (no ls-remote first).
//   4. The steps of the commit's cycle, one by one, on the same inputs: load the revision
//      (ParseCache: one file parsed; lint and DesiredState building across every resource),
//      observe (incremental, one object changed), plan (diff + policy), gate, publish.
//
//   With --quiet N, N more quiet cycles (median); with --profile FILE, those N cycles (and only
//   them) are profiled with V8's CPU profiler, written to FILE.
//
// Usage: node bench/breakdown.ts [--gmsas 4500] [--groups 500] [--computers 200] [--runs 5] [--quiet 0] [--profile FILE]
// Writes only to a temp folder. Prints medians in milliseconds.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { ParseCache, parseManifests } from "../controller/manifests/index.ts";
import type { DesiredState } from "../controller/manifests/index.ts";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { createGitSource } from "../controller/source/index.ts";
import { createGitRepo } from "../test/harness/git-repo.ts";
import { IncrementalObserver } from "../controller/reconcile/incremental.ts";
import type { ChangeReader } from "../controller/reconcile/incremental.ts";
import { Controller } from "../controller/reconcile/loop.ts";
import type { Logger } from "../controller/reconcile/loop.ts";
import type { DirectorySession, OpenDirectory } from "../controller/reconcile/pass.ts";
import { DiffMemo } from "../controller/reconcile/diff/index.ts";
import { planDirectory } from "../controller/reconcile/plan.ts";
import type { Policy } from "../controller/reconcile/plan.ts";
import { CyclePublisher } from "../controller/reconcile/publish.ts";
import type { PassResult } from "../controller/reconcile/pass.ts";
import { StatusStore } from "../controller/reconcile/status.ts";
import type { Snapshot } from "../controller/source/index.ts";
import { computer, emptyDirectory, fakeDirectory, OWNER, withUsns } from "../test/support/reconcile.ts";
import { computerName, shapeFromFlags, shapeOptions, writeRepo } from "./lib/repo.ts";
import { median } from "./lib/measure.ts";
import { scrapeText } from "../test/support/metrics.ts";

const { values: flags } = parseArgs({
  options: {
    ...shapeOptions({ gmsas: 4500, groups: 500, computers: 200 }),
    runs: { type: "string", default: "5" },
    quiet: { type: "string", default: "0" },
    profile: { type: "string" },
  },
});
const SHAPE = shapeFromFlags(flags);
const RUNS = Number(flags.runs);
const PREFIX = "bsv";
const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 10, adopt: false, owner: OWNER };

/** Every file under `dir`, as a snapshot lists them. */
function readTree(dir: string): { path: string; content: Uint8Array }[] {
  const out: { path: string; content: Uint8Array }[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push({ path: relative(dir, full), content: readFileSync(full) });
    }
  };
  walk(dir);
  return out;
}

const ms = (t0: number): number => performance.now() - t0;
const f = (n: number): string => n.toFixed(1).padStart(8);

const tmp = mkdtempSync(join(tmpdir(), "gmsa-breakdown-"));
try {
  writeRepo(tmp, SHAPE, [{ prefix: PREFIX, count: SHAPE.gmsas }], "company.local");
  let files = readTree(tmp);
  let revision = 1;
  const source = {
    url: "file:///bench",
    sync: (): Promise<Snapshot> => Promise.resolve({ revision: `rev-${revision}`, files, fetchedAt: new Date(0) }),
  };
  /** Changes one gMSA's description in its file: a new revision. */
  const commit = (run: number): void => {
    const path = join(PREFIX, "app-0000.yaml");
    files = files.map((file) =>
      file.path === path
        ? {
            path,
            content: Buffer.from(
              Buffer.from(file.content)
                .toString("utf8")
                .replace(/description: Bench service bsv 0(\b.*)?\n/, `description: Bench service bsv 0 run ${run}\n`),
            ),
          }
        : file,
    );
    revision++;
  };

  let now = new Date("2026-01-01T00:00:00Z");
  const computers = Array.from({ length: SHAPE.computers }, (_, i) => computer(computerName(i)));
  const dir = fakeDirectory(emptyDirectory(now, { computers }));
  // Time spent inside the fake directory (reads, writes, USN bookkeeping): not the controller's.
  // Calls run in parallel (Promise.all): what counts is the time while at least one is pending.
  let fakeMs = 0;
  let pending = 0;
  let since = 0;
  const inFake = async (call: () => unknown): Promise<unknown> => {
    if (pending++ === 0) since = performance.now();
    try {
      return await call();
    } finally {
      if (--pending === 0) fakeMs += ms(since);
    }
  };
  const timedOpen =
    (open: OpenDirectory): OpenDirectory =>
    async (signal) => {
      const session = await open(signal);
      const wrapped: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(session))
        wrapped[key] =
          typeof value === "function"
            ? (...args: unknown[]) => inFake(() => (value as (...a: unknown[]) => unknown)(...args))
            : value;
      const writer = session.writer;
      const writes: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(writer))
        writes[key] = (...args: unknown[]) => inFake(() => (value as (...a: unknown[]) => unknown)(...args));
      return { ...(wrapped as unknown as DirectorySession), writer: writes as unknown as DirectorySession["writer"] };
    };
  const metrics = createMetricsRecorder();
  const controller = new Controller({
    source,
    openDirectory: timedOpen(withUsns(dir.open, dir.observed)),
    metrics,
    logger: silent,
    policy: POLICY,
    intervalMs: 3_600_000,
    now: () => now,
    random: () => 0.5,
    fullResyncMs: 86_400_000,
  });
  const cycle = async (): Promise<{ total: number; own: number }> => {
    now = new Date(now.getTime() + 1_000);
    fakeMs = 0;
    const t0 = performance.now();
    await controller.reconcile();
    const total = ms(t0);
    return { total, own: total - fakeMs };
  };

  const first = await cycle();
  const second = await cycle();
  const quiet = await cycle();
  const resources = SHAPE.gmsas + SHAPE.groups;
  console.log(`${resources} resources (${SHAPE.gmsas} gMSAs, ${SHAPE.groups} groups), ${files.length} files`);
  console.log(`first cycle (creates all)  total ${f(first.total)} ms, controller ${f(first.own)} ms`);
  console.log(`second cycle (own writes)  total ${f(second.total)} ms, controller ${f(second.own)} ms`);
  console.log(`quiet cycle                total ${f(quiet.total)} ms, controller ${f(quiet.own)} ms`);
  if (Number(flags.quiet) > 0) {
    const inspector = new Session();
    if (flags.profile !== undefined) {
      inspector.connect();
      await inspector.post("Profiler.enable");
      await inspector.post("Profiler.start");
    }
    const quiets: { total: number; own: number }[] = [];
    for (let i = 0; i < Number(flags.quiet); i++) quiets.push(await cycle());
    if (flags.profile !== undefined) {
      const { profile } = await inspector.post("Profiler.stop");
      writeFileSync(flags.profile, JSON.stringify(profile));
      inspector.disconnect();
    }
    const mid = (xs: number[]): string => f(median(xs));
    console.log(
      `quiet cycles               total ${mid(quiets.map((c) => c.total))} ms, controller ${mid(quiets.map((c) => c.own))} ms (median of ${quiets.length})`,
    );
  }

  const commits: { total: number; own: number }[] = [];
  const drifts: { total: number; own: number }[] = [];
  for (let run = 1; run <= RUNS; run++) {
    commit(run);
    commits.push(await cycle());
    await cycle(); // its own write seen
    const victim = dir.observed().gmsas[run]!;
    await dir.writer.modify(victim.dn, [{ operation: "replace", attribute: "description", values: ["by hand"] }]);
    drifts.push(await cycle());
    await cycle();
  }
  const row = (label: string, list: { total: number; own: number }[]): void =>
    console.log(
      `${label.padEnd(26)} total ${f(median(list.map((c) => c.total)))} ms, controller ${f(median(list.map((c) => c.own)))} ms (median of ${list.length})`,
    );
  row("one-resource commit", commits);
  row("one-object drift", drifts);
  const planned = (await scrapeText(metrics))
    .split("\n")
    .filter((l) => l.startsWith("gmsa_gitops_plan_resources_total"));
  if (planned.length > 0) console.log(planned.join("\n"));

  // The Git source: a commit of one file, then one sync.
  const repo = createGitRepo({
    files: Object.fromEntries(files.map((file) => [file.path, Buffer.from(file.content).toString("utf8")])),
  });
  try {
    const git = createGitSource({ url: repo.url, branch: "main", workDir: join(tmp, "clone") });
    await git.sync();
    const syncs: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const path = join(PREFIX, "app-0001.yaml");
      repo.write(path, `${Buffer.from(files.find((file) => file.path === path)!.content).toString("utf8")}# ${run}\n`);
      repo.commit(`run ${run}`);
      const t0 = performance.now();
      await git.sync();
      syncs.push(ms(t0));
    }
    console.log(`git source: sync of a one-file commit        ${f(median(syncs))} ms (median of ${RUNS})`);
    // The same after a webhook: no ls-remote first.
    const hooked: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const path = join(PREFIX, "app-0002.yaml");
      repo.write(path, `${Buffer.from(files.find((file) => file.path === path)!.content).toString("utf8")}# ${run}\n`);
      repo.commit(`hooked ${run}`);
      const t0 = performance.now();
      git.moved();
      await git.sync();
      hooked.push(ms(t0));
    }
    console.log(`git source: the same after a webhook (moved)  ${f(median(hooked))} ms (median of ${RUNS})`);
  } finally {
    repo.remove();
  }

  // The commit's cycle, step by step, on the same inputs.
  const steps = new Map<string, number[]>();
  const step = <T>(name: string, fn: () => T): T => {
    const t0 = performance.now();
    const value = fn();
    steps.set(name, [...(steps.get(name) ?? []), ms(t0)]);
    return value;
  };
  const cache = new ParseCache();
  parseManifests(files, {}, [], cache);
  const observer = new IncrementalObserver(86_400_000);
  const scope = { baseDn: emptyDirectory(now).baseDn, configDn: emptyDirectory(now).configDn };
  const session = await withUsns(dir.open, dir.observed)();
  const initial = parseManifests(files, {}, [], cache);
  if (!initial.ok) throw new Error("generated revision is invalid");
  let desired: DesiredState = initial.desired;
  await observer.observe(desired, session as ChangeReader, scope, 0);
  const memo = new DiffMemo();
  planDirectory(
    desired,
    (await observer.observe(desired, session as ChangeReader, scope, 0)).observed,
    POLICY,
    now,
    memo,
  );
  memo.counted();
  const statuses = new StatusStore();
  const publisher = new CyclePublisher(statuses, createMetricsRecorder(), silent);
  for (let run = 1; run <= RUNS; run++) {
    commit(100 + run);
    const loaded = step("load revision (parse 1 file, lint, build)", () => parseManifests(files, {}, [], cache));
    if (!loaded.ok) throw new Error("generated revision is invalid");
    desired = loaded.desired;
    step("  of which: unchanged revision (hash, replay, lint, build)", () => parseManifests(files, {}, [], cache));
    const victim = dir.observed().gmsas[run]!;
    await dir.writer.modify(victim.dn, [{ operation: "replace", attribute: "description", values: [`x${run}`] }]);
    let t0 = performance.now();
    const read = await observer.observe(desired, session as ChangeReader, scope, run);
    steps.set("observe (incremental, 1 changed, fake reads incl.)", [
      ...(steps.get("observe (incremental, 1 changed, fake reads incl.)") ?? []),
      ms(t0),
    ]);
    const plan = step("plan (diff + policy), with the loop's memo", () =>
      planDirectory(desired, read.observed, POLICY, now, memo),
    );
    const [diffed, reused] = memo.counted();
    if (run === 1) console.log(`the commit's plan with the memo: ${diffed} diffed, ${reused} reused`);
    step("plan (diff + policy), every resource", () => planDirectory(desired, read.observed, POLICY, now));
    const pass: PassResult = {
      observed: read.observed,
      plan,
      results: [],
      aborted: false,
      hosts: undefined,
      afterApply: undefined,
    };
    t0 = performance.now();
    step("publish (status + metrics)", () =>
      publisher.cycle({
        desired,
        pass,
        revision: `rev-${revision}`,
        now,
        executed: true,
        enforce: true,
        hostTransport: false,
        remember: () => undefined,
      }),
    );
  }
  console.log("\nsteps of a one-resource commit's cycle (median ms):");
  for (const [name, list] of steps) console.log(`  ${name.padEnd(58)} ${f(median(list))}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
