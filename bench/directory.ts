// The Active Directory benchmarks: the controller against a real Samba AD DC, side by side with
// ldap-utils doing the same LDAP work in the same run.
//
//   1. A no-op plan of a generated repository (5,000 gMSAs, 500 groups) through the functions the
//      CLI uses (connectDirectory → rootDse → observeDirectory → planDirectory), against
//      ldapsearch paging the same entries and attributes. Goal: ≤ 1.5×.
//   2. Creating 1,000 gMSAs with plan + apply, against one ldapadd of the same entries (the LDIF
//      is what apply itself would send, recorded through a DirectoryWriter). Goal: ≤ 1.3×.
//   3. Peak memory of a fresh `gmsa-gitops plan` process over the 5,000-gMSA repository.
//
// Usage: node bench/directory.ts [--gmsas 5000] [--groups 500] [--computers 200] [--create 1000]
//          [--runs 5] [--create-runs 3] [--cpu-prof DIR] [--dc-tmpdir DIR] [--strict]
// Prints a table; writes only to temp folders. Exits 1 when a step fails (a plan that is not a
// no-op, an action that fails, ldapadd's entries differing from apply's), and with --strict
// also when a goal is missed.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { LdapDirectory } from "../controller/directory/index.ts";
import {
  connectDirectory,
  directoryWriter,
  GMSA_ATTRIBUTES,
  GROUP_ATTRIBUTES,
  MARKER_PREFIX,
  OwnershipKey,
} from "../controller/directory/index.ts";
import type { DesiredState } from "../controller/manifests/index.ts";
import type { DirectoryWriter } from "../controller/directory/index.ts";
import { applyPlan } from "../controller/reconcile/apply.ts";
import type { Plan } from "../controller/reconcile/model.ts";
import { countActions } from "../controller/reconcile/model.ts";
import { observeDirectory } from "../controller/reconcile/observe.ts";
import { planDirectory } from "../controller/reconcile/plan.ts";
import type { Policy } from "../controller/reconcile/plan.ts";
import type { Dc } from "../test/harness/samba.ts";
import { startDc } from "../test/harness/samba.ts";
import { recordingWriter } from "./lib/ldif.ts";
import type { SeedRound } from "./lib/seed.ts";
import { seedRound } from "./lib/seed.ts";
import { parseLdif, runLdapTool } from "./lib/ldap-tools.ts";
import type { Row } from "./lib/measure.ts";
import { formatMs, median, ratioRow, table, timed } from "./lib/measure.ts";
import type { PlanProcessReport } from "./lib/plan-process.ts";
import { computersLdif, countFlag, loadRepo, shapeFromFlags, shapeOptions, writeRepo } from "./lib/repo.ts";

/** The configuration's defaults: enforce, no prune, no adoption. */
const OWNERSHIP_KEY = "bench-ownership-key-0123456789abcdef";
const OWNER = new OwnershipKey("bench", Buffer.from(OWNERSHIP_KEY));
const policy: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };

const { values: flags } = parseArgs({
  options: {
    ...shapeOptions({ gmsas: 5000, groups: 500, computers: 200 }),
    create: { type: "string", default: "1000" },
    runs: { type: "string", default: "5" },
    "create-runs": { type: "string", default: "3" },
    "cpu-prof": { type: "string" },
    "dc-tmpdir": { type: "string" },
    strict: { type: "boolean", default: false },
  },
  strict: true,
});
const SHAPE = shapeFromFlags(flags);
const CREATE = countFlag(flags, "create");
const RUNS = countFlag(flags, "runs");
const CREATE_RUNS = countFlag(flags, "create-runs");
/** sAMAccountName prefixes: the seeded accounts, and the batch created (and deleted) per run. */
const SEED_PREFIX = "bsv";
/** Concurrent ldapadd processes for the seed. */
const SEED_WRITERS = 2;
const CREATE_PREFIX = "bnw";
/** The attributes apply writes on a gMSA: what "ldapadd made the same entries" is checked on. */
const WRITTEN_ATTRIBUTES = [
  "objectClass",
  "sAMAccountName",
  "userAccountControl",
  "dNSHostName",
  "msDS-ManagedPasswordInterval",
  "msDS-SupportedEncryptionTypes",
  "msDS-GroupMSAMembership",
  // Not adminDescription: apply writes the ownership marker after the add, bound to the
  // object's own objectGUID, so no LDIF recorded beforehand can carry it.
  "servicePrincipalName",
  "description",
  "displayName",
];

const log = (line: string): void => void process.stdout.write(`${line}\n`);

function connect(dc: Dc): Promise<LdapDirectory> {
  return connectDirectory({ url: dc.url, caFile: dc.caFile, bindDn: dc.adminDn, bindPassword: dc.adminPassword });
}

