// The benches' view of a controller process: its CPU time and memory read from /proc (checked
// against ps), the once-a-second sampling loop, and the stop that must not hold the bench's own
// exit back once the process has gone.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { expect, it } from "vitest";
import { sampleEverySecond, usage } from "../bench/lib/run-process.ts";

it("reads a process's CPU seconds, RSS and RSS high-water mark as ps and the process itself see them", async () => {
  // 128 MiB touched, then about a second of CPU, then idle until killed.
  const script = [
    "const held = Buffer.alloc(128 * 1024 * 1024, 1);",
    "const t = Date.now(); while (Date.now() - t < 1000);",
    "console.log('ready'); setInterval(() => held.length, 1000);",
  ].join("\n");
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await once(child.stdout, "data");
    const u = usage(child.pid!);
    const psRssBytes = Number(execFileSync("ps", ["-o", "rss=", "-p", String(child.pid)], { encoding: "utf8" })) * 1024;
    expect(u.rssBytes).toBeGreaterThan(128 * 1024 * 1024);
    expect(Math.abs(u.rssBytes - psRssBytes)).toBeLessThan(8 * 1024 * 1024);
    expect(u.hwmBytes).toBeGreaterThanOrEqual(u.rssBytes);
    expect(u.cpuSeconds).toBeGreaterThanOrEqual(0.8);
    expect(u.cpuSeconds).toBeLessThan(30);
  } finally {
    child.kill("SIGKILL");
  }
});

it("samples once a second until the deadline, in order", async () => {
  const t0 = performance.now();
  let n = 0;
  const samples = await sampleEverySecond(t0 + 1_500, () =>
    Promise.resolve<[number, number]>([++n, performance.now() - t0]),
  );
  expect(samples.map(([k]) => k)).toEqual(samples.map((_, i) => i + 1));
  expect(samples.length).toBeGreaterThanOrEqual(1);
  expect(samples.length).toBeLessThanOrEqual(2);
  for (const [k, at] of samples) expect(at).toBeGreaterThanOrEqual(1_000 * k - 5);
});

it("a bench that stopped its controller exits at once, not when the SIGTERM grace period would have ended", () => {
  const script = [
    `import { spawn } from "node:child_process";`,
    `import { stopRun } from ${JSON.stringify(new URL("../bench/lib/run-process.ts", import.meta.url).href)};`,
    `const child = spawn(process.execPath, ["-e", "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); console.log('up')"], { stdio: ["ignore", "pipe", "inherit"] });`,
    `const exited = new Promise((resolve) => child.on("close", resolve));`,
    `await new Promise((resolve) => child.stdout.once("data", resolve));`,
    `await stopRun({ child, exited }, 60_000);`,
    `console.log("stopped");`,
  ].join("\n");
  const t0 = performance.now();
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(out.trim()).toBe("stopped");
  expect(performance.now() - t0).toBeLessThan(20_000);
});
