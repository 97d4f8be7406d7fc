/**
 * The Git source: fetches one branch of a repository into a bare work directory, verifies the
 * commit signature if asked, and reads the manifests of a sub-path straight from the Git tree.
 *
 * Reading from the tree (ls-tree + cat-file) rather than from a checkout means nothing from the
 * repository is ever written to disk as a file: a symlink is only a tree entry of mode 120000,
 * which is skipped, so a link to /etc/passwd can never be followed. See docs/decisions/source.md.
 */
import { spawn } from "node:child_process";
import { access, mkdir, readdir, rm } from "node:fs/promises";
import { constants as fsConstants } from "node:fs";
import { resolve } from "node:path";
import { GitError, GitPluginError, simpleGit } from "simple-git";
import type { SimpleGit } from "simple-git";
import { SourceError, hideSecrets, redact, urlSecrets } from "./errors.ts";
import type { SourceErrorInit } from "./errors.ts";
import { DEFAULT_MAX_FILE_BYTES, fileTooLarge, isManifestPath, refusedTreePath } from "../manifests/index.ts";
import type { ManifestError } from "../manifests/index.ts";
import type { Snapshot, SnapshotFile } from "./snapshot.ts";
import { PollShell, ShellGone, abortReason, killGroup, shellAvailable } from "./poll-shell.ts";

/** How the commit at the branch head must be signed; absent means no check. */
export type VerifyOptions =
  | { mode: "ssh"; allowedSignersFile: string }
  | { mode: "gpg"; keyringDir: string /* used as GNUPGHOME; gpg must be able to write its lock files there */ };

/** Options of `createGitSource`. */
export interface GitSourceOptions {
  /** https://, ssh://, git@host:path, file://, or a local path to a repository (resolved against the cwd). */
  url: string;
  /** The branch to follow; default "main". */
  branch?: string;
  /** Sub-path inside the repository holding the manifests; default the root. */
  path?: string;
  /** Where the bare clone lives: created if missing, reused across restarts. Must be empty or ours. */
  workDir: string;
  /** Commit-signature verification of the branch head. */
  verify?: VerifyOptions;
  /** Limit for one whole sync (all git calls together); default 60 000 ms. */
  timeoutMs?: number;
  /** Extra environment for git (e.g. GIT_SSH_COMMAND with a deploy key); never logged. */
  env?: Record<string, string>;
}

/** A Git repository branch as a source of snapshots. */
export interface GitSource {
  /**
   * Brings the work directory to the remote branch head (following force-pushes), verifies it,
   * and returns its manifests. Calls are serialised. Throws `SourceError` on failure, or the
   * signal's reason if `signal` aborts.
   */
  sync(signal?: AbortSignal): Promise<Snapshot>;
  /**
   * Something (a verified webhook) says the branch moved: the next sync fetches at once instead
   * of listing the remote branch first (one round trip fewer). It still returns the branch as it
   * is, moved or not.
   */
  moved(): void;
  /** The repository URL with any credentials removed: safe to log. */
  readonly url: string;
  /** The branch followed. */
  readonly branch: string;
  /** The normalised sub-path ("" for the root). */
  readonly path: string;
}

const defaultTimeoutMs = 60_000;

// A commit SHA-1 or SHA-256 object name.
const objectName = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** A git process that exited non-zero; keeps the exit code, which is the only thing we branch on. */
class GitExit extends GitError {
  readonly exitCode: number;
  constructor(exitCode: number, stderr: string) {
    super(undefined, stderr);
    this.exitCode = exitCode;
  }
}

/**
 * Creates a Git source. Throws RangeError at once for options that can never work (a URL or
 * branch starting with "-", a sub-path leaving the repository), so a bad config fails at start.
 */
