// Benchmark: `gmsa-gitops validate DIR` of a generated repository of 10,000 resources, end to
// end, as a user runs it: a process of its own, start-up, reading, parsing, checks and output.
// Run: npx node bench/validate.ts [--resources N] [--runs N] [--keep] [--against CHECKOUT] [--node-flag F]...
// Prints, per run, wall time, CPU time and peak RSS of that process. The first run starts with
// an empty compile cache (a first run after installing or upgrading); the others are warm.
// --against CHECKOUT alternates every run with the same command of another checkout (e.g. a
// worktree of main), each with its own compile cache, so that both see the same load;
// --node-flag=F (the "=" is needed) passes a Node or V8 flag to this checkout's process only.
// The load average is printed before and after: on a shared machine it says how far the
// figures can be trusted.
// Goal on a 2-core machine: under 1 s and under 150 MB peak RSS.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    resources: { type: "string", default: "10000" },
    runs: { type: "string", default: "4" },
    keep: { type: "boolean", default: false },
    "generate-into": { type: "string" },
    against: { type: "string" },
    "node-flag": { type: "string", multiple: true, default: [] },
  },
});
const target = Number(values.resources);

/**
 * One application = 4 resources in 2 files: a host group (3 computers, every fifth nested in
 * a shared tier group), a gMSA with SPNs allowed through that group, and 2 host bindings.
 */
function generate(dir: string, resources: number): { files: number; resources: number } {
  const apps = Math.floor((resources - 2) / 4);
  let files = 0;
  let count = 0;
  const write = (path: string, text: string): void => {
    writeFileSync(join(dir, path), text);
    files++;
  };
  mkdirSync(join(dir, "platform"));
  write(
    "platform/base.yaml",
    `# Forest-wide prerequisites.
apiVersion: gmsa-gitops.io/v1alpha1
kind: KdsRootKey
metadata:
  name: default
spec:
  effectiveImmediately: false
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: tier1-servers
spec:
  accountName: Tier1-Servers
  scope: Global
  membership: exact
  members:
    - computer: TIER1-A
    - computer: TIER1-B
`,
  );
  count += 2;
  for (let i = 0; i < apps; i++) {
    const app = `app${i}`;
    const hosts = [0, 1, 2].map((h) => `S${i}-${h}`);
    mkdirSync(join(dir, "apps", app), { recursive: true });
    write(
      `apps/${app}/account.yaml`,
      `# ${app}: the account and the computers allowed to retrieve its password.
apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: ${app}-hosts
  labels:
    team: team-${i % 50}
spec:
  accountName: GMSA-${app}-Hosts
  scope: ${i % 3 === 0 ? "DomainLocal" : "Global"}
  description: Computers allowed to retrieve the password of ${app}
  membership: exact
  members:
${hosts.map((h) => `    - computer: ${h}`).join("\n")}${i % 5 === 0 ? "\n    - group: tier1-servers" : ""}
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: ${app}
  annotations:
    owner: team-${i % 50}@company.local
spec:
  accountName: gMSA-${i}
  dnsHostName: ${app}.company.local
  description: Service account of ${app}
  kerberosEncryptionTypes: [AES128, AES256]
  managedPasswordIntervalInDays: 30
  servicePrincipalNames:
    - HTTP/${app}.company.local
    - HTTP/${app}
  principalsAllowedToRetrieveManagedPassword:
    - group: ${app}-hosts
`,
    );
    write(
      `apps/${app}/bindings.yaml`,
      [0, 1]
        .map(
          (h) => `apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: ${app}-s${h}
spec:
  host: ${hosts[h]}
  account: ${app}
  localGroups: [IIS_IUSRS]
  logonRights: [SeServiceLogonRight, SeBatchLogonRight]
  services:
    - name: ${app}-svc
  scheduledTasks:
    - name: ${app} nightly
      path: \\Apps\\
      runLevel: Highest
  iisAppPools:
    - name: ${app}Pool
`,
        )
        .join("---\n"),
    );
    count += 4;
  }
  return { files, resources: count };
}

