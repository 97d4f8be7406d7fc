// A controller killed (SIGKILL, an OOM kill) must not take with it the log
// lines of writes it already made: they are the audit trail of what it changed in AD, and the
// replica that takes over is judged by them (test/leader.test.ts). Measured in a child process
// that logs, then is killed at once, as a pipe reader (a container runtime, journald) sees it.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const main = join(import.meta.dirname, "main.ts");

/** What a child that logs `count` lines through createLogger and is then SIGKILLed left on its stdout. */
function loggedThenKilled(count: number): Promise<{ stdout: string; signal: string | null }> {
  const script = `
    import { createLogger } from ${JSON.stringify(main)};
    const logger = createLogger({ level: "info", format: "json" });
    for (let i = 0; i < ${count}; i++) logger.info({ resource: "bulk-" + i, action: "create-gmsa" }, "applied");
    process.kill(process.pid, "SIGKILL");
  `;
  return new Promise((resolve) => {
    execFile(process.execPath, ["--input-type=module", "-e", script], (error, stdout) => {
      resolve({ stdout, signal: error && "signal" in error ? error.signal : null });
    });
  });
}

describe("the log of a killed controller", () => {
  it("keeps every line logged before the kill", async () => {
    const { stdout, signal } = await loggedThenKilled(500);
    expect(signal).toBe("SIGKILL");
    const lines = stdout.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(500);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ msg: "applied", resource: "bulk-499" });
  }, 30_000);
});