export function createGitSource(options: GitSourceOptions): GitSource {
  const branch = options.branch ?? "main";
  if (!isSafeBranchName(branch)) throw new RangeError(`invalid branch name ${JSON.stringify(branch)}`);
  if (options.url.startsWith("-") || options.url.trim() === "" || options.url.includes("\0")) {
    throw new RangeError("invalid repository URL");
  }
  const subPath = normaliseSubPath(options.path);
  const remote = resolveRemote(options.url);
  const workDir = resolve(options.workDir);
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const extraEnv = options.env ?? {};
  const secrets = [...urlSecrets(options.url), ...Object.values(extraEnv).filter((v) => v.length >= 8)];
  const safeUrl = hideSecrets(redact(options.url), secrets);
  const localRef = `refs/remotes/origin/${branch}`;

  let last: Snapshot | undefined;
  /** The last snapshot's file contents by blob id: a new revision reads only the blobs it adds. */
  let known = new Map<string, Uint8Array>();
  /** The work directory was found (or made) a bare repository of ours: not checked again every poll. */
  let bare = false;
  let queue: Promise<unknown> = Promise.resolve();
  /** A webhook said the branch moved since the last sync: the next one fetches without listing first. */
  let moved = false;

  // The environment of every git process; simple-git checks it on the source's first call, before
  // any poll runs git with it outside simple-git (poll).
  const gitEnv = gitEnvironment(extraEnv, options.verify);
  // Starts the polls' git processes, where a shell can (poll-shell.ts).
  const shell = shellAvailable() ? new PollShell(workDir, gitEnv.all, POLL_OUTPUT_LIMIT) : undefined;

  const fail = (init: SourceErrorInit): SourceError =>
    new SourceError({ ...init, message: hideSecrets(redact(init.message), secrets) });

  /**
   * A poll's git command: through the shell when there is one (one started anew if it died),
   * else as a process of the controller's own. Rejects with GitExit on a non-zero exit.
   */
  async function poll(args: readonly string[], abort: AbortSignal): Promise<string> {
    for (let attempt = 0; shell && attempt < 2; attempt++) {
      try {
        const { code, output, errors } = await shell.run(["git", ...args], abort);
        if (code !== 0) throw new GitExit(code, errors);
        return output;
      } catch (error: unknown) {
        if (!(error instanceof ShellGone)) throw error;
      }
    }
    return pollGit(args, workDir, gitEnv, abort);
  }

  async function syncOnce(signal: AbortSignal | undefined): Promise<Snapshot> {
    signal?.throwIfAborted();
    const deadline = AbortSignal.timeout(timeoutMs);
    const abort = signal ? AbortSignal.any([signal, deadline]) : deadline;
    try {
      await mkdir(workDir, { recursive: true }); // simple-git refuses a base directory that does not exist
    } catch (error: unknown) {
      throw fail({
        outcome: "stalled",
        step: "checkout",
        reason: "WorkDirInvalid",
        message: `cannot create work directory ${workDir}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      });
    }
    // Made on first use: a poll of an unchanged branch needs no simple-git at all.
    let made: SimpleGit | undefined;
    const git = (): SimpleGit => (made ??= makeGit(workDir, abort, gitEnv));

    // Every git call goes through here so that aborts, timeouts and refusals map the same way.
    async function run<T>(call: () => Promise<T>, onExit: (e: GitExit) => SourceError): Promise<T> {
      try {
        return await call();
      } catch (error: unknown) {
        if (signal?.aborted) throw signal.reason;
        if (deadline.aborted) {
          throw fail({
            outcome: "transient",
            step: "fetch",
            reason: "Timeout",
            message: `sync of ${safeUrl} timed out after ${timeoutMs} ms`,
          });
        }
        if (error instanceof GitPluginError && (error.plugin === "unsafe" || error.plugin === "allowEnvironment")) {
          throw fail({
            outcome: "stalled",
            step: "fetch",
            reason: "UnsafeGitEnvironment",
            message: `git refused the configured environment: ${error.message}`,
          });
        }
        if (error instanceof GitExit) throw onExit(error);
        throw fail({
          outcome: "transient",
          step: "fetch",
          reason: "FetchFailed",
          message: `git failed: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    }

    if (!bare) await ensureBareRepository(workDir, git(), run, fail);
    bare = true;

    // ls-remote first: `--exit-code` turns "no such branch" into exit status 2, a typed answer
    // (fetch would exit 128 for both a missing branch and an unreachable host), and it lets an
    // unchanged branch skip the fetch entirely.
    const listBranch = async (): Promise<string> => {
      const advertised = await run(
        () => poll(["ls-remote", "--exit-code", "--", remote, `refs/heads/${branch}`], abort),
        (e) =>
          e.exitCode === 2
            ? fail({
                outcome: "stalled",
                step: "fetch",
                reason: "BranchNotFound",
                message: `branch ${branch} not found in ${safeUrl}`,
              })
            : fail({
                outcome: "transient",
                step: "fetch",
                reason: "FetchFailed",
                message: `cannot list ${safeUrl}: ${lastLines(e.message)}`,
              }),
      );
      const head = parseLsRemote(advertised, `refs/heads/${branch}`);
      if (head === undefined) {
        throw fail({
          outcome: "stalled",
          step: "fetch",
          reason: "BranchNotFound",
          message: `branch ${branch} not found in ${safeUrl}`,
        });
      }
      return head;
    };
    // The head's author and message, when the fetch read them with its commit id (one process fewer).
    let fetchedMeta: { revision: string; meta: string } | undefined;
    // "+" accepts a non-fast-forward update: a force-push replaces our ref, which is the hard
    // reset. Depth 1 is enough: verification only needs the head commit object.
    const fetchBranch = async (): Promise<string> => {
      await run(
        () =>
          git().raw([
            "fetch",
            "--depth=1",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            remote,
            `+refs/heads/${branch}:${localRef}`,
          ]),
        (e) =>
          fail({
            outcome: "transient",
            step: "fetch",
            reason: "FetchFailed",
            message: `cannot fetch ${branch} from ${safeUrl}: ${lastLines(e.message)}`,
          }),
      );
      const fetched = await headCommit(git(), localRef);
      if (fetched === undefined) {
        throw fail({
          outcome: "transient",
          step: "fetch",
          reason: "FetchFailed",
          message: `fetch of ${branch} from ${safeUrl} left no commit`,
        });
      }
      fetchedMeta = fetched;
      return fetched.revision;
    };

    let revision: string;
    if (moved && last !== undefined) {
      // A webhook said the branch moved: fetch at once, one round trip to the remote fewer. A
      // failed fetch is told apart (missing branch or unreachable remote) by ls-remote after all.
      moved = false;
      try {
        revision = await fetchBranch();
      } catch (error: unknown) {
        await listBranch();
        throw error;
      }
    } else {
      moved = false;
      const remoteHead = await listBranch();
      // The branch has not moved since the last snapshot (whose revision is the local ref, which
      // only this source sets): that snapshot stands, and a poll costs this one git process.
      if (last !== undefined && last.revision === remoteHead) return { ...last, fetchedAt: new Date() };
      // Only this source sets the local ref, and the last snapshot is of it (a sync that failed
      // after its fetch left it ahead: fetched again, a no-op). A process per commit saved.
      const local = last?.revision ?? (await currentRevision(git(), localRef));
      revision = local === remoteHead ? local : await fetchBranch();
    }
    const head: string = revision;

    if (last !== undefined && last.revision === head) return { ...last, fetchedAt: new Date() };

    if (options.verify) await verifyCommit(git(), head, options.verify, run, fail);

    // The commit's author and message beside the manifests: neither waits for the other.
    const [{ files, fileErrors, byOid }, meta] = await Promise.all([
      readManifests(workDir, git(), head, subPath, known, run, fail),
      fetchedMeta?.revision === head
        ? fetchedMeta.meta
        : run(
            () => git().raw(["log", "-1", "--no-show-signature", `--format=${AUTHOR_AND_MESSAGE}`, head, "--"]),
            (e) =>
              fail({
                outcome: "transient",
                step: "checkout",
                reason: "ReadFailed",
                message: `cannot read commit ${head}: ${lastLines(e.message)}`,
                revision: head,
              }),
          ),
    ]);
    known = byOid;
    const nul = meta.indexOf("\0");
    const snapshot: Snapshot = {
      revision: head,
      files,
      ...(fileErrors.length > 0 ? { fileErrors } : {}),
      fetchedAt: new Date(),
      author: nul >= 0 ? meta.slice(0, nul) : undefined,
      message: nul >= 0 ? meta.slice(nul + 1).trimEnd() : undefined,
    };
    last = snapshot;
    return snapshot;
  }

  /**
   * `syncOnce`, and when it fails on something a damaged object store would explain (a read
   * or fetch failure), a check of the clone: a clone that fails `git fsck` (e.g. empty object
   * files after a full disk or a crash) never recovers by itself, so it is removed and cloned
   * again. If that fails too, the failure says the clone was corrupt and why (reason
   * CloneCorrupt, not counted as a network failure).
   */
  async function syncRepairing(signal: AbortSignal | undefined): Promise<Snapshot> {
    try {
      return await syncOnce(signal);
    } catch (error: unknown) {
      if (!(error instanceof SourceError) || (error.reason !== "ReadFailed" && error.reason !== "FetchFailed"))
        throw error;
      // A work directory this process may not read or write is not a damaged clone: it is never
      // wiped for it, and the error says what is wrong (an fsck would fail on it too).
      const unusable = await access(workDir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e.code ?? "error",
      );
      if (unusable !== undefined) {
        throw fail({
          outcome: "stalled",
          step: "checkout",
          reason: "WorkDirInvalid",
          message: `work directory ${workDir} cannot be used: ${unusable}`,
        });
      }
      const damage = await cloneDamage(workDir);
      if (damage === undefined) throw error;
      await emptyDirectory(workDir);
      last = undefined;
      bare = false;
      try {
        return await syncOnce(signal);
      } catch (retry: unknown) {
        if (!(retry instanceof SourceError)) throw retry;
        throw fail({
          outcome: "transient",
          step: "checkout",
          reason: "CloneCorrupt",
          message: `the clone in ${workDir} was corrupt (${damage}); it was removed, and cloning again failed: ${retry.message}`,
          ...(retry.revision !== undefined ? { revision: retry.revision } : {}),
        });
      }
    }
  }

  return {
    url: safeUrl,
    branch,
    path: subPath,
    moved(): void {
      moved = true;
    },
    sync(signal?: AbortSignal): Promise<Snapshot> {
      // Two syncs at once would fight over the same object store's locks: run them in turn.
      const next = queue.then(() => syncRepairing(signal));
      queue = next.catch(() => undefined);
      return next;
    },
  };
}

type Run = <T>(call: () => Promise<T>, onExit: (e: GitExit) => SourceError) => Promise<T>;
type Fail = (init: SourceErrorInit) => SourceError;

/** The environment of a source's git processes: the controller's own (less what simple-git guards) and `extra`. */
interface GitEnvironment {
  /** The operator's variables and ours, which simple-git is told to allow. */
  readonly extra: Readonly<Record<string, string>>;
  /** Everything a git process gets. */
  readonly all: Readonly<Record<string, string>>;
}

function gitEnvironment(extraEnv: Record<string, string>, verify: VerifyOptions | undefined): GitEnvironment {
  const extra: Record<string, string> = { GIT_TERMINAL_PROMPT: "0", ...extraEnv };
  if (verify?.mode === "gpg") extra.GNUPGHOME = resolve(verify.keyringDir);
  return { extra, all: { ...inheritedEnvironment(), ...extra } };
}

function makeGit(workDir: string, abort: AbortSignal, env: GitEnvironment): SimpleGit {
  const { extra } = env;
  const keys = Object.keys(extra).map((k) => k.toLowerCase());
  const git = simpleGit({
    baseDir: workDir,
    abort,
    // simple-git refuses GIT_* variables it was not told about; these are the operator's own.
    allowEnvironment: Object.keys(extra),
    unsafe: {
      allowUnsafeSshCommand: keys.includes("git_ssh_command") || keys.includes("git_ssh"),
      allowUnsafeAskPass: keys.includes("git_askpass") || keys.includes("ssh_askpass"),
      // Credentials for https arrive as GIT_CONFIG_* (see credentials.ts): only the operator's own.
      allowUnsafeConfigEnvCount: keys.includes("git_config_count"),
    },
    errors(error, result) {
      if (error instanceof GitPluginError) return error;
      if (result.exitCode !== 0) return new GitExit(result.exitCode, Buffer.concat(result.stdErr).toString("utf8"));
      return error;
    },
  });
  return git.env({ ...env.all });
}

/** The most a poll's output may hold: `ls-remote` of one branch prints one line. */
const POLL_OUTPUT_LIMIT = 64 * 1024;

/**
 * A poll's git command (`ls-remote`) as a child process of the controller: where no poll shell
 * can run (poll-shell.ts), or after it died twice. Not through simple-git, whose per-call work (a
 * new instance, its plugins, parsing the arguments for unsafe options) is not needed here:
 * nothing comes from outside (the arguments are the source's own, the remote after `--`), and
 * `env` is the environment simple-git checked on the source's first call, which every source
 * makes before its first poll (ensureBareRepository). Rejects with GitExit on a non-zero exit.
 */
function pollGit(args: readonly string[], cwd: string, env: GitEnvironment, signal: AbortSignal): Promise<string> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolvePromise, reject) => {
    // Its own process group, so that an abort reaches what git started (ssh) too.
    const child = spawn("git", args, { cwd, env: env.all, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const stop = (): void => killGroup(child.pid);
    signal.addEventListener("abort", stop, { once: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      outBytes += c.length;
      if (outBytes > POLL_OUTPUT_LIMIT) stop();
      else out.push(c);
    });
    // Only its end: what ssh or tracing prints there may be long, and is never the answer.
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (c: string) => (err = (err + c).slice(-POLL_OUTPUT_LIMIT)));
    child.on("error", (error) => {
      signal.removeEventListener("abort", stop);
      reject(error);
    });
    child.on("close", (code) => {
      signal.removeEventListener("abort", stop);
      if (signal.aborted) return reject(abortReason(signal));
      if (outBytes > POLL_OUTPUT_LIMIT)
        return reject(new Error(`git ${args[0]} printed more than ${POLL_OUTPUT_LIMIT} bytes on stdout`));
      if (code !== 0) return reject(new GitExit(code ?? -1, err));
      resolvePromise(Buffer.concat(out).toString("utf8"));
    });
  });
}

