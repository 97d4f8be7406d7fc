// Where the controller's memory goes at scale, quickly: one `gmsa-gitops run --mode observe`
// process against an EMPTY Samba AD DC and a generated repository (default 45,000 gMSAs + 5,000
// groups), so it holds the whole desired state and a plan creating all of it, every cycle,
// without the hours a seed of that size takes. Nothing is written (observe mode; asserted).
//
//   1. The first cycle: until /readyz, RSS sampled from /proc every 100 ms with the log line
//      and V8 heap size (from --trace-gc) in force at each sample, so the peak is placed in a
//      phase (revision loaded, full read, summaries, drift lines).
//   2. Steady state for --steady (default 60s, the interval is 10 s): RSS min / median / max.
//   3. The HTTP surface at that size: one /metrics scrape and one /api/status request, each
//      timed, with the RSS after it.
//   Peak RSS is VmHWM from /proc/PID/status at the end (the kernel's own high-water mark).
//
// Usage: node bench/memory.ts [--gmsas 45000] [--groups 5000] [--computers 200] [--steady 60s]
//          [--heap-dir DIR [--heap-snapshot-at MIB]] [--cli CHECKOUT]...
// --heap-dir DIR takes one heap snapshot (SIGUSR2) into DIR and prints its summary
// (bench/lib/heap-snapshot.ts): at the end of the steady window, or with --heap-snapshot-at the
// first time RSS passes MIB MiB during the first cycle. The process pauses while the snapshot is
// written (and its RSS grows), so the peak and HTTP figures of such a run are not comparable.
// --cli (repeatable) runs the same measure with the CLI of each checkout in turn (default: this
// one), alternating against the same DC and repository: a before/after in one run.
import { strict as assert } from "node:assert";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseDuration } from "../controller/config/index.ts";
import { createGitRepo } from "../test/harness/git-repo.ts";
import type { GitRepo } from "../test/harness/git-repo.ts";
import { startDc } from "../test/harness/samba.ts";
import type { Dc } from "../test/harness/samba.ts";
import { formatHeapSummary, summarizeHeapSnapshot } from "./lib/heap-snapshot.ts";
import { median } from "./lib/measure.ts";
import { computersLdif, shapeFromFlags, shapeOptions, writeRepo } from "./lib/repo.ts";
import { sampleEverySecond, spawnRun, stopRun, usage } from "./lib/run-process.ts";

const { values: flags } = parseArgs({
  options: {
    ...shapeOptions({ gmsas: 45000, groups: 5000, computers: 200 }),
    steady: { type: "string", default: "60s" },
    "heap-snapshot-at": { type: "string" },
    "heap-dir": { type: "string" },
    cli: { type: "string", multiple: true },
  },
  strict: true,
});
const SHAPE = shapeFromFlags(flags);
const STEADY_MS = parseDuration(flags.steady) ?? Number.NaN;
if (!(STEADY_MS >= 0)) throw new Error("--steady must be a duration");
const SNAPSHOT_AT = flags["heap-snapshot-at"] === undefined ? undefined : Number(flags["heap-snapshot-at"]);
if (SNAPSHOT_AT !== undefined && (!(SNAPSHOT_AT > 0) || flags["heap-dir"] === undefined))
  throw new Error("--heap-snapshot-at needs a size in MiB and --heap-dir DIR");

const root = join(import.meta.dirname, "..");
const log = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** One RSS sample, with the phase (the last log line) and the V8 heap (the last GC line) at that moment. */
interface Sample {
  readonly at: number;
  readonly rss: number;
  readonly phase: string;
  readonly heapMb: number;
}

/** `gmsa-gitops run` with --trace-gc, its JSON log lines and GC lines read as they arrive. */
class Run {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  phase = "starting";
  heapMb = 0;
  url: string | undefined;
  applied = 0;
  driftLines = 0;

