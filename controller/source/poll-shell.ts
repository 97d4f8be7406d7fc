/**
 * The process that starts the Git poll's `git ls-remote`, kept between polls.
 *
 * Starting a process from the controller costs what forking a large process costs: the kernel
 * copies its page tables and every page it writes afterwards faults once. At 5,000 resources
 * that was 10 to 14 ms of the controller's CPU per poll, a third of a quiet controller's CPU
 * (docs/benchmarks.md). A POSIX shell forks in a fraction of that, so the controller starts one
 * shell and writes it one command line per poll; the shell runs git and prints its exit status
 * after a marker no output can forge (a random nonce per shell).
 *
 * Nothing from outside reaches the command line unquoted: every argument is single-quoted (in
 * POSIX sh a single-quoted string holds any byte but NUL and the quote itself, which is written
 * '\'' ), and git reads no stdin. A poll that is aborted or outlives its deadline kills the
 * shell's process group (the shell, git and what git started, such as ssh) and the next poll
 * starts a new shell, as does the next poll after {@link SHELL_IDLE_MS} without one. On Windows,
 * or where no /bin/sh exists (a distroless image), polls start git directly, as before.
 */
import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";

/** What one command printed (stdout and stderr, merged) and its exit status. */
export interface ShellResult {
  readonly code: number;
  readonly output: string;
}

/** The shell went away under a command (killed from outside, out of memory): run it another way. */
export class ShellGone extends Error {}

const SHELL = "/bin/sh";

/** A shell unused this long is stopped: a source polled rarely, or no longer, keeps no process. */
export const SHELL_IDLE_MS = 5 * 60_000;

/** The stream's socket, which can be unref'd: a pipe to a child process is one. */
const socket = (stream: Readable): Socket => stream as unknown as Socket;

/** POSIX shell single quoting. */
const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/** Why `signal` aborted, as the Error it almost always is. */
export const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));

/** True where a poll shell can be used: POSIX, with /bin/sh present. */
export function shellAvailable(): boolean {
  return process.platform !== "win32" && existsSync(SHELL);
}

/** One long-lived shell; runs one command at a time (the source serialises its syncs). */
export class PollShell {
  readonly #cwd: string;
  readonly #env: Readonly<Record<string, string>>;
  readonly #limit: number;
  #child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  #nonce = "";
  #busy = false;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(cwd: string, env: Readonly<Record<string, string>>, outputLimit: number) {
    this.#cwd = cwd;
    // ENV and BASH_ENV name files a shell may read at start: none is wanted here.
    const { ENV: _env, BASH_ENV: _bashEnv, ...rest } = env;
    this.#env = rest;
    this.#limit = outputLimit;
  }

  /** The shell's process id, while one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Runs `command` (argv, `command[0]` looked up in PATH) through the shell in `cwd`, stdin from
   * /dev/null, stderr merged into stdout. Rejects with `signal`'s reason when it aborts (the
   * command is killed), with ShellGone when the shell dies, with an Error when the output
   * passes the limit.
   */
  run(command: readonly string[], signal: AbortSignal): Promise<ShellResult> {
    if (this.#busy) return Promise.reject(new Error("the poll shell is already running a command"));
    if (signal.aborted) return Promise.reject(abortReason(signal));
    clearTimeout(this.#idle);
    const child = this.#start();
    this.#busy = true;
    const marker = `\n${this.#nonce} `;
    return new Promise<ShellResult>((resolve, reject) => {
      let text = "";
      const settle = (finish: () => void): void => {
        child.stdout.off("data", onData);
        child.off("exit", onExit);
        child.off("error", onExit);
        signal.removeEventListener("abort", onAbort);
        socket(child.stdout).unref();
        this.#busy = false;
        this.#idle = setTimeout(() => this.#kill(), SHELL_IDLE_MS).unref();
        finish();
      };
      const onData = (chunk: string): void => {
        text += chunk;
        const at = text.lastIndexOf(marker);
        if (at >= 0 && text.endsWith("\n") && text.length > at + marker.length) {
          const code = Number(text.slice(at + marker.length, -1));
          if (Number.isInteger(code)) return settle(() => resolve({ code, output: text.slice(0, at) }));
        }
        if (text.length > this.#limit) {
          this.#kill();
          settle(() => reject(new Error(`${command[0]} printed more than ${this.#limit} bytes`)));
        }
      };
      const onExit = (): void => {
        this.#child = undefined;
        settle(() => reject(new ShellGone("the poll shell exited")));
      };
      const onAbort = (): void => {
        this.#kill();
        settle(() => reject(abortReason(signal)));
      };
      child.stdout.on("data", onData);
      child.on("exit", onExit);
      child.on("error", onExit);
      signal.addEventListener("abort", onAbort, { once: true });
      socket(child.stdout).ref();
      const line = `{ cd ${quote(this.#cwd)} && ${command.map(quote).join(" ")}; } </dev/null 2>&1`;
      child.stdin.write(`${line}; printf '\\n%s %s\\n' ${this.#nonce} "$?"\n`);
    });
  }

  /** Stops the shell (and anything it runs). */
  close(): void {
    clearTimeout(this.#idle);
    this.#kill();
  }

  #start(): ChildProcessByStdio<Writable, Readable, null> {
    if (this.#child) return this.#child;
    this.#nonce = randomBytes(16).toString("hex");
    // Its own process group, so that a kill reaches git and what git started.
    const child = spawn(SHELL, [], { cwd: "/", env: this.#env, stdio: ["pipe", "pipe", "ignore"], detached: true });
    // A shell between polls must not keep the controller alive; its stdin closing (the
    // controller gone) ends it.
    child.unref();
    socket(child.stdout).unref();
    // Decoded as a stream: a character split across two reads stays whole.
    child.stdout.setEncoding("utf8");
    child.stdin.on("error", () => undefined); // EPIPE after the shell died: its exit says so
    child.on("error", () => undefined); // a failed start: its exit follows
    child.once("exit", () => {
      if (this.#child === child) this.#child = undefined;
    });
    this.#child = child;
    return child;
  }

  #kill(): void {
    const child = this.#child;
    this.#child = undefined;
    if (child?.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