/**
 * The controller's own environment minus the variables simple-git guards (GIT_*, EDITOR, PAGER,
 * ...): git needs PATH and HOME, and simple-git rejects guarded keys passed explicitly. This is
 * passing the process environment through to a child, not reading configuration.
 */
function inheritedEnvironment(): Record<string, string> {
  const guarded = /^(git_.*|editor|visual|pager|prefix|ssh_askpass)$/i;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !guarded.test(key)) env[key] = value;
  }
  return env;
}

/**
 * Makes `workDir` a bare repository if it is missing or empty, and refuses one that holds
 * anything else: wiping a directory we did not create could destroy someone's data.
 */
async function ensureBareRepository(workDir: string, git: SimpleGit, run: Run, fail: Fail): Promise<void> {
  const entries = await readdir(workDir);
  if (entries.length === 0) {
    await run(
      () => git.raw(["init", "--quiet", "--bare"]),
      (e) =>
        fail({
          outcome: "stalled",
          step: "checkout",
          reason: "WorkDirInvalid",
          message: `cannot create a repository in ${workDir}: ${lastLines(e.message)}`,
        }),
    );
    return;
  }
  const isOurs = entries.includes("HEAD") && entries.includes("objects") && entries.includes("refs");
  const isBare = isOurs && (await git.raw(["rev-parse", "--is-bare-repository"]).catch(() => "")).trim() === "true";
  if (!isBare) {
    throw fail({
      outcome: "stalled",
      step: "checkout",
      reason: "WorkDirInvalid",
      message: `work directory ${workDir} is not empty and not a bare repository made by this source`,
    });
  }
}

