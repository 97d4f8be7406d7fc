// Runs every benchmark (bench/*.ts except this file), one after another, each in its own
// process with this same Node, output forwarded. Exits non-zero when any of them fails.
//
//   node bench/run.ts [NAME...]    only the benches whose file name (without .ts) is given
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";

const here = import.meta.dirname;
const self = basename(import.meta.filename);
const only = process.argv.slice(2);
const benches = readdirSync(here, { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith(".ts") && e.name !== self)
  .map((e) => e.name)
  .filter((name) => only.length === 0 || only.includes(name.slice(0, -".ts".length)))
  .sort();

function run(file: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, file)], { stdio: "inherit" });
    child.on("error", (error) => {
      process.stderr.write(`bench ${file}: ${error.message}\n`);
      resolve(1);
    });
    child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const failed: string[] = [];
if (benches.length === 0) {
  process.stderr.write(`no bench matches ${only.join(", ")}\n`);
  failed.push("(none)");
}
for (const file of benches) {
  process.stdout.write(`\n=== bench/${file}\n`);
  const started = performance.now();
  const code = await run(file);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`=== bench/${file}: ${code === 0 ? "ok" : `FAILED (exit ${code})`} in ${seconds} s\n`);
  if (code !== 0) failed.push(file);
}
if (failed.length > 0) process.stderr.write(`failed: ${failed.join(", ")}\n`);
process.exitCode = failed.length > 0 ? 1 : 0;
