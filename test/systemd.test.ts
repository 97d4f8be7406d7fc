/**
 * deploy/systemd/gmsa-gitops.service, checked by systemd's own tools: `systemd-analyze verify`
 * (syntax, and that ExecStart's program exists and is executable) and `systemd-analyze security`
 * (the exposure rating of its sandboxing). The unit names the install folder /opt/gmsa-gitops;
 * the test points a copy of it at this checkout, which has the same layout.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { SETTINGS } from "../controller/config/index.ts";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "..");
const unitText = readFileSync(join(root, "deploy/systemd/gmsa-gitops.service"), "utf8");
const temp = mkdtempSync(join(tmpdir(), "gmsa-systemd-"));
const unitPath = join(temp, "gmsa-gitops.service");
writeFileSync(unitPath, unitText.replaceAll("/opt/gmsa-gitops", root));

afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** The values of a [Service] directive, in order. */
function directive(name: string): string[] {
  return [...unitText.matchAll(new RegExp(`^${name}=(.*)$`, "gm"))].map((m) => m[1]!.trim());
}

async function analyze(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await exec("systemd-analyze", args, { cwd: temp });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe("the systemd unit", () => {
  it("passes systemd-analyze verify", async () => {
    const result = await analyze(["verify", unitPath]);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });

  it("starts the controller on the checkout's Node 24, not whatever `node` is on PATH", async () => {
    const [execStart] = directive("ExecStart");
    const [program, script, command] = execStart!.split(/\s+/);
    expect(program).toBe("/opt/gmsa-gitops/node_modules/node/bin/node");
    expect(script).toBe("/opt/gmsa-gitops/bin/gmsa-gitops.mjs");
    expect(command).toBe("run");
    const { stdout } = await exec(program!.replace("/opt/gmsa-gitops", root), ["--version"]);
    expect(stdout).toMatch(/^v24\./);
  });

  it("runs as a dynamic user with its state and secrets in places systemd makes for it", () => {
    expect(directive("DynamicUser")).toEqual(["yes"]);
    expect(directive("User")).toEqual([]);
    expect(directive("StateDirectory")).toEqual(["gmsa-gitops"]);
    // A dynamic user cannot read a root-only file: the bind password comes in as a credential.
    expect(directive("LoadCredential")).toContain("bind-password:/etc/gmsa-gitops/bind-password");
    expect(directive("Environment")).toContain("GMSA_GITOPS_BIND_PASSWORD_FILE=%d/bind-password");
  });

  it("names only settings the controller knows, in its directives and in the examples of its comments", () => {
    const known = new Set([...SETTINGS.map((s) => s.env), "GMSA_GITOPS_CONFIG", "GMSA_GITOPS_BIND_PASSWORD"]);
    const named = [...unitText.matchAll(/\bGMSA_GITOPS_[A-Z_]+/g)].map((m) => m[0]);
    expect(named.length).toBeGreaterThan(5);
    for (const name of named) expect(known, name).toContain(name);
  });

  it('is rated "OK" or better by systemd-analyze security', async () => {
    const result = await analyze(["security", "--offline=true", unitPath]);
    const overall = /Overall exposure level for .*: (\d+\.\d+) (\w+)/.exec(result.output);
    expect(overall, result.output).not.toBeNull();
    expect(["SAFE", "OK"], result.output).toContain(overall![2]);
  });
});