/** `git log` format of a commit's author and message as the snapshot reads them: "NAME <EMAIL>\0MESSAGE". */
const AUTHOR_AND_MESSAGE = "%an <%ae>%x00%B";

/**
 * The commit `ref` names, with its author and message as "NAME <EMAIL>\0MESSAGE" (the format the
 * snapshot reads them in): one process where `currentRevision` and then `git log` were two.
 */
async function headCommit(git: SimpleGit, ref: string): Promise<{ revision: string; meta: string } | undefined> {
  let out: string;
  try {
    out = await git.raw([
      "log",
      "-1",
      "--no-show-signature",
      `--format=%H%x00${AUTHOR_AND_MESSAGE}`,
      `${ref}^{commit}`,
      "--",
    ]);
  } catch {
    return undefined; // no such ref
  }
  const nul = out.indexOf("\0");
  const revision = out.slice(0, nul);
  return nul > 0 && objectName.test(revision) ? { revision, meta: out.slice(nul + 1) } : undefined;
}

async function currentRevision(git: SimpleGit, ref: string): Promise<string | undefined> {
  try {
    const out = (await git.raw(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`])).trim();
    return objectName.test(out) ? out : undefined;
  } catch {
    return undefined; // no such ref yet: first sync
  }
}

function parseLsRemote(output: string, ref: string): string | undefined {
  for (const line of output.split("\n")) {
    const [sha, name] = line.split("\t");
    if (name === ref && sha !== undefined && objectName.test(sha)) return sha;
  }
  return undefined;
}

async function verifyCommit(git: SimpleGit, revision: string, verify: VerifyOptions, run: Run, fail: Fail) {
  const anchor = verify.mode === "ssh" ? verify.allowedSignersFile : verify.keyringDir;
  try {
    await access(anchor, verify.mode === "ssh" ? fsConstants.R_OK : fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    throw fail({
      outcome: "stalled",
      step: "verify",
      reason: "VerificationConfigInvalid",
      message: `${verify.mode === "ssh" ? "allowed signers file" : "GPG keyring directory"} ${anchor} is not usable`,
      revision,
    });
  }

  // git picks the verifier from the signature's armour, not from our mode: an OpenPGP
  // signature would be checked against whatever keyring GNUPGHOME or ~/.gnupg holds even in
  // ssh mode. So the signature must first be of the kind the operator chose.
  const commit = await run(
    () => git.raw(["cat-file", "commit", revision]),
    (e) =>
      fail({
        outcome: "transient",
        step: "checkout",
        reason: "ReadFailed",
        message: `cannot read commit ${revision}: ${lastLines(e.message)}`,
        revision,
      }),
  );
  const armour = verify.mode === "ssh" ? "-----BEGIN SSH SIGNATURE-----" : "-----BEGIN PGP SIGNATURE-----";
  const headers = commit.slice(0, commit.indexOf("\n\n") >= 0 ? commit.indexOf("\n\n") : commit.length);
  if (!headers.includes(`\ngpgsig ${armour}`) && !headers.includes(`\ngpgsig-sha256 ${armour}`)) {
    throw fail({
      outcome: "stalled",
      step: "verify",
      reason: "SignatureInvalid",
      message: `commit ${revision} has no ${verify.mode.toUpperCase()} signature`,
      revision,
    });
  }

  const config =
    verify.mode === "ssh"
      ? ["-c", `gpg.ssh.allowedSignersFile=${resolve(verify.allowedSignersFile)}`]
      : // A key is trusted by being in the keyring the operator gave us; gpg's web of trust
        // ("unknown validity") is not a second gate on top of that.
        ["-c", "gpg.minTrustLevel=undefined"];
  await run(
    () => git.raw([...config, "verify-commit", revision]),
    (e) =>
      fail({
        outcome: "stalled",
        step: "verify",
        reason: "SignatureInvalid",
        message: `signature of commit ${revision} is not valid for the configured ${verify.mode} keys${
          e.message.trim() ? `: ${lastLines(e.message)}` : ""
        }`,
        revision,
      }),
  );
}

/**
 * Runs one `git cat-file --batch` over `oids` (one per line on stdin) and resolves to its whole
 * output; rejects when git exits non-zero.
 */
function gitBatch(gitDir: string, oids: readonly string[]): Promise<Buffer> {
  if (oids.length === 0) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolvePromise, reject) => {
    const child = spawn("git", ["--git-dir", gitDir, "cat-file", "--batch"], {
      env: inheritedEnvironment(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`git cat-file exited ${code}: ${stderr}`));
      resolvePromise(Buffer.concat(chunks));
    });
    child.stdin.end(`${oids.join("\n")}\n`);
  });
}

/**
 * Reads blobs by object id with one `git cat-file --batch` process. Output per object is
 * "<oid> <type> <size>\n<content>\n"; a missing object is "<oid> missing\n", an error here.
 */
async function catFileBatch(gitDir: string, oids: readonly string[]): Promise<Buffer[]> {
  const out = await gitBatch(gitDir, oids);
  const blobs: Buffer[] = [];
  let at = 0;
  for (const oid of oids) {
    const eol = out.indexOf(0x0a, at);
    const header = out.subarray(at, eol).toString("utf8").split(" ");
    if (eol < 0 || header[0] !== oid || header[1] !== "blob") throw new Error(`object ${oid} missing`);
    const size = Number(header[2]);
    blobs.push(out.subarray(eol + 1, eol + 1 + size));
    at = eol + 1 + size + 1;
  }
  return blobs;
}

async function readManifests(
  gitDir: string,
  git: SimpleGit,
  revision: string,
  subPath: string,
  known: ReadonlyMap<string, Uint8Array>,
  run: Run,
  fail: Fail,
): Promise<{ files: SnapshotFile[]; fileErrors: ManifestError[]; byOid: Map<string, Uint8Array> }> {
  const tree = subPath === "" ? `${revision}^{tree}` : `${revision}:${subPath}`;
  const notFound = () =>
    fail({
      outcome: "stalled",
      step: "checkout",
      reason: "PathNotFound",
      message: `path ${subPath} is not a directory at revision ${revision}`,
      revision,
    });
  // A sub-path that is a symlink resolves to a blob here, not to its target: refused below. A
  // commit's own tree is one: no process spent asking.
  if (subPath !== "") {
    const type = await run(() => git.raw(["cat-file", "-t", tree]), notFound);
    if (type.trim() !== "tree") throw notFound();
  }

  // --long: each blob's size beside it, so that a blob over the limit is reported, never read
  // (a pushed 300 MB file would otherwise pass through memory whole), without a process more.
  const listing = await run(
    () => git.raw(["ls-tree", "-r", "-l", "-z", tree]),
    (e) =>
      fail({
        outcome: "transient",
        step: "checkout",
        reason: "ReadFailed",
        message: `cannot list ${tree}: ${lastLines(e.message)}`,
        revision,
      }),
  );
  const blobs: Array<{ path: string; oid: string }> = [];
  const refused = new Map<string, ManifestError>();
  const tooLarge: ManifestError[] = [];
  for (const record of listing.split("\0")) {
    const tab = record.indexOf("\t");
    if (tab < 0) continue;
    // "<mode> <type> <object> <size, padded with spaces on the left>"
    const [mode, kind, oid, size] = record
      .slice(0, tab)
      .split(" ")
      .filter((field) => field !== "");
    const path = record.slice(tab + 1);
    // Only regular files: 120000 is a symlink, 160000 a submodule; neither is read.
    if ((mode === "100644" || mode === "100755") && kind === "blob" && oid) {
      // Refused as validate refuses them on a checkout (one error per folder).
      const refusal = refusedTreePath(path);
      const bytes = Number(size);
      if (refusal) refused.set(refusal.file, refusal);
      else if (!isManifestPath(path)) continue;
      else if (bytes > DEFAULT_MAX_FILE_BYTES) tooLarge.push(blobTooLarge(path, bytes));
      else blobs.push({ path, oid });
    }
  }

  // One `git cat-file --batch` for every blob: a process per file made a 5,000-file revision
  // take seconds to read. Blobs the last snapshot held are not read again (an object id names
  // its content).
  const kept = blobs.filter((b) => known.has(b.oid));
  const added = blobs.filter((b) => !known.has(b.oid));
  const fileErrors = [...refused.values(), ...tooLarge];
  let contents: Buffer[];
  try {
    contents =
      added.length > 0
        ? await catFileBatch(
            gitDir,
            added.map((b) => b.oid),
          )
        : [];
  } catch (error) {
    throw fail({
      outcome: "transient",
      step: "checkout",
      reason: "ReadFailed",
      message: `cannot read the manifests of ${revision}: ${lastLines(error instanceof Error ? error.message : String(error))}`,
      revision,
    });
  }
  const byOid = new Map<string, Uint8Array>();
  added.forEach((blob, i) => {
    const content = contents[i]!;
    byOid.set(blob.oid, new Uint8Array(content.buffer, content.byteOffset, content.byteLength));
  });
  for (const blob of kept) byOid.set(blob.oid, known.get(blob.oid)!);
  const files: SnapshotFile[] = [...kept, ...added].map((blob) => ({
    path: blob.path,
    content: byOid.get(blob.oid)!,
    id: `git-blob:${blob.oid}`,
  }));
  return { files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), fileErrors, byOid };
}

/** The error for a blob over DEFAULT_MAX_FILE_BYTES, which is never read. */
function blobTooLarge(path: string, bytes: number): ManifestError {
  const message = fileTooLarge(bytes, DEFAULT_MAX_FILE_BYTES);
  return { file: path, line: 1, column: 1, path: "", code: "file-too-large", message };
}

/** Git branch names we accept: no leading "-" (would be an option), no "..", no spaces or ref magic. */
function isSafeBranchName(branch: string): boolean {
  return (
    /^[A-Za-z0-9._/+-]+$/.test(branch) &&
    !branch.startsWith("-") &&
    !branch.startsWith("/") &&
    !branch.endsWith("/") &&
    !branch.endsWith(".") &&
    !branch.endsWith(".lock") &&
    !branch.includes("..") &&
    !branch.includes("//")
  );
}

/** "" for the root; otherwise a '/'-separated relative path with no "." or ".." segments. */
export function normaliseSubPath(path: string | undefined): string {
  const segments = (path ?? "").split("/").filter((s) => s !== "" && s !== ".");
  if (segments.some((s) => s === "..")) throw new RangeError(`sub-path must stay inside the repository`);
  return segments.join("/");
}

/**
 * Local paths are made absolute (git runs in the work directory, so a relative path would
 * otherwise point inside it); URLs and scp-like `user@host:path` are passed through.
 */
function resolveRemote(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  if (/^[^/\\]+:/.test(url) && !/^[a-z]:[\\/]/i.test(url)) return url;
  return resolve(url);
}

// What git appends to every failed remote call whatever the cause: dropped so that the cause
// (ssh's "Permission denied (publickey)", "Host key verification failed", an HTTP 401) fits in.
const gitBoilerplate =
  /^(fatal: Could not read from remote repository\.|Please make sure you have the correct access rights|and the repository exists\.)$/;

/** The last few meaningful lines of git's stderr: the cause, without pages of hints. */
function lastLines(text: string, count = 3): string {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !gitBoilerplate.test(line))
    .slice(-count)
    .join(" | ");
}

/**
 * The first problem `git fsck` finds in the clone at `gitDir`, or undefined when it is sound.
 * Full fsck (not --connectivity-only, which never opens blobs): an empty blob file must count.
 */
function cloneDamage(gitDir: string): Promise<string | undefined> {
  return new Promise((resolvePromise) => {
    const child = spawn("git", ["--git-dir", gitDir, "fsck", "--no-dangling", "--no-progress"], {
      env: inheritedEnvironment(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += c.toString("utf8");
    });
    child.on("error", (error) => resolvePromise(`git fsck could not run: ${error.message}`));
    child.on("close", (code) => {
      if (code === 0) return resolvePromise(undefined);
      const first = stderr.split("\n").find((line) => /^(error|fatal)/.test(line)) ?? `git fsck exited ${code}`;
      resolvePromise(first.trim().slice(0, 300));
    });
  });
}

/** Removes everything inside `dir` (a clone this source made, checked by ensureBareRepository), keeping `dir`. */
async function emptyDirectory(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(resolve(dir, entry), { recursive: true, force: true });
}
