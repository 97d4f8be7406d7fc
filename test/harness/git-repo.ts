// A throwaway Git repository with a work tree, for tests and benches that need real commits:
// made from a folder (examples/) or from files, committed on branch main, served to the
// controller by its file:// URL. Real git, no fake: what the controller fetches is what `git
// log` shows.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/** A temp repository on branch main. Every method works on the work tree and the branch head. */
export interface GitRepo {
  /** The work tree (also the repository: `.git` inside it). */
  readonly dir: string;
  /** `file://` URL of the repository, for `--git-url`. */
  readonly url: string;
  /** Writes a file (relative path, parent folders created); not committed until {@link GitRepo.commit}. */
  write(path: string, content: string): void;
  /** Reads a file of the work tree. */
  read(path: string): string;
  /** Replaces the first occurrence of `from` in a file by `to`; throws when `from` is not there. */
  replace(path: string, from: string, to: string): void;
  /** Stages everything and commits; returns the new commit's full object name. */
  commit(message: string): string;
  /** The full object name of the branch head. */
  head(): string;
  /** Removes the repository; idempotent. */
  remove(): void;
}

/** What a new repository starts with: a folder copied in, and/or files by relative path. */
export interface GitRepoOptions {
  readonly from?: string;
  readonly files?: Readonly<Record<string, string>>;
  /** First commit's message; default "initial manifests". */
  readonly message?: string;
}

// A fixed identity and no user or system configuration, so a developer's git settings
// (signing, hooks, templates) cannot change what the tests commit.
const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env["PATH"],
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Test Author",
  GIT_AUTHOR_EMAIL: "author@company.local",
  GIT_COMMITTER_NAME: "Test Author",
  GIT_COMMITTER_EMAIL: "author@company.local",
};

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, env: GIT_ENV, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/**
 * Creates a repository under os.tmpdir() with one commit holding `options.from` (copied) and
 * `options.files`. Guarantees: branch main, a work tree equal to the commit, nothing outside
 * the temp folder touched.
 */
export function createGitRepo(options: GitRepoOptions = {}): GitRepo {
  const dir = mkdtempSync(join(tmpdir(), "gmsa-git-"));
  const write = (path: string, content: string): void => {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  };
  const read = (path: string): string => readFileSync(join(dir, path), "utf8");
  const head = (): string => git(dir, "rev-parse", "HEAD");
  const commit = (message: string): string => {
    git(dir, "add", "-A");
    git(dir, "commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", message);
    return head();
  };
  try {
    git(dir, "init", "-q", "-b", "main");
    if (options.from) cpSync(options.from, dir, { recursive: true });
    for (const [path, content] of Object.entries(options.files ?? {})) write(path, content);
    commit(options.message ?? "initial manifests");
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    url: pathToFileURL(dir).href,
    write,
    read,
    replace(path, from, to) {
      const text = read(path);
      if (!text.includes(from)) throw new Error(`${path} does not contain ${JSON.stringify(from)}`);
      write(path, text.replace(from, to));
    },
    commit,
    head,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