/** The time each step of one plan took, in milliseconds. */
interface PlanTimes {
  readonly connect: number;
  readonly observe: number;
  readonly plan: number;
  readonly total: number;
}

/** What `gmsa-gitops plan` does after loading the manifests, step by step: connect, rootDSE, observe, diff + plan. */
async function planWith<T>(
  dc: Dc,
  desired: DesiredState,
  then: (plan: Plan, dir: LdapDirectory) => Promise<T>,
): Promise<{ plan: Plan; times: PlanTimes; result: T }> {
  const t0 = performance.now();
  const dir = await connect(dc);
  try {
    const t1 = performance.now();
    const rootDse = await dir.rootDse();
    const observed = await observeDirectory(desired, dir, {
      baseDn: rootDse.defaultNamingContext,
      configDn: rootDse.configurationNamingContext,
    });
    const t2 = performance.now();
    const plan = planDirectory(desired, observed, policy, new Date());
    const t3 = performance.now();
    const result = await then(plan, dir);
    return { plan, result, times: { connect: t1 - t0, observe: t2 - t1, plan: t3 - t2, total: t3 - t0 } };
  } finally {
    await dir.close();
  }
}

function assertNoOp(plan: Plan): void {
  const changed = plan.resources.filter((r) => r.changes.length > 0 || r.blocker !== undefined);
  assert.equal(countActions(plan), 0, "the no-op plan has actions");
  assert.deepEqual(
    changed.slice(0, 3).map((r) => `${r.resource.kind}/${r.resource.name}`),
    [],
    `${changed.length} resource(s) show drift or a blocker in the no-op plan`,
  );
}

/** Asserts the plan is exactly `n` gMSA creations, nothing else. */
function assertCreates(plan: Plan, n: number): void {
  const types = plan.resources.flatMap((r) => r.actions.map((a) => a.type));
  assert.equal(types.length, n, `expected ${n} actions, the plan has ${types.length}`);
  assert.ok(
    types.every((t) => t === "create-gmsa"),
    "the plan has actions other than create-gmsa",
  );
}

async function applyAll(plan: Plan, writer: DirectoryWriter): Promise<number> {
  const result = await applyPlan(plan, writer, { now: new Date(), owner: OWNER });
  const failed = result.results.filter((r) => r.status !== "applied");
  assert.equal(failed.length, 0, `apply: ${failed.length} action(s) failed, first: ${failed[0]?.message ?? ""}`);
  return result.results.length;
}

/** Entries under the gMSA container whose name starts with prefix, restricted to the attributes apply writes, as text. */
async function snapshot(dc: Dc, prefix: string): Promise<string> {
  const { stdout } = await runLdapTool(
    dc,
    "ldapsearch",
    ["-E", "pr=1000/noprompt", "-b", `CN=Managed Service Accounts,${dc.baseDn}`, "-s", "one"].concat([
      `(sAMAccountName=${prefix}*)`,
      ...WRITTEN_ATTRIBUTES,
    ]),
    "capture",
  );
  const entries = parseLdif(stdout);
  return [...entries]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([dn, attrs]) =>
        `${dn}\n${[...attrs]
          .map(([k, v]) => `  ${k}: ${[...v].sort().join(" | ")}`)
          .sort()
          .join("\n")}`,
    )
    .join("\n");
}