  constructor(checkout: string, args: readonly string[], nodeFlags: readonly string[]) {
    ({ child: this.child, exited: this.exited } = spawnRun(checkout, args, nodeFlags, (part) => this.#read(part)));
  }

  #read(part: string): void {
    // --trace-gc: "[pid:addr:gc#] 1234 ms: Mark-Compact 345.2 (380.1) -> 200.3 (390.0) MB, ..."
    const gc = / -> ([\d.]+) \(([\d.]+)\) MB/.exec(part);
    if (gc) {
      this.heapMb = Number(gc[1]);
      return;
    }
    if (!part.startsWith("{")) return;
    const line = JSON.parse(part) as { msg: string; url?: string };
    if (line.msg === "controller started") this.url = line.url;
    if (line.msg === "applied") this.applied++;
    if (line.msg === "drift detected") this.driftLines++;
    // Per-resource lines name no phase: the phase is the last line of another kind.
    else this.phase = line.msg;
  }

  stop(): Promise<void> {
    return stopRun(this, 120_000);
  }
}

/** What one process measured. */
interface Measure {
  readonly checkout: string;
  readonly firstCycleS: number;
  /** VmHWM once the first cycle is done, and at the end of the steady window (before any HTTP request). */
  readonly firstHwm: number;
  readonly steadyHwm: number;
  readonly firstPeak: Sample;
  readonly phases: readonly string[];
  readonly steady: readonly number[];
  readonly steadyHeapMb: number;
  readonly scrape: {
    readonly ms: number;
    readonly bytes: number;
    readonly samples: number;
    readonly rss: number;
    readonly hwm: number;
  };
  readonly status: { readonly ms: number; readonly bytes: number; readonly rss: number; readonly hwm: number };
  readonly hwm: number;
  readonly snapshot?: readonly string[];
}

async function measure(checkout: string, args: readonly string[], k: number): Promise<Measure> {
  const heapDir = flags["heap-dir"] === undefined ? undefined : join(flags["heap-dir"], String(k));
  const nodeFlags = ["--trace-gc"];
  if (heapDir !== undefined) {
    mkdirSync(heapDir, { recursive: true });
    nodeFlags.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`);
  }
  const run = new Run(checkout, args, nodeFlags);
  const pid = run.child.pid!;
  const t0 = performance.now();
  const samples: Sample[] = [];
  let snapped = false;
  const sample = (): Sample => {
    const s = { at: performance.now() - t0, rss: usage(pid).rssBytes, phase: run.phase, heapMb: run.heapMb };
    samples.push(s);
    if (SNAPSHOT_AT !== undefined && !snapped && s.rss > SNAPSHOT_AT * 1024 * 1024) {
      snapped = true;
      run.child.kill("SIGUSR2");
    }
    return s;
  };
  try {
    // 1. The first cycle, until /readyz answers 200 (a busy event loop may reset the connection).
    for (;;) {
      sample();
      if (run.child.exitCode !== null) throw new Error("the controller exited during its first cycle");
      if (run.url !== undefined) {
        const ready = await fetch(`${run.url}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ready) break;
      }
      await sleep(100);
    }
    const firstCycleS = (performance.now() - t0) / 1000;
    const firstHwm = usage(pid).hwmBytes;
    const firstPeak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
    const byPhase = new Map<string, { rss: number; heapMb: number; n: number }>();
    for (const s of samples) {
      const p = byPhase.get(s.phase) ?? { rss: 0, heapMb: 0, n: 0 };
      byPhase.set(s.phase, { rss: Math.max(p.rss, s.rss), heapMb: Math.max(p.heapMb, s.heapMb), n: p.n + 1 });
    }
    const phases = [...byPhase].map(
      ([phase, p]) =>
        `${phase}: max RSS ${mib(p.rss)}, V8 heap after GC up to ${p.heapMb.toFixed(0)} MB (${p.n} samples)`,
    );

    // 2. Steady state: cycles at the interval, nothing else asked of the process.
    const steady = await sampleEverySecond(performance.now() + STEADY_MS, () => sample().rss);
    const steadyHeapMb = run.heapMb;
    const steadyHwm = usage(pid).hwmBytes;
    // No snapshot during the first cycle: one of the steady state, before the HTTP surface runs.
    if (heapDir !== undefined && !snapped) {
      snapped = true;
      run.child.kill("SIGUSR2");
      while (!readdirSync(heapDir).some((f) => f.endsWith(".heapsnapshot"))) await sleep(500);
      // Written on the main thread: once the process answers again, the file is complete.
      while (
        !(await fetch(`${run.url}/healthz`).then(
          (r) => r.ok,
          () => false,
        ))
      )
        await sleep(500);
    }

    // 3. One scrape and one status request, as Prometheus and a status page make them.
    let started = performance.now();
    const text = await (await fetch(`${run.url}/metrics`)).text();
    const scrape = {
      ms: performance.now() - started,
      bytes: text.length,
      samples: text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length,
      rss: usage(pid).rssBytes,
      hwm: usage(pid).hwmBytes,
    };
    started = performance.now();
    const json = await (await fetch(`${run.url}/api/status`)).text();
    const hwm = usage(pid).hwmBytes;
    const status = { ms: performance.now() - started, bytes: json.length, rss: usage(pid).rssBytes, hwm };
    await run.stop();
    assert.equal(run.applied, 0, "the observe-mode controller wrote to AD");
    let snapshot: string[] | undefined;
    if (heapDir !== undefined && snapped) {
      const file = readdirSync(heapDir).find((f) => f.endsWith(".heapsnapshot"));
      if (file) snapshot = formatHeapSummary(summarizeHeapSnapshot(join(heapDir, file), 20));
    }
    return {
      checkout,
      firstCycleS,
      firstHwm,
      steadyHwm,
      firstPeak,
      phases,
      steady,
      steadyHeapMb,
      scrape,
      status,
      hwm,
      ...(snapshot ? { snapshot } : {}),
    };
  } finally {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
  }
}

