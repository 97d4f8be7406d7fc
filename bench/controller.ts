// The controller benchmark: `gmsa-gitops run` as a real process against a real Samba AD DC and
// a repository of generated manifests (default 4,500 gMSAs + 500 groups = 5,000 resources).
//
//   1. Seed. --seed ldif (the default): the objects are written in bulk with ldapadd and
//      ldapmodify, ownership markers included (bench/lib/seed.ts), then the controller's first
//      reconcile must find everything in sync (asserted: no write). --seed controller: one
//      reconcile of the controller creates every object (timed: the measure of creation speed).
//      --seed none: nothing is created; with --skip-latency and --mode observe, the steady-state
//      controller holds the whole desired state and a plan creating all of it, every cycle.
//   2. Commit-to-applied latency of a one-resource change (a gMSA's description):
//      (a) git mode, a commit then a signed webhook POST; (b) local watch mode (--repo DIR), the
//      file edited in place. Both with --interval 1h, so only the trigger explains the reconcile.
//      Measured from the commit (or the file write) to the controller's "applied" log line, and
//      checked with ldapsearch. Median of --runs. The "applied" line says how long the write itself
//      took (durationMs): the goal is the time to it without that.
//   3. Steady state: git mode at --interval 10s with nothing to do, for --steady (default 10m),
//      twice in the same run: incremental reads (the default) and a full read every cycle
//      (--full-resync-interval 0): LDAP entries read and CPU seconds per cycle (from
//      gmsa_gitops_ldap_entries_read_total and /proc), CPU time / wall time and RSS, side by side.
//      The window starts right after the first full read, while RSS still falls (V8's memory
//      reducer runs major GCs then), so the CPU per cycle is given twice: over the whole window
//      (the transition included) and over the part after --warmup (default 1m: the steady
//      state). Both count the controller process's utime + stime (/proc), V8's GC threads
//      included; the /metrics scrape that reads the cycle count at the warm-up boundary counts
//      in neither.
//
// Usage: node bench/controller.ts [--gmsas 4500] [--groups 500] [--computers 200] [--runs 5]
//          [--steady 10m] [--seed ldif|controller|none] [--skip-latency] [--mode enforce|observe]
//          [--steady-modes incremental,full] [--warmup 1m] [--source-interval D] [--steady-cli CHECKOUT]... [--dc-tmpdir DIR] [--cpu-prof DIR] [--heap-snapshot DIR]
//          [--heap-cli CHECKOUT]...
// --cpu-prof then runs a second steady-state process under the V8 profiler (kept apart from the
// CPU figures, which the profiler's own thread would inflate), writes the profile to DIR and
// prints its hottest functions. --heap-snapshot runs one more steady-state process, takes a heap
// snapshot of it after a minute (or --steady) through SIGUSR2 into DIR and prints where the heap
// goes (bench/lib/heap-snapshot.ts); --heap-cli CHECKOUT (repeatable) does so with the CLI of
// each of these checkouts instead of this one, to compare versions against the same DC.
// --steady-cli CHECKOUT (repeatable) runs the steady-state windows with the CLI of each of these
// checkouts instead of this one (alternating within each mode), to compare versions on one DC.
// --source-interval D passes that flag to the steady-state controllers (both modes): Git is then
// polled every D, not every cycle, and the cycles between polls spawn no git process.
// --dc-tmpdir puts the DC's databases there (e.g. /dev/shm, for a faster seed). Writes only to
// temp folders and DIR. Exits 1 when a step fails.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseDuration } from "../controller/config/index.ts";
import { createGitRepo } from "../test/harness/git-repo.ts";
import type { GitRepo } from "../test/harness/git-repo.ts";
import { startDc } from "../test/harness/samba.ts";
import type { Dc } from "../test/harness/samba.ts";
import { formatHeapSummary, summarizeHeapSnapshot } from "./lib/heap-snapshot.ts";
import { ownerFromFlags, seedRound } from "./lib/seed.ts";
import {
  computerName,
  computersLdif,
  countFlag,
  gmsaAccount,
  groupAccount,
  groupResource,
  loadRepo,
  shapeFromFlags,
  shapeOptions,
} from "./lib/repo.ts";
import { sampleEverySecond, spawnRun, stopRun, usage } from "./lib/run-process.ts";
import type { Usage } from "./lib/run-process.ts";

