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

  it("report no event-loop delay of a second, nor a sentinel, for an idle process scraped twice in a row", async () => {
    // An idle loop has no delay to speak of. The delay histogram's timer at a 1 s resolution
    // reports the time between its own ticks (about 1 s) and, scraped again before its next
    // tick, the empty histogram's sentinels (a minimum of 2^63 ns, a mean of NaN).
    const script = `
      import { createMetricsRecorder } from ${JSON.stringify(recorder)};
      const { registry } = createMetricsRecorder({ collectDefault: true });
      await new Promise((r) => setTimeout(r, 2500));
      const first = await registry.metrics();
      const second = await registry.metrics();
      process.stdout.write(JSON.stringify([first, second]));
    `;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script]);
    for (const text of JSON.parse(stdout) as string[]) {
      const lags = text.split("\n").filter((l) => l.startsWith("nodejs_eventloop_lag_"));
      expect(lags.length).toBeGreaterThan(0);
      for (const line of lags) {
        const value = Number(line.slice(line.lastIndexOf(" ") + 1));
        expect({ line, finite: Number.isFinite(value) }).toEqual({ line, finite: true });
        expect(value, line).toBeLessThan(0.5);
      }
    }
  }, 30_000);
});
