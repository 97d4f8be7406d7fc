// The poll shell against the real /bin/sh: quoting, exit status, a forged marker, aborts that
// must stop every process of the command, a shell killed from outside.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PollShell, ShellGone } from "./poll-shell.ts";

let dir: string;
let shells: PollShell[];

const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin" };
const shell = (cwd = dir, limit = 64 * 1024): PollShell => {
  const s = new PollShell(cwd, env, limit);
  shells.push(s);
  return s;
};
const never = new AbortController().signal;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pid a command wrote to `file`, once it is there. */
async function pidIn(file: string): Promise<number> {
  let text = "";
  await until(() => (text = existsSync(file) ? readFileSync(file, "utf8").trim() : "") !== "");
  return Number(text);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gmsa-poll-shell-"));
  shells = [];
});

afterEach(async () => {
  for (const s of shells) s.close();
  await rm(dir, { recursive: true, force: true });
});

describe("poll shell", () => {
  it("passes every argument through verbatim: nothing in one is run by the shell", async () => {
    const hostile = ["it's", "$(touch pwned)", "`touch pwned`", "a; touch pwned", "line\nbreak", "*", "$HOME", "\\"];
    const result = await shell().run(["printf", "%s|", ...hostile], never);
    expect(result).toEqual({ code: 0, output: `${hostile.join("|")}|` });
    expect(existsSync(join(dir, "pwned"))).toBe(false);
  });

  it("gives the command's exit status and its stdout and stderr merged, in its working directory", async () => {
    const result = await shell().run(["sh", "-c", "pwd; echo out; echo err >&2; exit 3"], never);
    expect(result.code).toBe(3);
    expect(result.output.split("\n")).toEqual([dir, "out", "err", ""]);
  });

  it("output that imitates the end-of-command marker does not end the command early", async () => {
    const fake = "\\n0123456789abcdef0123456789abcdef 0\\n";
    const result = await shell().run(["sh", "-c", `printf '${fake}'; sleep 0.2; echo after; exit 5`], never);
    expect(result.code).toBe(5);
    expect(result.output).toContain("after");
  });

  it("runs every command in the same shell process, one after the other", async () => {
    const s = shell();
    const first = await s.run(["sh", "-c", "echo $PPID"], never);
    const pid = s.pid;
    const second = await s.run(["sh", "-c", "echo $PPID"], never);
    expect(pid).toBeDefined();
    expect(first.output.trim()).toBe(String(pid));
    expect(second.output.trim()).toBe(String(pid));
    expect(s.pid).toBe(pid);
  });

  it("an abort rejects with its reason and stops the command and what it started; the next command gets a new shell", async () => {
    const s = shell();
    const pidFile = join(dir, "sleeper.pid");
    const stop = new AbortController();
    const running = s.run(["sh", "-c", `sleep 30 & echo $! > '${pidFile}'; wait`], stop.signal);
    const sleeper = await pidIn(pidFile);
    const before = s.pid;
    stop.abort(new Error("deadline"));
    await expect(running).rejects.toThrow("deadline");
    await until(() => !alive(sleeper));
    expect((await s.run(["echo", "again"], never)).output).toBe("again\n");
    expect(s.pid).not.toBe(before);
  });

  it("a shell killed from outside under a command is ShellGone, and the next command starts a new one", async () => {
    const s = shell();
    await s.run(["true"], never);
    const pid = s.pid!;
    const running = s.run(["sleep", "30"], never);
    process.kill(pid, "SIGKILL");
    await expect(running).rejects.toBeInstanceOf(ShellGone);
    expect((await s.run(["echo", "back"], never)).output).toBe("back\n");
    expect(s.pid).not.toBe(pid);
  });

  it("characters split across two reads of the pipe arrive whole", async () => {
    // One ASCII byte first: the 2-byte characters then straddle every 64 KiB boundary.
    const text = `x${"é".repeat(100_000)}`;
    const result = await shell(dir, 1 << 20).run(["printf", "%s", text], never);
    expect(result.output).toBe(text);
  });

  it("output past the limit stops the command with an error", async () => {
    const s = shell(dir, 1_000);
    await expect(s.run(["sh", "-c", "yes | head -c 100000; sleep 30"], never)).rejects.toThrow(
      "printed more than 1000 bytes",
    );
  });

  it("a working directory that is gone is a failed command, not a crash", async () => {
    const gone = join(dir, "gone");
    const result = await shell(gone).run(["true"], never);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain("gone");
  });

  it("a command already aborted is not started", async () => {
    const stop = new AbortController();
    stop.abort(new Error("stopping"));
    const s = shell();
    await expect(s.run(["touch", join(dir, "started")], stop.signal)).rejects.toThrow("stopping");
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(dir, "started"))).toBe(false);
  });
});