// Generation runs in a child process so that the peak RSS printed below is the loader's own.
if (values["generate-into"]) {
  process.stdout.write(JSON.stringify(generate(values["generate-into"], target)));
  process.exit(0);
}

const BIN = fileURLToPath(new URL("../bin/gmsa-gitops.mjs", import.meta.url));
/** Printed by the measured process as it exits: its own CPU time and peak RSS. */
const REPORT =
  'process.on("exit",()=>{const u=process.resourceUsage();' +
  'process.stderr.write("\\nUSAGE "+JSON.stringify({cpu:(u.userCPUTime+u.systemCPUTime)/1000,rss:u.maxRSS*1024})+"\\n")})';

interface Measured {
  wall: number;
  cpu: number;
  rss: number;
  stdout: string;
}

/** One `gmsa-gitops validate DIR` process of `bin`, with its compile cache in `cache`. */
function validate(dir: string, cache: string, bin = BIN, flags: readonly string[] = []): Measured {
  const started = performance.now();
  const child = spawnSync(
    process.execPath,
    [...flags, "--import", `data:text/javascript,${encodeURIComponent(REPORT)}`, bin, "validate", dir],
    { encoding: "utf8", env: { ...process.env, XDG_CACHE_HOME: cache }, maxBuffer: 256 * 1024 * 1024 },
  );
  const wall = performance.now() - started;
  const [stderr = "", usage = "{}"] = child.stderr.split("\nUSAGE ");
  if (child.status !== 0) throw new Error(`validate exited ${child.status}: ${child.stdout.slice(0, 2000)}${stderr}`);
  const { cpu, rss } = JSON.parse(usage) as { cpu: number; rss: number };
  return { wall, cpu, rss, stdout: child.stdout };
}

const dir = mkdtempSync(join(tmpdir(), "gmsa-bench-"));
try {
  const repo = join(dir, "repo");
  mkdirSync(repo);
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), "--resources", String(target), "--generate-into", repo],
    { encoding: "utf8" },
  );
  if (child.status !== 0) throw new Error(`generation failed: ${child.stderr}`);
  const generated = JSON.parse(child.stdout) as { files: number; resources: number };
  console.log(`repository:    ${generated.resources} resources in ${generated.files} files`);
  const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  const load = (): string =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  const contenders = [{ label: "this", bin: BIN, flags: values["node-flag"] }];
  if (values.against) {
    const bin = join(resolve(values.against), "bin", "gmsa-gitops.mjs");
    if (!existsSync(bin)) throw new Error(`--against: no ${bin}`);
    contenders.push({ label: "against", bin, flags: [] });
  }
  console.log(`load average:  ${load()} (before)`);
  const runs = new Map<string, Measured[]>(contenders.map((c) => [c.label, []]));
  for (let i = 0; i < Number(values.runs); i++) {
    for (const c of contenders) {
      const run = validate(repo, join(dir, `cache-${c.label}`), c.bin, c.flags);
      runs.get(c.label)?.push(run);
      // CPU time too: on a shared machine wall time mostly measures the neighbours.
      const who = contenders.length > 1 ? `${c.label} ` : "";
      console.log(
        `${who}run ${i + 1} (${i === 0 ? "cold" : "warm"}):  ${run.wall.toFixed(0)} ms wall, ${run.cpu.toFixed(0)} ms CPU, peak RSS ${mb(run.rss)}`,
      );
    }
  }
  console.log(`load average:  ${load()} (after)`);
  for (const c of contenders) {
    const all = runs.get(c.label) ?? [];
    const who = contenders.length > 1 ? ` (${c.label})` : "";
    console.log(`output${who}:        ${all[0]?.stdout.trim()}`);
    const warm = all.slice(1);
    const median = (pick: (r: Measured) => number): number => {
      const sorted = warm.map(pick).sort((a, b) => a - b);
      return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN;
    };
    if (warm.length > 0)
      console.log(
        `warm median${who}:   ${median((r) => r.wall).toFixed(0)} ms wall, ${median((r) => r.cpu).toFixed(0)} ms CPU, peak RSS ${mb(Math.max(...warm.map((r) => r.rss)))} (highest)`,
      );
  }
} finally {
  if (values.keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
