// The Node.js default metrics sample the event loop's delay with a timer; at prom-client's
// default resolution (10 ms) that timer cost an idle controller more CPU than a quiet cycle's
// own work (docs/benchmarks.md). Measured in a child process of its own, so nothing else of the
// test runner counts.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const recorder = join(import.meta.dirname, "recorder.ts");

/** CPU milliseconds per second of a process that holds a recorder (with or without the default metrics) and waits. */
async function idleCpuPerSecond(collectDefault: boolean): Promise<number> {
  const script = `
    import { createMetricsRecorder } from ${JSON.stringify(recorder)};
    globalThis.kept = createMetricsRecorder({ collectDefault: ${collectDefault} });
    await new Promise((r) => setTimeout(r, 1000));
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 5000));
    const c = process.cpuUsage(c0);
    process.stdout.write(String((c.user + c.system) / 1000 / 5));
  `;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script]);
  return Number(stdout);
}

describe("the default metrics of an idle process", () => {
  it("cost less than 3 ms of CPU per second more than a recorder without them", async () => {
    const [without, withDefaults] = await Promise.all([idleCpuPerSecond(false), idleCpuPerSecond(true)]);
    expect(withDefaults - without).toBeLessThan(3);
  }, 30_000);
});
