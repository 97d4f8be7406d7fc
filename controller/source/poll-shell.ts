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
 * POSIX sh a single-quoted string holds any byte but NUL, refused, and the quote itself, which
 * is written '\'' ), and git reads no stdin. The command's stdout and stderr come back apart,
 * each ended by its own marker: what ssh or a remote prints goes to stderr and cannot pass for
 * a ref. A poll that is aborted or outlives its deadline kills the
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

/** What one command printed and its exit status. */
export interface ShellResult {
  readonly code: number;
  /** Its stdout. */
  readonly output: string;
  /** Its stderr, and that of what it started. */
  readonly errors: string;
}

/** The shell went away under a command (killed from outside, out of memory): run it another way. */
export class ShellGone extends Error {}

const SHELL = "/bin/sh";

/** A shell unused this long is stopped: a source polled rarely, or no longer, keeps no process. */
export const SHELL_IDLE_MS = 5 * 60_000;

/** The stream's socket, which can be unref'd: a pipe to a child process is one. */
const socket = (stream: Readable): Socket => stream as unknown as Socket;

/**
 * Variables that change what a shell does rather than what git does: files it reads at start
 * (ENV, BASH_ENV), options it takes on (SHELLOPTS, BASHOPTS: bash as /bin/sh honours
 * `errexit`, `xtrace`), functions bash imports (one named git would replace it), cd's search
 * path. The shell, and so git, runs without them.
 */
const shellOnly = /^(ENV|BASH_ENV|SHELLOPTS|BASHOPTS|CDPATH|BASH_FUNC_.*)$/;

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
  #child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  #nonce = "";
  #busy = false;
  #idle: ReturnType<typeof setTimeout> | undefined;

  constructor(cwd: string, env: Readonly<Record<string, string>>, outputLimit: number) {
    this.#cwd = cwd;
    this.#env = Object.fromEntries(Object.entries(env).filter(([key]) => !shellOnly.test(key)));
    this.#limit = outputLimit;
  }

  /** The shell's process id, while one runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Runs `command` (argv, `command[0]` looked up in PATH) through the shell in `cwd`, stdin from
   * /dev/null. Its stdout and stderr come back apart: only stdout is the command's answer, and
   * what git's helpers (ssh, a remote's messages) print goes to stderr, so they can never pass
   * for it. A working directory the shell cannot enter is exit status 1, with the shell's reason
   * on stderr. Rejects with `signal`'s reason when it aborts (the command is killed), with
   * ShellGone when the shell dies (what it ran is killed), with an Error when stdout passes the
   * limit. Of stderr only the last `limit` characters are kept.
   */
  run(command: readonly string[], signal: AbortSignal): Promise<ShellResult> {
    if (this.#busy) return Promise.reject(new Error("the poll shell is already running a command"));
    if (signal.aborted) return Promise.reject(abortReason(signal));
    // The shell would drop a NUL silently and run with another argument.
    if (command.some((arg) => arg.includes("\0")))
      return Promise.reject(new RangeError("an argument holds a NUL byte"));
    clearTimeout(this.#idle);
    const child = this.#start();
    this.#busy = true;
    const nonce = this.#nonce;
    return new Promise<ShellResult>((resolve, reject) => {
      let out = "";
      let err = "";
      let code: number | undefined;
      let errDone = false;
      const settle = (finish: () => void): void => {
        child.stdout.off("data", onOut);
        child.stderr.off("data", onErr);
        child.off("exit", onExit);
        child.off("error", onExit);
        signal.removeEventListener("abort", onAbort);
        socket(child.stdout).unref();
        socket(child.stderr).unref();
        this.#busy = false;
        this.#idle = setTimeout(() => this.#kill(), SHELL_IDLE_MS).unref();
        finish();
      };
      const tooMuch = (): void => {
        if (out.length <= this.#limit) return;
        this.#kill();
        settle(() => reject(new Error(`${command[0]} printed more than ${this.#limit} bytes on stdout`)));
      };
      // Done when stdout has the status after the marker and stderr its own marker: both streams
      // are written before the markers, but may be read in either order.
      const done = (): void => {
        if (code !== undefined && errDone) settle(() => resolve({ code: code!, output: out, errors: err }));
      };
      const outMarker = `\n${nonce} `;
      const onOut = (chunk: string): void => {
        out += chunk;
        const at = out.lastIndexOf(outMarker);
        if (at >= 0 && out.endsWith("\n") && out.length > at + outMarker.length) {
          const status = Number(out.slice(at + outMarker.length, -1));
          if (Number.isInteger(status)) {
            code = status;
            out = out.slice(0, at);
            return done();
          }
        }
        tooMuch();
      };
      const errMarker = `\n${nonce}\n`;
      const onErr = (chunk: string): void => {
        // Only its end is kept: what ssh or git's tracing prints may be long, and is never the answer.
        err = (err + chunk).slice(-this.#limit);
        const at = err.indexOf(errMarker);
        if (at >= 0) {
          err = err.slice(0, at); // after it: a straggler of this command's helpers, dropped
          errDone = true;
          return done();
        }
      };
      const onExit = (): void => {
        // What it ran lives on in its process group (git, ssh): stopped with it.
        killGroup(child.pid);
        this.#child = undefined;
        settle(() => reject(new ShellGone("the poll shell exited")));
      };
      const onAbort = (): void => {
        this.#kill();
        settle(() => reject(abortReason(signal)));
      };
      child.stdout.on("data", onOut);
      child.stderr.on("data", onErr);
      child.on("exit", onExit);
      child.on("error", onExit);
      signal.addEventListener("abort", onAbort, { once: true });
      socket(child.stdout).ref();
      socket(child.stderr).ref();
      // `cd || false`: a directory it cannot enter is status 1, never 2 (ls-remote's "no such branch").
      const line = `{ cd ${quote(this.#cwd)} || false; } && ${command.map(quote).join(" ")} </dev/null`;
      child.stdin.write(`${line}; printf '\\n%s %s\\n' ${nonce} "$?"; printf '\\n%s\\n' ${nonce} >&2\n`);
    });
  }

  /** Stops the shell (and anything it runs). */
  close(): void {
    clearTimeout(this.#idle);
    this.#kill();
  }

  #start(): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.#child) return this.#child;
    this.#nonce = randomBytes(16).toString("hex");
    // Its own process group, so that a kill reaches git and what git started.
    const child = spawn(SHELL, [], { cwd: "/", env: this.#env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    // A shell between polls must not keep the controller alive; its stdin closing (the
    // controller gone) ends it.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) {
      socket(stream).unref();
      // Decoded as a stream: a character split across two reads stays whole.
      stream.setEncoding("utf8");
    }
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
    killGroup(child?.pid);
  }
}

/** SIGKILL to the process group `pid` leads (a poll shell's, or a detached git's), if any is left. */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}