function report(m: Measure): void {
  log("");
  log(`checkout ${m.checkout}`);
  log(
    `  peak RSS (VmHWM): ${mib(m.hwm)} at the end; ${mib(m.firstHwm)} after the first cycle, ${mib(m.steadyHwm)} after the steady window, ${mib(m.scrape.hwm)} after /metrics`,
  );
  log(
    `  first cycle: ready after ${m.firstCycleS.toFixed(1)} s; highest sample ${mib(m.firstPeak.rss)} at ${(m.firstPeak.at / 1000).toFixed(1)} s, after "${m.firstPeak.phase}"`,
  );
  for (const p of m.phases) log(`    ${p}`);
  if (m.steady.length > 0)
    log(
      `  steady RSS (min / median / max over ${m.steady.length} s): ${mib(Math.min(...m.steady))} / ${mib(median(m.steady))} / ${mib(Math.max(...m.steady))}; V8 heap after the last GC ${m.steadyHeapMb.toFixed(0)} MB`,
    );
  log(
    `  /metrics: ${m.scrape.samples} samples, ${(m.scrape.bytes / 1024 / 1024).toFixed(1)} MiB in ${(m.scrape.ms / 1000).toFixed(2)} s; RSS after ${mib(m.scrape.rss)}, VmHWM ${mib(m.scrape.hwm)}`,
  );
  log(
    `  /api/status: ${(m.status.bytes / 1024 / 1024).toFixed(1)} MiB in ${(m.status.ms / 1000).toFixed(2)} s; RSS after ${mib(m.status.rss)}, VmHWM ${mib(m.status.hwm)}`,
  );
  if (m.snapshot) for (const line of m.snapshot) log(`    ${line}`);
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), "gmsa-bench-memory-"));
  let dc: Dc | undefined;
  let repo: GitRepo | undefined;
  try {
    const total = SHAPE.gmsas + SHAPE.groups;
    log(`memory bench: ${SHAPE.gmsas} gMSAs + ${SHAPE.groups} groups = ${total} resources, observe mode, empty DC`);
    dc = await startDc();
    const domain = dc.realm.toLowerCase();
    writeFileSync(join(work, "computers.ldif"), computersLdif(SHAPE, dc.baseDn, domain));
    await dc.ldap("ldapadd", ["-f", join(work, "computers.ldif")]);
    const local = join(work, "local");
    writeRepo(local, SHAPE, [{ prefix: "bsv", count: SHAPE.gmsas }], domain);
    repo = createGitRepo({ from: local, message: "generated manifests" });
    rmSync(local, { recursive: true, force: true });
    const dcFlags = ["--ldap-url", dc.url, "--bind-dn", dc.adminDn, "--bind-password-file", dc.passwordFile];
    dcFlags.push("--ca-file", dc.caFile, "--ownership-key-file", dc.ownershipKeyFile);
    const results: Measure[] = [];
    for (const [k, checkout] of (flags.cli ?? [root]).entries()) {
      const args = [...dcFlags, "--git-url", repo.url, "--work-dir", join(work, `clone-${k}`)].concat([
        "--interval",
        "10s",
        "--mode",
        "observe",
        "--listen",
        "127.0.0.1:0",
      ]);
      log(
        `run ${k + 1}: ${checkout} (load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")})`,
      );
      const m = await measure(checkout, args, k);
      results.push(m);
      report(m);
    }
    log("");
    log(
      `date ${new Date().toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? "?"}; Node ${process.version}; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")}`,
    );
    return 0;
  } finally {
    repo?.remove();
    await dc?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
