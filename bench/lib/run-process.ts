// `gmsa-gitops run` as a child process of a bench, its stdout handed over line by line, and what
// the kernel says the process uses (/proc), sampled while it runs.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A started `run` process and the promise of its exit code. */
export interface RunProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `node NODE_FLAGS CHECKOUT/bin/gmsa-gitops.mjs run --log-format json ARGS` with a bare
 * environment, stderr forwarded to ours, each complete stdout line passed to `onLine` as it arrives.
 */
export function spawnRun(
  checkout: string,
  args: readonly string[],
  nodeFlags: readonly string[],
  onLine: (line: string) => void,
): RunProcess {
  const entry = join(checkout, "bin", "gmsa-gitops.mjs");
  const child = spawn(process.execPath, [...nodeFlags, entry, "run", "--log-format", "json", ...args], {
    cwd: checkout,
    env: { PATH: process.env["PATH"], HOME: tmpdir() },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let partial = "";
  child.stdout.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString("utf8")).split("\n");
    partial = parts.pop() ?? "";
    for (const part of parts) onLine(part);
  });
  child.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, exited };
}

/**
 * Stops a `run` process as a supervisor would: SIGTERM, then up to `graceMs` for it to exit.
 * Throws if it exits non-zero, or if it has not exited by then (it is then SIGKILLed). The grace
 * timer is cleared once the process exits, so that it does not hold the bench's own exit back.
 */
export async function stopRun(run: RunProcess, graceMs: number): Promise<void> {
  const { child } = run;
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), graceMs);
  });
  const code = await Promise.race([run.exited, grace]).finally(() => clearTimeout(timer));
  if (code === "timeout") {
    child.kill("SIGKILL");
    throw new Error(`the controller did not exit within ${graceMs / 1000} s of SIGTERM`);
  }
  assert.equal(code, 0, "the controller exited non-zero after SIGTERM");
}

/** CPU time and memory of a process, from /proc. */
export interface Usage {
  /**
   * utime + stime: user and system CPU seconds, every thread of the process included, and those
   * of its children alive now (their own, not their children's). The controller's poll shell
   * (controller/source/poll-shell.ts) forks git for it, work the controller did itself before.
   * A git process that is reaped counts in neither: not before the shell, not after.
   */
  readonly cpuSeconds: number;
  /** VmRSS, in bytes. */
  readonly rssBytes: number;
  /** VmHWM, in bytes: the kernel's own high-water mark of the RSS. */
  readonly hwmBytes: number;
}

/** The usage of process `pid` now (Linux /proc/PID/stat and /proc/PID/status); throws if it is gone. */
export function usage(pid: number): Usage {
  const ticks = cpuTicks(pid) + childPids(pid).reduce((sum, child) => sum + (tryCpuTicks(child) ?? 0), 0);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, rssBytes: kb("VmRSS") * 1024, hwmBytes: kb("VmHWM") * 1024 };
}

/** utime + stime of process `pid`, in clock ticks (100 per second on Linux); throws if it is gone. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // After the command name, which may hold spaces: "(name) state ppid ...".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat.
  return Number(fields[11]) + Number(fields[12]);
}

/** cpuTicks, or undefined for a process that ended meanwhile. */
function tryCpuTicks(pid: number): number | undefined {
  try {
    return cpuTicks(pid);
  } catch {
    return undefined;
  }
}

/** The process ids of `pid`'s children, from every thread's /proc children list. */
function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let list: string;
    try {
      list = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8");
    } catch {
      continue; // the thread ended
    }
    for (const child of list.trim().split(" ")) if (child !== "") pids.push(Number(child));
  }
  return pids;
}

/**
 * The steady-state sampling loop: waits a second, calls `take`, and again, as long as
 * `performance.now()` is before `until`; returns what each call gave, in order.
 */
export async function sampleEverySecond<T>(until: number, take: () => T | Promise<T>): Promise<T[]> {
  const samples: T[] = [];
  while (performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    samples.push(await take());
  }
  return samples;
}
