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

/** Running: a zombie (killed, its parent gone, not yet reaped by PID 1) is not. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
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
    expect(result).toEqual({ code: 0, output: `${hostile.join("|")}|`, errors: "" });
    expect(existsSync(join(dir, "pwned"))).toBe(false);
  });

  it("gives the command's exit status, and its stdout and stderr apart, in its working directory", async () => {
    const result = await shell().run(["sh", "-c", "pwd; echo out; echo err >&2; exit 3"], never);
    expect(result).toEqual({ code: 3, output: `${dir}\nout\n`, errors: "err\n" });
  });

  it("a line printed on stderr, even one shaped like a ref, never reaches the command's stdout", async () => {
    const ref = `${"a".repeat(40)}\trefs/heads/main`;
    const result = await shell().run(["sh", "-c", `printf '%s\\n' '${ref}' >&2; echo real`], never);
    expect(result.output).toBe("real\n");
    expect(result.errors).toBe(`${ref}\n`);
  });

  it("the shell starts without the variables that change what a shell does", async () => {
    const hostile = { ...env, SHELLOPTS: "xtrace", BASHOPTS: "extglob", BASH_ENV: "/x", ENV: "/x", CDPATH: "/" };
    const s = new PollShell(dir, { ...hostile, "BASH_FUNC_git%%": "() { echo fake; }", KEPT: "yes" }, 1 << 16);
    shells.push(s);
    const names = ["SHELLOPTS", "BASHOPTS", "BASH_ENV", "ENV", "CDPATH", "BASH_FUNC_git%%", "KEPT"];
    const result = await s.run(["env"], never);
    const present = result.output.split("\n").map((line) => line.slice(0, line.indexOf("=")));
    expect(names.filter((name) => present.includes(name))).toEqual(["KEPT"]);
  });

  it("an argument holding a NUL byte is refused, not cut short by the shell", async () => {
    await expect(shell().run(["echo", "a\0b"], never)).rejects.toThrow("NUL");
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

  it("a shell killed from outside under a command is ShellGone, what it ran is stopped, and the next command starts a new shell", async () => {
    const s = shell();
    await s.run(["true"], never);
    const pid = s.pid!;
    const pidFile = join(dir, "sleeper.pid");
    const running = s.run(["sh", "-c", `sleep 30 & echo $! > '${pidFile}'; wait`], never);
    const sleeper = await pidIn(pidFile);
    process.kill(pid, "SIGKILL");
    await expect(running).rejects.toBeInstanceOf(ShellGone);
    await until(() => !alive(sleeper));
    expect((await s.run(["echo", "back"], never)).output).toBe("back\n");
    expect(s.pid).not.toBe(pid);
  });

  it("a long stderr is no failure: the command's answer is its stdout, and stderr's end is kept", async () => {
    const s = shell(dir, 1_000);
    const result = await s.run(["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' w >&2; echo end >&2; echo ok"], never);
    expect(result.code).toBe(0);
    expect(result.output).toBe("ok\n");
    expect(result.errors.length).toBeLessThanOrEqual(1_000);
    expect(result.errors.endsWith("wend\n")).toBe(true);
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
    // 1, never 2: git ls-remote --exit-code says "no such branch" with 2.
    expect(result.code).toBe(1);
    expect(result.errors).toContain("gone");
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