const { values: flags } = parseArgs({
  options: {
    ...shapeOptions({ gmsas: 4500, groups: 500, computers: 200 }),
    runs: { type: "string", default: "5" },
    steady: { type: "string", default: "10m" },
    seed: { type: "string", default: "ldif" },
    "skip-latency": { type: "boolean", default: false },
    mode: { type: "string", default: "enforce" },
    "steady-modes": { type: "string", default: "incremental,full" },
    warmup: { type: "string", default: "1m" },
    "source-interval": { type: "string" },
    "steady-cli": { type: "string", multiple: true },
    "dc-tmpdir": { type: "string" },
    "cpu-prof": { type: "string" },
    "heap-snapshot": { type: "string" },
    "heap-cli": { type: "string", multiple: true },
  },
  strict: true,
});
const SHAPE = shapeFromFlags(flags);
const RUNS = countFlag(flags, "runs");
const STEADY_MS = parseDuration(flags.steady) ?? Number.NaN;
if (!(STEADY_MS >= 10_000)) throw new Error("--steady must be a duration of at least 10s");
const WARMUP_MS = parseDuration(flags.warmup) ?? Number.NaN;
if (!(WARMUP_MS >= 0 && WARMUP_MS < STEADY_MS)) throw new Error("--warmup must be a duration shorter than --steady");
const SEED = flags.seed;
if (SEED !== "ldif" && SEED !== "controller" && SEED !== "none")
  throw new Error("--seed must be ldif, controller or none");
const SKIP_LATENCY = flags["skip-latency"];
if (flags.mode !== "enforce" && flags.mode !== "observe") throw new Error("--mode must be enforce or observe");
if (SEED === "none" && (!SKIP_LATENCY || flags.mode !== "observe"))
  throw new Error("--seed none needs --skip-latency and --mode observe (nothing is created, nothing may be written)");
const STEADY_MODES = flags["steady-modes"].split(",");
if (STEADY_MODES.some((m) => m !== "incremental" && m !== "full") || STEADY_MODES.length === 0)
  throw new Error("--steady-modes must list incremental and/or full");
// os.tmpdir() reads TMPDIR on every call, and startDc takes no folder: this is its only knob.
if (flags["dc-tmpdir"] !== undefined) process.env["TMPDIR"] = flags["dc-tmpdir"];
const API = "gmsa-gitops.io/v1alpha1";
/** The resource whose description the latency runs change. */
const TARGET = "bsv00000";
const TARGET_FILE = "accounts/app-0000.yaml";

const root = join(import.meta.dirname, "..");
const log = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pad = (n: number, width: number): string => String(n).padStart(width, "0");
const account = (i: number): string => gmsaAccount("bsv", i);
const description = (i: number): string => `Bench service ${i}`;

/**
 * Writes the repository: groups/app-NNNN.yaml (one ADGroup of computers each) and
 * accounts/app-NNNN.yaml (the gMSAs that group may retrieve, every third with two SPNs).
 * Not writeRepo (bench/lib/repo.ts): its groups carry a description and its gMSAs another one,
 * and this bench's objects stay as they were, so that its figures compare with earlier runs.
 */
function writeManifests(dir: string, domain: string): void {
  mkdirSync(join(dir, "groups"), { recursive: true });
  mkdirSync(join(dir, "accounts"), { recursive: true });
  for (let g = 0; g < SHAPE.groups; g++) {
    const members = Array.from(
      { length: SHAPE.membersPerGroup },
      (_, k) => `    - computer: ${computerName((g * SHAPE.membersPerGroup + k) % SHAPE.computers)}`,
    );
    writeFileSync(
      join(dir, "groups", `app-${pad(g, 4)}.yaml`),
      [`apiVersion: ${API}`, "kind: ADGroup", "metadata:", `  name: ${groupResource(g)}`, "spec:"]
        .concat([
          `  accountName: ${groupAccount(g)}`,
          "  scope: Global",
          "  membership: exact",
          "  members:",
          ...members,
          "",
        ])
        .join("\n"),
    );
  }
  const byGroup = new Map<number, string[]>();
  for (let i = 0; i < SHAPE.gmsas; i++) {
    const name = account(i);
    const host = `${name}.${domain}`;
    const lines = [`apiVersion: ${API}`, "kind: GroupManagedServiceAccount", "metadata:", `  name: ${name}`, "spec:"];
    lines.push(`  accountName: ${name}`, `  dnsHostName: ${host}`, `  description: ${description(i)}`);
    lines.push("  kerberosEncryptionTypes: [AES128, AES256]", "  principalsAllowedToRetrieveManagedPassword:");
    lines.push(`    - group: ${groupResource(i % SHAPE.groups)}`);
    if (i % SHAPE.spnEvery === 0) lines.push("  servicePrincipalNames:", `    - HTTP/${host}`, `    - HTTP/${name}`);
    byGroup.set(i % SHAPE.groups, [...(byGroup.get(i % SHAPE.groups) ?? []), `${lines.join("\n")}\n`]);
  }
  for (const [g, docs] of byGroup) writeFileSync(join(dir, "accounts", `app-${pad(g, 4)}.yaml`), docs.join("---\n"));
}

