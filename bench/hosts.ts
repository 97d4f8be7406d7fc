// Fleet benchmark for the ssh host driver: N test hosts (one doubles JSON each) behind one real
// sshd, every request running the real host script in a real pwsh 7.
//
//   npx node bench/hosts.ts [--hosts 50] [--concurrency 8] [--baseline 5]
//
// 1. baseline: `--baseline` hosts one after another (no contention); the slowest is "the slowest
//    single host".
// 2. fleet observe and fleet apply of all hosts with bounded concurrency.
// Reports wall time, wall / slowest single host (the ideal is about hosts / concurrency when
// the machine has enough cores for `concurrency` pwsh processes), per-host latency, the
// controller's peak RSS and the peak total RSS of the pwsh processes it caused.
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { FleetJob, FleetOutcome, HostMode } from "../controller/hosts/index.ts";
import { bindingRequest, createSshDriver, runFleet } from "../controller/hosts/index.ts";
import { launcherShell, readHostState, sampleHost, writeHostState } from "../test/harness/pwsh-doubles/state.ts";
import { startSshd } from "../test/harness/sshd.ts";

const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "50" },
    concurrency: { type: "string", default: "8" },
    baseline: { type: "string", default: "5" },
  },
});
const hostCount = Number(values.hosts);
const concurrency = Number(values.concurrency);
const baselineCount = Math.min(Number(values.baseline), hostCount);

/**
 * Sums the RSS (KiB) of every PowerShell process from /proc: the host side of the benchmark.
 * The .NET tool's `pwsh` is a launcher that starts `dotnet .../pwsh.dll`, so both count.
 */
function pwshRssKiB(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!/pwsh/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"))) continue;
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const rss = /^VmRSS:\s*(\d+) kB$/m.exec(status);
      if (rss?.[1] !== undefined) total += Number(rss[1]);
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

/** CPU seconds of all finished ssh sessions (children of the sshd listener), from /proc. */
function sessionCpuSeconds(sshdPid: number): number {
  const stat = readFileSync(`/proc/${sshdPid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of stat (cutime, cstime) are at 13 and 14 after the command name; USER_HZ is 100 on Linux.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const sshd = await startSshd({ maxStartups: Math.max(200, concurrency * 2) });
try {
  const driver = await createSshDriver({
    privateKeyPath: sshd.clientKeyPath,
    knownHostsPath: sshd.knownHostsPath,
    username: sshd.username,
    commandTimeoutMs: 300_000,
  });
  const hosts: { computer: string; statePath: string }[] = [];
  for (let i = 1; i <= hostCount; i++) {
    const computer = `BENCH${String(i).padStart(3, "0")}`;
    const state = sampleHost(computer);
    state.retrievable = { "MSA-service1": true };
    // Distinct hosts: a different number of extra services on each.
    for (let s = 0; s < i % 7; s++)
      state.services.push({ Name: `Extra${s}`, StartName: "LocalSystem", State: "Running" });
    const statePath = join(sshd.dir, `${computer}.json`);
    await writeHostState(statePath, state);
    hosts.push({ computer, statePath });
  }
  const binding = bindingRequest("bench", "MSA-service1", {
    localGroups: ["Administrators"],
    logonRights: ["SeServiceLogonRight", "SeBatchLogonRight"],
    services: [{ name: "MyService" }],
    scheduledTasks: [{ name: "My Script", path: "\\SCSM\\", runLevel: "Highest" }],
    iisAppPools: [{ name: "ReportsPool" }],
  });
  const jobs = (mode: HostMode, subset = hosts): FleetJob[] =>
    subset.map((h) => ({
      target: { host: h.computer, address: sshd.address, port: sshd.port, shell: launcherShell(h.statePath) },
      request: { version: 2, mode, host: h.computer, domain: "COMPANY", bindings: [binding] },
    }));

  let pwshPeak = 0;
  const sampler = setInterval(() => (pwshPeak = Math.max(pwshPeak, pwshRssKiB())), 200);

  async function measure(
    label: string,
    list: FleetJob[],
    c: number,
  ): Promise<{ wallMs: number; outcomes: FleetOutcome[]; cpuPerHost: number; pwshPeakKiB: number }> {
    pwshPeak = 0;
    const cpuBefore = sessionCpuSeconds(sshd.pid);
    const started = performance.now();
    const outcomes = await runFleet(driver, list, { concurrency: c });
    const wallMs = performance.now() - started;
    const cpuPerHost = (sessionCpuSeconds(sshd.pid) - cpuBefore) / list.length;
    const failed = outcomes.filter((o) => !o.ok);
    const d = outcomes.map((o) => o.durationMs).sort((a, b) => a - b);
    console.log(
      `${label.padEnd(16)} hosts=${list.length} concurrency=${c} wall=${(wallMs / 1000).toFixed(1)}s ` +
        `per-host p50=${(percentile(d, 50) / 1000).toFixed(1)}s p95=${(percentile(d, 95) / 1000).toFixed(1)}s ` +
        `max=${(percentile(d, 100) / 1000).toFixed(1)}s failed=${failed.length} pwsh-peak-rss=${(pwshPeak / 1024).toFixed(0)}MiB ` +
        `host-cpu-per-host=${cpuPerHost.toFixed(2)}s`,
    );
    for (const f of failed) if (!f.ok) console.log(`  ${f.target.host}: ${f.error.reason} ${f.error.message}`);
    return { wallMs, outcomes, cpuPerHost, pwshPeakKiB: pwshPeak };
  }

  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  const baseline = await measure("baseline (serial)", jobs("observe", hosts.slice(0, baselineCount)), 1);
  const slowestSingle = Math.max(...baseline.outcomes.map((o) => o.durationMs));
  const observe = await measure("fleet observe", jobs("observe"), concurrency);
  const apply = await measure("fleet apply", jobs("apply"), concurrency);
  clearInterval(sampler);

  // Independent check: every host's JSON now holds the identity.
  let applied = 0;
  for (const h of hosts) {
    const s = await readHostState(h.statePath);
    if (s.services.find((x) => x.Name === "MyService")?.StartName === "COMPANY\\MSA-service1$") applied++;
  }
  const summary = {
    hosts: hostCount,
    concurrency,
    cores: availableParallelism(),
    slowestSingleHostMs: Math.round(slowestSingle),
    observeWallMs: Math.round(observe.wallMs),
    applyWallMs: Math.round(apply.wallMs),
    observeRatioToSlowestSingle: Number((observe.wallMs / slowestSingle).toFixed(2)),
    applyRatioToSlowestSingle: Number((apply.wallMs / slowestSingle).toFixed(2)),
    idealRatio: Math.ceil(hostCount / concurrency),
    // Each run is CPU-bound pwsh start-up and JIT: with fewer cores than `concurrency`, the floor
    // is hosts x CPU per host / cores, whatever the concurrency.
    hostCpuSecondsPerHost: Number(observe.cpuPerHost.toFixed(2)),
    cpuBoundFloorMs: Math.round((hostCount * observe.cpuPerHost * 1000) / availableParallelism()),
    pwshPeakRssMiB: Math.round(Math.max(observe.pwshPeakKiB, apply.pwshPeakKiB) / 1024),
    controllerPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    hostsApplied: applied,
    loadAverageAfter: loadavg().map((l) => Number(l.toFixed(1))),
  };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  await sshd.stop();
}
