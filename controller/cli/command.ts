import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
/** What a subcommand is, and how it talks to the terminal. */

/** Where a command writes. Tests pass a recorder; `main` passes the process's streams. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is a terminal that wants colour (decided once in `main`); tests leave it unset. */
  readonly color?: boolean;
}

/**
 * One subcommand. `run` gets the arguments after the command name and returns the exit code:
 * 0 success, 1 the command ran and found a problem, 2 usage error. `--help` is handled by the
 * dispatcher, which prints `usage`.
 */
export interface Command {
  name: string;
  /** One line for the command list in `gmsa-gitops --help`. */
  summary: string;
  /** The full help text of `gmsa-gitops NAME --help`, ending in a newline. */
  usage: string;
  run(args: readonly string[], io: Io): Promise<number>;
}

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A table entry whose module is imported only when the command runs (or its --help is shown). */
export interface LazyCommand {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/** The version in package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * The commit of the checkout this code runs from, for `gmsa_gitops_build_info`; undefined when
 * it is not a Git checkout of its own (a container image, a copy) or git is missing. Only this
 * package's own repository counts, never one it happens to sit inside.
 */
export function sourceCommit(): string | undefined {
  const root = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/+$/, "");
  try {
    // Loaded here: child_process (with net, stream and dgram) is not needed by `validate`'s start.
    const { execFileSync } = process.getBuiltinModule("node:child_process");
    const [top, head] = execFileSync("git", ["-C", root, "rev-parse", "--show-toplevel", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 2000,
    }).split("\n");
    return top === root && head !== undefined && /^[0-9a-f]{40,64}$/.test(head) ? head : undefined;
  } catch {
    return undefined;
  }
}
