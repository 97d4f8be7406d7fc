// The DC dies in the middle of an apply (issue: the output used to be the plan, one ECONNRESET
// line and exit 1, although objects had been written). Now each action's result is printed as
// it completes, the report survives whatever fails after, and the exit code says "partial".
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../controller/cli/main.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { dcFlags } from "./support/cli.ts";

const GROUPS = 30;

describe("apply when the DC is killed part-way", () => {
  let dc: Dc;
  let repo: string;

  beforeAll(async () => {
    dc = await startDc();
    repo = mkdtempSync(join(tmpdir(), "gmsa-dies-"));
    const docs = Array.from(
      { length: GROUPS },
      (_, i) => `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: team-${i}
spec:
  accountName: Team-${i}
  description: group ${i}
`,
    );
    writeFileSync(join(repo, "groups.yaml"), docs.join("---\n"));
  });

  afterAll(async () => {
    await dc.stop();
    rmSync(repo, { recursive: true, force: true });
  });

  it("prints every action's result as it completes, keeps the report, and exits 3 (partial)", async () => {
    let stdout = "";
    let stderr = "";
    let killed: Promise<void> | undefined;
    const code = await main(["apply", "--repo", repo, ...dcFlags(dc), "--ldap-timeout", "5s"], {
      stdout: (s) => {
        stdout += s;
        // The DC is killed as soon as the third action has been reported written.
        if (killed === undefined && (stdout.match(/^ {2}ok {6}/gm) ?? []).length >= 3) killed = dc.stop();
      },
      stderr: (s) => void (stderr += s),
    });
    await killed;
    const ok = stdout.match(/^ {2}ok {6}create-group ADGroup\/team-\d+$/gm) ?? [];
    const failed = stdout.match(/^ {2}(FAILED|skipped) .*ADGroup\/team-\d+/gm) ?? [];
    // What was written before the kill is reported, one line each; the rest is reported failed.
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(ok.length + failed.length).toBe(GROUPS);
    expect(stdout).toMatch(new RegExp(`Apply: ${ok.length} succeeded, ${failed.length} failed or skipped`));
    expect(code).toBe(3);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