/** A pino JSON line, with the time it reached this process. */
interface LogLine {
  readonly msg: string;
  readonly at: number;
  readonly [field: string]: unknown;
}

/** `gmsa-gitops run` as a child process, its JSON log lines parsed as they arrive. */
class ControllerProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(args: readonly string[], nodeFlags: readonly string[] = [], checkout = root) {
    ({ child: this.child, exited: this.exited } = spawnRun(checkout, args, nodeFlags, (part) => this.#read(part)));
  }

  #read(part: string): void {
    if (!part.startsWith("{")) return;
    const line = { ...(JSON.parse(part) as Record<string, unknown>), at: performance.now() } as LogLine;
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.match(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The first line matching from now on (or already logged, if `past`), within `timeoutMs`. */
  next(what: string, match: (l: LogLine) => boolean, timeoutMs: number, past = false): Promise<LogLine> {
    const found = past ? this.lines.find(match) : undefined;
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** The base URL of its HTTP server, from the "controller started" line. */
  async url(): Promise<string> {
    const started = await this.next("the controller to start", (l) => l.msg === "controller started", 120_000, true);
    return started["url"] as string;
  }

  stop(): Promise<void> {
    return stopRun(this, 60_000);
  }
}

/**
 * Polls /readyz as a kubelet does: a refused or reset connection counts as "not ready yet", not
 * as the end of the bench (a first cycle of 5,000 resources on a loaded machine can keep the event
 * loop busy past the server's headers timeout, and the connection is then reset).
 */
async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms (last answer: ${status})`);
    await sleep(500);
  }
}

/** The one sample of a metric with exactly these labels (labels in the order prom-client writes them). */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** The description of the target gMSA as ldapsearch sees it. */
async function targetDescription(dc: Dc): Promise<string | undefined> {
  const out = await dc.ldap("ldapsearch", ["-b", dc.baseDn, "-s", "sub", `(sAMAccountName=${TARGET}$)`, "description"]);
  return /^description: (.*)$/m.exec(out)?.[1];
}

/** Replaces the target's description line in its file; returns the new text. */
function editTarget(dir: string, from: string, to: string): void {
  const file = join(dir, TARGET_FILE);
  const text = readFileSync(file, "utf8");
  const line = `  description: ${from}\n`;
  assert.ok(text.includes(line), `${TARGET_FILE} has no line ${JSON.stringify(line)}`);
  writeFileSync(file, text.replace(line, `  description: ${to}\n`));
}

/** What one steady-state window measured. */
interface Steady {
  readonly wallS: number;
  readonly cycles: number;
  readonly meanCycleS: number;
  readonly cpuShare: number;
  /** CPU seconds per cycle over the whole window, the transition after the first read included. */
  readonly cpuPerCycle: number;
  /** The same after the warm-up (`--warmup`): the steady state once RSS has settled. */
  readonly warmCpuPerCycle: number;
  readonly warmCycles: number;
  readonly warmS: number;
  readonly entriesPerCycle: number;
  readonly rss: readonly number[];
  readonly rssFirst: number;
  readonly rssLast: number;
  readonly slice: number;
  readonly heapUsed: number;
  readonly scrapeSeries: number;
  readonly scrapeBytes: number;
  readonly scrapeMs: number;
}

/** One latency run: to the target's "applied" line, and to the "new revision loaded" line before it. */
interface Latency {
  readonly totalMs: number;
  /** Trigger, fetch or read, and manifest parsing; the rest is observe, plan and apply. */
  readonly loadedMs: number;
  /** The write itself: the "applied" line's durationMs. */
  readonly writeMs: number;
}

/**
 * One latency run: `change()` makes the edit (and its trigger) and returns the moment it
 * counts from; resolves with the time to the "applied" line of the target, checked in AD.
 */
async function latencyRun(
  dc: Dc,
  controller: ControllerProcess,
  change: () => Promise<number>,
  expected: string,
): Promise<Latency> {
  const loaded = controller.next("the new revision", (l) => l.msg === "new revision loaded", 300_000);
  const applied = controller.next(
    `the update of ${TARGET}`,
    (l) => l.msg === "applied" && l["resource"] === TARGET,
    300_000,
  );
  const t0 = await change();
  const [revision, line] = await Promise.all([loaded, applied]);
  assert.equal(await targetDescription(dc), expected, "AD does not hold the committed description");
  return { totalMs: line.at - t0, loadedMs: revision.at - t0, writeMs: Number(line["durationMs"] ?? Number.NaN) };
}

const runLine = (l: Latency): string =>
  `${seconds(l.totalMs)} (revision loaded after ${seconds(l.loadedMs)}, then ${seconds(l.totalMs - l.loadedMs)} to applied, ` +
  `of which the write ${seconds(l.writeMs)})`;
const runsCell = (runs: readonly Latency[]): string =>
  `${seconds(median(runs.map((r) => r.totalMs)))} (${runs.map((r) => (r.totalMs / 1000).toFixed(2)).join(", ")}); ` +
  `revision loaded after ${seconds(median(runs.map((r) => r.loadedMs)))}; the write itself ${seconds(median(runs.map((r) => r.writeMs)))}; ` +
  `without it ${seconds(median(runs.map((r) => r.totalMs - r.writeMs)))}`;

/** The hottest functions of a V8 CPU profile by self time, as shares of the busy (non-idle) samples. */
function hottest(profileDir: string, top: number): string[] {
  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) return ["(no profile written)"];
  const profile = JSON.parse(readFileSync(join(profileDir, file), "utf8")) as {
    nodes: { id: number; hitCount?: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  };
  const self = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (node.callFrame.functionName === "(idle)") {
      idle += hits;
      continue;
    }
    busy += hits;
    const where = node.callFrame.url.replace(/^.*\/(node_modules\/|controller\/)/, "$1");
    const key = `${node.callFrame.functionName || "(anonymous)"} ${where}:${node.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  return [`busy ${((100 * busy) / (busy + idle)).toFixed(1)} % of the samples; shares of the busy samples:`].concat(
    [...self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, hits]) => `${((100 * hits) / busy).toFixed(1).padStart(5)} %  ${key}`),
  );
}

/** What a process with a heap snapshot taken in its steady state measured, and the summary. */
interface HeapReport {
  /** The checkout whose CLI ran (--heap-cli: compare versions against the same DC). */
  readonly checkout: string;
  readonly rssBytes: number;
  readonly heapUsed: number;
  readonly summary: readonly string[];
}

async function main(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), "gmsa-bench-controller-"));
  const running: ControllerProcess[] = [];
  let dc: Dc | undefined;
  let repo: GitRepo | undefined;
  const start = (args: readonly string[], nodeFlags: readonly string[] = [], checkout = root): ControllerProcess => {
    const c = new ControllerProcess(args, nodeFlags, checkout);
    running.push(c);
    return c;
  };
  try {
    log(
      `controller bench: ${SHAPE.gmsas} gMSAs + ${SHAPE.groups} groups = ${SHAPE.gmsas + SHAPE.groups} resources, ${SHAPE.computers} computers; ${RUNS} runs per trigger; steady state ${seconds(STEADY_MS)}`,
    );
    dc = await startDc();
    const domain = dc.realm.toLowerCase();
    const dcFlags = ["--ldap-url", dc.url, "--bind-dn", dc.adminDn, "--bind-password-file", dc.passwordFile];
    dcFlags.push("--ca-file", dc.caFile, "--ownership-key-file", dc.ownershipKeyFile);
    writeFileSync(join(work, "computers.ldif"), computersLdif(SHAPE, dc.baseDn, domain));
    await dc.ldap("ldapadd", ["-f", join(work, "computers.ldif")]);

    const local = join(work, "local");
    writeManifests(local, domain);
    repo = createGitRepo({ from: local, message: "generated manifests" });
    const secretFile = join(work, "webhook-secret");
    const secret = randomBytes(24).toString("hex");
    writeFileSync(secretFile, secret, { mode: 0o600 });

    // 1. Seed: by LDIF then a first reconcile that must find everything in sync, or by the
    // controller's first reconcile creating everything, or not at all.
    let seedRow: [string, string] = ["seed", "none (--seed none)"];
    if (SEED !== "none") {
      let ldifMs = 0;
      if (SEED === "ldif") {
        const owner = ownerFromFlags(dcFlags);
        const t0 = performance.now();
        const groups = await seedRound(dc, await loadRepo(join(local, "groups")), owner, work);
        const gmsas = await seedRound(dc, await loadRepo(local), owner, work);
        ldifMs = performance.now() - t0;
        log(
          `seed by LDIF: ${groups.adds} groups (${groups.memberChanges} member changes) and ${gmsas.adds} gMSAs in ${seconds(ldifMs)} ` +
            `(ldapadd ${seconds(groups.addMs + gmsas.addMs)}, GUIDs and markers ${seconds(groups.markMs + gmsas.markMs)})`,
        );
      }
      const seeding = start([...dcFlags, "--repo", local, "--interval", "1h", "--listen", "127.0.0.1:0"]);
      const seedUrl = await seeding.url();
      const seedStarted = performance.now();
      await waitReady(seedUrl, 3 * 3_600_000);
      const seedMs = performance.now() - seedStarted;
      const created = seeding.lines.filter((l) => l.msg === "applied").length;
      const failed = seeding.lines.filter((l) => l.msg === "action not applied").length;
      assert.equal(failed, 0, `seeding: ${failed} action(s) failed`);
      await seeding.stop();
      if (SEED === "ldif") {
        assert.equal(
          created,
          0,
          `the first reconcile after the LDIF seed wrote ${created} time(s): the seed was not in sync`,
        );
        seedRow = [`seed by LDIF (ldapadd + markers), ${SHAPE.gmsas + SHAPE.groups} objects`, seconds(ldifMs)];
        log(`first reconcile after the LDIF seed: no write, ready after ${seconds(seedMs)}`);
      } else {
        seedRow = [`seed: first reconcile, ${created} creations`, seconds(seedMs)];
        log(
          `seed: one reconcile applied ${created} actions in ${seconds(seedMs)} (${(seedMs / created).toFixed(1)} ms each)`,
        );
      }
    }

    // 2. Latency runs (skipped with --skip-latency).
    const webhookMs: Latency[] = [];
    const watchMs: Latency[] = [];
    if (!SKIP_LATENCY) {
      // 2a. Webhook: commit, POST, applied.
      let current = description(0);
      let runNo = 0;
      const nextText = (): string => `Bench latency run ${++runNo}`;
      const viaGit = start([
        ...dcFlags,
        "--git-url",
        repo.url,
        "--work-dir",
        join(work, "clone"),
        "--interval",
        "1h",
        "--listen",
        "127.0.0.1:0",
        "--webhook-secret-file",
        secretFile,
      ]);
      const gitUrl = await viaGit.url();
      await waitReady(gitUrl, 600_000);
      const idleCycle = viaGit.lines.find((l) => l.msg === "applied");
      assert.equal(idleCycle, undefined, "the seeded repository was not in sync");
      for (let run = 0; run < RUNS; run++) {
        const text = nextText();
        const from = current;
        webhookMs.push(
          await latencyRun(
            dc,
            viaGit,
            async () => {
              editTarget(repo!.dir, from, text);
              repo!.commit(`bench: ${text}`);
              const t0 = performance.now();
              const body = JSON.stringify({ ref: "refs/heads/main", after: repo!.head() });
              const res = await fetch(`${gitUrl}/hooks/git`, {
                method: "POST",
                headers: {
                  "Content-Type": "application/json",
                  "X-Hub-Signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
                },
                body,
              });
              assert.equal(res.status, 202, "the webhook was refused");
              return t0;
            },
            text,
          ),
        );
        current = text;
        log(`webhook run ${run + 1}: ${runLine(webhookMs.at(-1)!)}`);
      }
      await viaGit.stop();

      // 2b. Local watch: edit the file, applied. The local folder follows the commits first.
      execFileSync("cp", [join(repo.dir, TARGET_FILE), join(local, TARGET_FILE)]);
      const viaWatch = start([...dcFlags, "--repo", local, "--interval", "1h", "--listen", "127.0.0.1:0"]);
      await waitReady(await viaWatch.url(), 600_000);
      await sleep(2_000); // chokidar's initial scan: changes before it ends may be missed
      for (let run = 0; run < RUNS; run++) {
        const text = nextText();
        const from = current;
        watchMs.push(
          await latencyRun(
            dc,
            viaWatch,
            () => {
              editTarget(local, from, text);
              return Promise.resolve(performance.now());
            },
            text,
          ),
        );
        current = text;
        log(`watch run ${run + 1}: ${runLine(watchMs.at(-1)!)}`);
      }
      await viaWatch.stop();
      // Git follows the folder, so the steady-state controller starts in sync.
      execFileSync("cp", [join(local, TARGET_FILE), join(repo.dir, TARGET_FILE)]);
      repo.commit("bench: in sync for the steady state");
    }

    // 3. Steady state at a 10 s interval with nothing to change, twice in the same run: reading
    // only what changed since the DC's USN watermark (the default), then a full read every cycle
    // (--full-resync-interval 0, the old behaviour). Measured without the profiler: its sampling
    // thread would be counted as the controller's CPU time.
    const steadyArgs = (clone: string, extra: readonly string[] = []): string[] =>
      [...dcFlags, "--git-url", repo!.url, "--work-dir", join(work, clone), "--interval", "10s"].concat([
        "--listen",
        "127.0.0.1:0",
        "--mode",
        flags.mode,
        ...(flags["source-interval"] !== undefined ? ["--source-interval", flags["source-interval"]] : []),
        ...extra,
      ]);
    const steadyState = async (label: string, extra: readonly string[], checkout = root): Promise<Steady> => {
      const steady = start(steadyArgs(`clone-${label}`, extra), [], checkout);
      const url = await steady.url();
      await waitReady(url, 600_000);
      const pid = steady.child.pid!;
      const ok = 'gmsa_gitops_reconciles_total{result="success"}';
      const read = (mode: string): Promise<number> =>
        metric(url, `gmsa_gitops_ldap_entries_read_total{mode="${mode}"}`);
      const before = {
        cycles: await metric(url, ok),
        full: await read("full"),
        incremental: await read("incremental"),
      };
      // After the scrapes above: at 50,000 resources one scrape took longer than the window.
      const first = usage(pid);
      const t0 = performance.now();
      // At the end of the warm-up: the cycle count, read between two CPU samples so that the
      // scrape's own CPU counts in neither window.
      let warm: { before: Usage; cycles: number; after: Usage; at: number } | undefined;
      const rss = await sampleEverySecond(t0 + STEADY_MS, async () => {
        const rssBytes = usage(pid).rssBytes;
        if (warm === undefined && performance.now() - t0 >= WARMUP_MS) {
          const warmBefore = usage(pid);
          const warmCycles = await metric(url, ok);
          warm = { before: warmBefore, cycles: warmCycles, after: usage(pid), at: performance.now() };
        }
        return rssBytes;
      });
      const last = usage(pid);
      const wallS = (performance.now() - t0) / 1000;
      const total = await metric(url, ok);
      const cycles = total - before.cycles;
      const entries = (await read("full")) - before.full + (await read("incremental")) - before.incremental;
      const sum = await metric(url, `gmsa_gitops_reconcile_duration_seconds_sum{result="success"}`);
      const n = await metric(url, `gmsa_gitops_reconcile_duration_seconds_count{result="success"}`);
      const heapUsed = await metric(url, "nodejs_heap_size_used_bytes");
      const scrapeStarted = performance.now();
      const scrapeText = await (await fetch(`${url}/metrics`)).text();
      const scrapeMs = performance.now() - scrapeStarted;
      const applied = steady.lines.filter((l) => l.msg === "applied").length;
      await steady.stop();
      assert.equal(applied, 0, `the ${label} steady-state controller made writes`);
      const cpuSeconds = warm
        ? warm.before.cpuSeconds - first.cpuSeconds + last.cpuSeconds - warm.after.cpuSeconds
        : last.cpuSeconds - first.cpuSeconds;
      const warmCycles = warm ? total - warm.cycles : 0;
      // RSS of the first and the last minute (or sixth) of the window: a leak shows as growth between them.
      const slice = Math.max(1, Math.min(60, Math.floor(rss.length / 6)));
      return {
        wallS,
        cycles,
        meanCycleS: sum / n,
        cpuShare: cpuSeconds / wallS,
        cpuPerCycle: cycles > 0 ? cpuSeconds / cycles : Number.NaN,
        warmCpuPerCycle: warm && warmCycles > 0 ? (last.cpuSeconds - warm.after.cpuSeconds) / warmCycles : Number.NaN,
        warmCycles,
        warmS: warm ? (performance.now() - warm.at) / 1000 : 0,
        entriesPerCycle: cycles > 0 ? entries / cycles : Number.NaN,
        rss,
        rssFirst: median(rss.slice(0, slice)),
        rssLast: median(rss.slice(-slice)),
        slice,
        heapUsed,
        scrapeSeries: scrapeText.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length,
        scrapeBytes: scrapeText.length,
        scrapeMs,
      };
    };
    // Mode by mode, the checkouts (--steady-cli) one after the other within each mode, so that
    // a change of the machine's load falls on both sides of a comparison.
    const checkouts = flags["steady-cli"] ?? [root];
    const windows: { head: string; s: Steady; checkout: string; mode: string }[] = [];
    for (const mode of STEADY_MODES) {
      for (const [k, checkout] of checkouts.entries()) {
        const extra = mode === "full" ? ["--full-resync-interval", "0"] : [];
        const s = await steadyState(`${mode}-${k}`, extra, checkout);
        const head = mode === "incremental" ? "incremental (default)" : "full read every cycle";
        windows.push({ head: checkouts.length > 1 ? `${head}, ${checkout}` : head, s, checkout, mode });
      }
    }

    // 3b. Optional: a separate, profiled steady-state process (--cpu-prof), two minutes or --steady.
    const profileDir = flags["cpu-prof"];
    if (profileDir !== undefined) {
      mkdirSync(profileDir, { recursive: true });
      const profiled = start(steadyArgs("clone-profiled"), ["--cpu-prof", "--cpu-prof-dir", profileDir]);
      await waitReady(await profiled.url(), 600_000);
      await sleep(Math.min(STEADY_MS, 120_000));
      await profiled.stop();
    }

    // 3c. Optional: where the heap goes (--heap-snapshot): one more steady-state process, a heap
    // snapshot through SIGUSR2 after a minute (or --steady), summed up by constructor and retainer.
    const heapDir = flags["heap-snapshot"];
    const heaps: HeapReport[] = [];
    if (heapDir !== undefined) {
      for (const [k, checkout] of (flags["heap-cli"] ?? [root]).entries()) {
        const dir = join(heapDir, String(k));
        mkdirSync(dir, { recursive: true });
        const nodeFlags = ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${dir}`];
        const snap = start(steadyArgs(`clone-heap-${k}`), nodeFlags, checkout);
        const url = await snap.url();
        await waitReady(url, 600_000);
        const samples = await sampleEverySecond(
          performance.now() + Math.min(STEADY_MS, 60_000),
          () => usage(snap.child.pid!).rssBytes,
        );
        const rssBytes = median(samples);
        const heapUsed = await metric(url, "nodejs_heap_size_used_bytes");
        snap.child.kill("SIGUSR2");
        let file: string | undefined;
        while (file === undefined) {
          await sleep(500);
          file = readdirSync(dir).find((f) => f.endsWith(".heapsnapshot"));
        }
        // The snapshot is written on the main thread: once it answers again, the file is complete.
        // A request sent meanwhile may be reset (its headers timed out while the loop was blocked).
        while (
          (await fetch(`${url}/readyz`).then(
            (r) => r.status,
            () => 0,
          )) === 0
        )
          await sleep(500);
        await snap.stop();
        const summary = formatHeapSummary(summarizeHeapSnapshot(join(dir, file), 15));
        heaps.push({ checkout, rssBytes, heapUsed, summary });
      }
    }

    const sambaVersion = /samba version (\S+)/.exec(readFileSync(join(dc.dir, "log", "samba.log"), "utf8"))?.[1];
    const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(2)} %`;
    const both = (f: (s: Steady) => string): string => windows.map((w) => f(w.s)).join(" | ");
    const rows: [string, string][] = [seedRow];
    if (!SKIP_LATENCY)
      rows.push(
        [`commit → applied, webhook (median of ${RUNS})`, runsCell(webhookMs)],
        [`file edit → applied, local watch (median of ${RUNS})`, runsCell(watchMs)],
      );
    const steadyRows: [string, string][] = [
      ["reconciles in the window", both((s) => `${s.cycles} in ${s.wallS.toFixed(0)} s`)],
      ["one reconcile with nothing to do (mean)", both((s) => seconds(1000 * s.meanCycleS))],
      ["LDAP entries read per no-op reconcile", both((s) => s.entriesPerCycle.toFixed(1))],
      ["CPU seconds per no-op reconcile, whole window", both((s) => s.cpuPerCycle.toFixed(3))],
      [
        `CPU seconds per no-op reconcile, after the first ${seconds(WARMUP_MS)} (warm-up)`,
        both((s) => `${s.warmCpuPerCycle.toFixed(4)} (${s.warmCycles} in ${s.warmS.toFixed(0)} s)`),
      ],
      ["CPU time / wall time", both((s) => `${(100 * s.cpuShare).toFixed(1)} % of one core`)],
      [
        "RSS (min / median / max)",
        both((s) => `${mib(Math.min(...s.rss))} / ${mib(median(s.rss))} / ${mib(Math.max(...s.rss))}`),
      ],
      [
        "RSS, median of the first / last slice of the window",
        both((s) => `${mib(s.rssFirst)} / ${mib(s.rssLast)} (${s.slice} s)`),
      ],
      ["V8 heap used at the end", both((s) => mib(s.heapUsed))],
      [
        "one scrape of /metrics",
        both(
          (s) => `${s.scrapeSeries} samples, ${(s.scrapeBytes / 1024 / 1024).toFixed(1)} MiB, ${seconds(s.scrapeMs)}`,
        ),
      ],
    ];
    for (const checkout of checkouts) {
      const incremental = windows.find((w) => w.checkout === checkout && w.mode === "incremental")?.s;
      const full = windows.find((w) => w.checkout === checkout && w.mode === "full")?.s;
      if (incremental && full)
        steadyRows.push([
          `incremental / full, per no-op reconcile${checkouts.length > 1 ? `, ${checkout}` : ""}`,
          `entries ${pct(incremental.entriesPerCycle, full.entriesPerCycle)}, CPU ${pct(incremental.cpuPerCycle, full.cpuPerCycle)} whole window, ` +
            `${pct(incremental.warmCpuPerCycle, full.warmCpuPerCycle)} after the warm-up (goal ≤ 1 %)`,
        ]);
    }
    log("");
    log(
      `date ${new Date().toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? "?"}; Node ${process.version}; Samba ${sambaVersion ?? "?"}` +
        `; steady state polls Git ${flags["source-interval"] === undefined ? "every cycle" : `every ${flags["source-interval"]} (--source-interval)`}`,
    );
    const width = Math.max(...rows.map((r) => r[0].length));
    log(`| ${"measure".padEnd(width)} | result |`);
    log(`| ${"-".repeat(width)} | ------ |`);
    for (const [what, value] of rows) log(`| ${what.padEnd(width)} | ${value} |`);
    log("");
    log(
      `steady state, --interval 10s, --mode ${flags.mode}, nothing to change, ${seconds(STEADY_MS)} each, one after the other:`,
    );
    const w2 = Math.max(...steadyRows.map((r) => r[0].length));
    const heads = windows.map((w) => w.head);
    log(`| ${"measure".padEnd(w2)} | ${heads.join(" | ")} |`);
    log(`| ${"-".repeat(w2)} | ${heads.map(() => "---------------------").join(" | ")} |`);
    for (const [what, value] of steadyRows) log(`| ${what.padEnd(w2)} | ${value} |`);
    if (profileDir !== undefined) {
      log("");
      log(`hottest functions of the steady-state process by self time (${profileDir}):`);
      for (const line of hottest(profileDir, 15)) log(`  ${line}`);
    }
    for (const heap of heaps) {
      log("");
      log(
        `heap snapshot of a steady-state process of ${heap.checkout} (${heapDir}): RSS ${mib(heap.rssBytes)} (median over the minute before), heap used ${mib(heap.heapUsed)}`,
      );
      for (const line of heap.summary) log(`  ${line}`);
    }
    return 0;
  } finally {
    for (const c of running) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    repo?.remove();
    await dc?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
