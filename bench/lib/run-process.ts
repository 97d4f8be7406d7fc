// `gmsa-gitops run` as a child process of a bench, its stdout handed over line by line.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
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
