/** Runs Prometheus's own checker, the independent judge of what the controller exposes. */
import { spawn } from "node:child_process";

/** Runs `promtool ARGS` with `stdin` as its input; resolves with its exit code and its output. */
export function runPromtool(args: readonly string[], stdin?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("promtool", args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(stdin ?? "");
  });
}