function runPlanProcess(
  dc: Dc,
  args: readonly string[],
  nodeFlags: readonly string[] = [],
): Promise<PlanProcessReport> {
  const script = join(import.meta.dirname, "lib", "plan-process.ts");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, script, ...args], {
      env: { PATH: process.env["PATH"], HOME: dc.dir },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => void (out += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`plan process exited ${code}: ${out}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as PlanProcessReport);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** The version Samba logged at startup ("4.22.11-Debian-..."), or "unknown". */
function sambaVersionOf(dc: Dc): string {
  const logged = readFileSync(join(dc.dir, "log", "samba.log"), "utf8");
  return /samba version (\S+)/.exec(logged)?.[1] ?? "unknown";
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/**
 * Where the DC and the bench's files live. startDc() puts the DC under os.tmpdir(); by default
 * the bench points that at /dev/shm when there is one, so Samba's fsync per write measures the
 * DC and the controller, not the disk of a shared machine (both sides pay the same either way).
 */
function chooseTmpdir(): string {
  const wanted = flags["dc-tmpdir"] ?? (existsSync("/dev/shm") ? "/dev/shm" : undefined);
  // os.tmpdir() reads TMPDIR on every call, and startDc takes no folder: this is its only knob.
  if (wanted !== undefined) process.env["TMPDIR"] = wanted;
  return tmpdir();
}

async function main(): Promise<number> {
  const where = chooseTmpdir();
  const work = mkdtempSync(join(where, "gmsa-bench-"));
  let dc: Dc | undefined;
  try {
    log(
      `directory bench: ${SHAPE.gmsas} gMSAs, ${SHAPE.groups} groups, ${SHAPE.computers} computers; create ${CREATE} × ${CREATE_RUNS}; no-op plan × ${RUNS}`,
    );
    const started = await timed(() => startDc());
    dc = started.value;
    const sambaVersion = sambaVersionOf(dc);
    log(`DC up in ${formatMs(started.ms)} (Samba ${sambaVersion}), its databases under ${where}`);
    const domain = dc.realm.toLowerCase();

    // Two repositories: the seed (groups + accounts), and the seed plus one batch to create.
    const keyFile = join(work, "ownership.key");
    writeFileSync(keyFile, OWNERSHIP_KEY, { mode: 0o600 });
    const seedRepo = join(work, "seed");
    const createRepo = join(work, "create");
    writeRepo(seedRepo, SHAPE, [{ prefix: SEED_PREFIX, count: SHAPE.gmsas }], domain);
    writeRepo(
      createRepo,
      SHAPE,
      [
        { prefix: SEED_PREFIX, count: SHAPE.gmsas },
        { prefix: CREATE_PREFIX, count: CREATE },
      ],
      domain,
    );

    // Seed: computers by ldapadd; then the groups (with their members), then the gMSAs, each by
    // ldapadd of the LDIF our apply produces (recorded: byte-identical, much faster than apply)
    // and their ownership markers (bench/lib/seed.ts).
    const computersFile = join(work, "computers.ldif");
    writeFileSync(computersFile, computersLdif(SHAPE, dc.baseDn, domain));
    const computers = await runLdapTool(dc, "ldapadd", ["-f", computersFile], "discard");
    log(`seed: ${SHAPE.computers} computers by ldapadd in ${formatMs(computers.ms)}`);

    const groupsOnly = await loadRepo(join(seedRepo, "groups"));
    const loadSeed = await timed(() => loadRepo(seedRepo));
    const seed = loadSeed.value;
    // Seeding is not measured: SEED_WRITERS ldapadd processes at once keep both cores busy.
    const seeded = await timed(async () => [
      await seedRound(dc!, groupsOnly, OWNER, work, SEED_WRITERS),
      await seedRound(dc!, seed, OWNER, work, SEED_WRITERS),
    ]);
    const [groups, gmsas] = seeded.value as [SeedRound, SeedRound];
    log(
      `seed: ${groups.adds} groups (${groups.memberChanges} member changes) and ${gmsas.adds} gMSAs by ${SEED_WRITERS} concurrent ldapadd ` +
        `of apply's recorded LDIF, then their markers, in ${formatMs(seeded.ms)} (${formatMs(gmsas.addMs / SHAPE.gmsas)} per gMSA add; ` +
        `the plan of the gMSA creations took ${formatMs(gmsas.planMs)})`,
    );

    // 1. No-op plan vs ldapsearch, interleaved so both see the same DC state and cache; one warm-up each.
    const gmsaSearch = [
      "-E",
      "pr=1000/noprompt",
      "-b",
      dc.baseDn,
      "-s",
      "sub",
      "(objectClass=msDS-GroupManagedServiceAccount)",
      ...GMSA_ATTRIBUTES,
    ];
    const groupSearch = [
      "-E",
      "pr=1000/noprompt",
      "-b",
      dc.baseDn,
      "-s",
      "sub",
      `(&(objectClass=group)(adminDescription=${MARKER_PREFIX}*))`,
      ...GROUP_ATTRIBUTES,
    ];
    const ours: PlanTimes[] = [];
    const searchMs: number[] = [];
    const searchGmsaMs: number[] = [];
    for (let run = 0; run <= RUNS; run++) {
      const p = await planWith(dc, seed, () => Promise.resolve());
      assertNoOp(p.plan);
      const g = await runLdapTool(dc, "ldapsearch", gmsaSearch, "discard");
      const s = await runLdapTool(dc, "ldapsearch", groupSearch, "discard");
      if (run === 0) continue; // warm-up
      ours.push(p.times);
      searchGmsaMs.push(g.ms);
      searchMs.push(g.ms + s.ms);
    }
    const noop = ratioRow(
      `no-op plan, ${SHAPE.gmsas} gMSAs + ${SHAPE.groups} groups (median of ${RUNS})`,
      ours.map((t) => t.total),
      searchMs,
      1.5,
    );
    log(
      `no-op plan steps (median): connect+bind ${formatMs(median(ours.map((t) => t.connect)))}, ` +
        `rootDSE+observe ${formatMs(median(ours.map((t) => t.observe)))}, diff+plan ${formatMs(median(ours.map((t) => t.plan)))}; ` +
        `ldapsearch gMSAs alone ${formatMs(median(searchGmsaMs))}; loading the manifests (not in the ratio) ${formatMs(loadSeed.ms)}`,
    );

    // 3. Peak memory of a fresh CLI plan process over the seed repository.
    const cliArgs = ["--", "plan", "--repo", seedRepo, "--ldap-url", dc.url, "--bind-dn", dc.adminDn].concat([
      "--bind-password-file",
      dc.passwordFile,
      "--ca-file",
      dc.caFile,
      "--owner-id",
      OWNER.ownerId,
      "--ownership-key-file",
      keyFile,
    ]);
    const idle = await runPlanProcess(dc, ["--idle"]);
    const cli = await runPlanProcess(dc, cliArgs);
    assert.equal(cli.exitCode, 0, `gmsa-gitops plan exited ${cli.exitCode} (0 = no changes): ${cli.stderr}`);
    log(
      `CLI plan process: ${formatMs(cli.wallMs)} wall (manifests included), peak RSS ${mib(cli.maxRssBytes)}, peak heap ${mib(cli.peakHeapUsedBytes)}; an idle process with the CLI loaded: ${mib(idle.maxRssBytes)}`,
    );
    if (flags["cpu-prof"] !== undefined) {
      await runPlanProcess(dc, cliArgs, ["--cpu-prof", "--cpu-prof-dir", flags["cpu-prof"]]);
      log(`CPU profile of the CLI plan written to ${flags["cpu-prof"]}`);
    }

    // 2. Create CREATE gMSAs: plan + apply vs one ldapadd of the same LDIF, interleaved; the batch is deleted after each run.
    const loadCreate = await timed(() => loadRepo(createRepo));
    const desired = loadCreate.value;
    const batch = recordingWriter();
    await planWith(dc, desired, async (plan) => {
      assertCreates(plan, CREATE);
      return applyAll(plan, batch.writer);
    });
    const batchFile = join(work, "batch.ldif");
    const dnsFile = join(work, "batch.dns");
    writeFileSync(batchFile, batch.ldif());
    writeFileSync(dnsFile, `${batch.dns.join("\n")}\n`);
    const applyMs: number[] = [];
    const applyPlanMs: number[] = [];
    const addMs: number[] = [];
    const deleteMs: number[] = [];
    let applied = "";
    let added = "";
    for (let run = 0; run < CREATE_RUNS; run++) {
      const a = await timed(() =>
        planWith(dc!, desired, async (plan, dir) => {
          assertCreates(plan, CREATE);
          return applyAll(plan, directoryWriter(dir));
        }),
      );
      applyMs.push(a.ms);
      applyPlanMs.push(a.value.times.total);
      if (run === 0) applied = await snapshot(dc, CREATE_PREFIX);
      deleteMs.push((await runLdapTool(dc, "ldapdelete", ["-c", "-f", dnsFile], "discard")).ms);

      const l = await runLdapTool(dc, "ldapadd", ["-f", batchFile], "discard");
      addMs.push(l.ms);
      if (run === 0) added = await snapshot(dc, CREATE_PREFIX);
      deleteMs.push((await runLdapTool(dc, "ldapdelete", ["-c", "-f", dnsFile], "discard")).ms);
    }
    assert.equal(added, applied, "the entries ldapadd created differ from those apply created");
    assert.ok(applied.split("\n").filter((l) => l.startsWith("cn=")).length === CREATE, "snapshot misses entries");
    const create = ratioRow(`create ${CREATE} gMSAs, plan + apply (median of ${CREATE_RUNS})`, applyMs, addMs, 1.3);
    log(
      `create: the plan part took ${formatMs(median(applyPlanMs))} (median); ` +
        `${formatMs(median(addMs) / CREATE)} per gMSA for ldapadd; deleting a batch took ${formatMs(median(deleteMs))}; ` +
        `loading the ${SHAPE.gmsas + CREATE}-account repository (not in the ratio) ${formatMs(loadCreate.ms)}`,
    );

    const rows: Row[] = [
      noop,
      create,
      {
        measure: `peak RSS of \`gmsa-gitops plan\` (${SHAPE.gmsas} gMSAs, no-op)`,
        ours: mib(cli.maxRssBytes),
        baseline: `${mib(idle.maxRssBytes)} idle`,
        ratio: "",
        goal: "(reported)",
        met: "",
      },
    ];
    log("");
    log(
      `date ${new Date().toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? "?"}; Node ${process.version}; Samba ${sambaVersion}`,
    );
    log(table(rows));
    const missed = [noop, create].filter((r) => !r.ok);
    if (missed.length > 0) log(`goal missed: ${missed.map((r) => r.measure).join("; ")}`);
    return flags.strict && missed.length > 0 ? 1 : 0;
  } finally {
    await dc?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
