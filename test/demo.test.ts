/**
 * The README's demo, run as a person would pipe it to a file: `node scripts/demo.ts` with its
 * output not a terminal. A real Samba AD DC, a real Git repository, the real controller.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
let demo: ChildProcess | undefined;
let output = "";

function waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const match = pattern.exec(output);
      if (match) {
        clearInterval(poll);
        resolve(match);
      } else if (Date.now() - started > timeoutMs || demo?.exitCode != null) {
        clearInterval(poll);
        reject(new Error(`no ${String(pattern)} in the demo's output:\n${output.slice(-3000)}`));
      }
    }, 200);
  });
}

afterAll(async () => {
  if (demo && demo.exitCode === null) {
    const exited = new Promise((r) => demo!.once("exit", r));
    demo.kill("SIGINT");
    await exited;
  }
});

describe("the demo with its output piped", () => {
  it("serves metrics on a port other than Prometheus's 9090, without colour codes or a claim of a last good revision", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env["GMSA_GITOPS_DEMO_LISTEN"];
    demo = spawn(process.execPath, ["scripts/demo.ts"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    demo.stdout?.on("data", (c: Buffer) => (output += c.toString("utf8")));
    demo.stderr?.on("data", (c: Buffer) => (output += c.toString("utf8")));

    const [, url, port] = await waitFor(/metrics: +(http:\/\/127\.0\.0\.1:(\d+))\/metrics/, 180_000);
    expect(Number(port)).not.toBe(9090);
    await waitFor(/new revision loaded/, 60_000);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain("gmsa_gitops_source_info");
    // What is running, as `run` exports it: the demo is where an SRE first looks for it.
    expect(metrics).toMatch(/^gmsa_gitops_build_info\{version="\d+\.\d+\.\d+",node="v\d+[^"]*"[^}]*\} 1$/m);

    // Not a terminal: plain text a file or a CI log can hold.
    expect(output).not.toContain("\u001b[");
    // Nothing was in force before the first revision loaded.
    expect(output.slice(0, output.indexOf("new revision loaded"))).not.toContain("last good revision");

    const exited = new Promise<number | null>((r) => demo!.once("exit", (code) => r(code)));
    demo.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(output).toContain("Cleaned up.");
  }, 300_000);
});
