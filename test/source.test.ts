// The Git source against real git: bare remotes reached through file:// and a plain path,
// commits made with the git CLI, SSH and GPG signatures made with ssh-keygen and gpg.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SourceError, createGitSource } from "../controller/source/index.ts";
import type { GitSourceOptions, Snapshot } from "../controller/source/index.ts";

let root: string;
let remote: string; // bare repository, the "server"
let work: string; // a developer's clone that commits and pushes
let gnupgHomes: string[];

const identity = ["-c", "user.name=Dev One", "-c", "user.email=dev@example.com", "-c", "commit.gpgsign=false"];

function git(cwd: string, args: string[], env: Record<string, string> = {}): string {
  return execFileSync("git", args, { cwd, env: { ...process.env, ...env }, encoding: "utf8", stdio: "pipe" });
}

async function writeFiles(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(work, path)), { recursive: true });
    await writeFile(join(work, path), content);
  }
}

/** Commits everything in the work clone (with extra `git -c` flags, e.g. signing) and pushes it. */
function commitAndPush(
  message: string,
  options: { sign?: string[]; force?: boolean; env?: Record<string, string> } = {},
) {
  git(work, ["add", "-A"]);
  git(work, [...identity, ...(options.sign ?? []), "commit", "--quiet", "--allow-empty", "-m", message], options.env);
  git(work, ["push", "--quiet", ...(options.force ? ["--force"] : []), "origin", "HEAD:main"]);
  return remoteHead();
}

function remoteHead(branch = "main"): string {
  return git(remote, ["rev-parse", `refs/heads/${branch}`]).trim();
}

function text(snapshot: Snapshot): Record<string, string> {
  return Object.fromEntries(snapshot.files.map((f) => [f.path, Buffer.from(f.content).toString("utf8")]));
}

function source(overrides: Partial<GitSourceOptions> = {}) {
  return createGitSource({ url: `file://${remote}`, branch: "main", workDir: join(root, "checkout"), ...overrides });
}

/** Stops the process whose pid `file` holds, if it still runs; says whether it did. */
async function stopWrittenPid(file: string): Promise<boolean> {
  const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
  if (!(pid > 0)) return false;
  // A killed process whose parent died too may stay a zombie until PID 1 reaps it: dead all the same.
  const dead = async (): Promise<boolean> => {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    return stat === "" || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  };
  for (let i = 0; i < 50; i++) {
    if (await dead()) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  process.kill(pid);
  return true;
}

async function syncError(promise: Promise<unknown>): Promise<SourceError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "gmsa-source-"));
  remote = join(root, "remote.git");
  work = join(root, "work");
  gnupgHomes = [];
  git(root, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  git(root, ["clone", "--quiet", remote, work]);
  git(work, ["checkout", "--quiet", "-b", "main"]);
});

afterEach(async () => {
  // gpg starts an agent per GNUPGHOME; stop each one we caused.
  for (const home of gnupgHomes) {
    try {
      execFileSync("gpgconf", ["--kill", "all"], { env: { ...process.env, GNUPGHOME: home }, stdio: "ignore" });
    } catch {
      // no agent was running
    }
  }
  await rm(root, { recursive: true, force: true });
});

describe("git source", () => {
  it("first sync clones and returns only the YAML files under the sub-path, at the remote's head", async () => {
    await writeFiles({
      "teams/a/gmsa.yaml": "kind: GroupManagedServiceAccount\n",
      "teams/a/nested/group.yml": "kind: ADGroup\n",
      "teams/a/README.md": "not a manifest\n",
      "teams/b/other.yaml": "kind: ADGroup\n",
      "root.yaml": "kind: KdsRootKey\n",
    });
    const head = commitAndPush("Add team a");

    const snapshot = await source({ path: "teams/a" }).sync();

    expect(snapshot.revision).toBe(head);
    expect(text(snapshot)).toEqual({
      "gmsa.yaml": "kind: GroupManagedServiceAccount\n",
      "nested/group.yml": "kind: ADGroup\n",
    });
    expect(snapshot.message).toBe("Add team a");
    expect(snapshot.author).toBe("Dev One <dev@example.com>");
    // The clone is shallow: one commit is all a sync needs.
    expect(git(join(root, "checkout"), ["rev-list", "--count", "--all"]).trim()).toBe("1");
  });

  it("a repository given as a plain local path syncs like file://", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("one");
    const snapshot = await source({ url: remote }).sync();
    expect(snapshot.revision).toBe(head);
    expect(text(snapshot)).toEqual({ "x.yaml": "a: 1\n" });
  });

  it("a new commit is seen on the next sync, and an unchanged branch returns the same revision", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const src = source();
    const first = await src.sync();
    const again = await src.sync();
    expect(again.revision).toBe(first.revision);

    await writeFiles({ "x.yaml": "a: 2\n", "y.yaml": "b: 1\n" });
    const second = commitAndPush("two");
    const snapshot = await src.sync();
    expect(snapshot.revision).toBe(second);
    expect(text(snapshot)).toEqual({ "x.yaml": "a: 2\n", "y.yaml": "b: 1\n" });
  });

  /**
   * A synced source whose git commands are traced: `since()` lists the commands it started since
   * the last call. Each git process logs "trace: built-in: git <command>" first; the server side
   * of a file:// remote (upload-pack) and fetch's own helpers are left out.
   */
  async function tracedSource() {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const trace = join(root, "trace.log");
    const src = source({ env: { GIT_TRACE: trace } });
    await src.sync();
    let seen = (await readFile(trace, "utf8")).length;
    const helpers = ["upload-pack", "pack-objects", "unpack-objects", "index-pack", "rev-list", "maintenance"];
    const since = async (): Promise<string[]> => {
      const log = await readFile(trace, "utf8");
      const commands = [...log.slice(seen).matchAll(/trace: built-in: git ([\w-]+)/g)].map((m) => m[1]!);
      seen = log.length;
      return commands.filter((c) => !helpers.includes(c));
    };
    return { src, since };
  }

  it("a poll of an unchanged branch runs one git command, ls-remote", async () => {
    const { src, since } = await tracedSource();
    await src.sync();
    await src.sync();
    expect(await since()).toEqual(["ls-remote", "ls-remote"]);
  });

  it("polls start git from one long-lived shell, not from the controller's own process", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    // A git in front of the real one on PATH: logs its command and its parent's pid.
    const bin = join(root, "bin");
    const log = join(root, "parents.log");
    const real = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
    await mkdir(bin);
    await writeFile(join(bin, "git"), `#!/bin/sh\necho "$1 $PPID" >> '${log}'\nexec '${real}' "$@"\n`, {
      mode: 0o755,
    });
    const path = `${bin}:${process.env["PATH"] ?? ""}`;
    const previous = process.env["PATH"];
    process.env["PATH"] = path;
    try {
      const src = source();
      await src.sync();
      await writeFile(log, "");
      await src.sync();
      await src.sync();
      const polls = (await readFile(log, "utf8")).trim().split("\n");
      expect(polls.map((l) => l.split(" ")[0])).toEqual(["ls-remote", "ls-remote"]);
      const parents = new Set(polls.map((l) => Number(l.split(" ")[1])));
      expect(parents.size).toBe(1);
      expect(parents.has(process.pid)).toBe(false);
    } finally {
      process.env["PATH"] = previous;
    }
  });

  it("what ssh prints on stderr, now or from the background later, never passes for the branch head", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const first = commitAndPush("one");
    // Stands in for ssh: prints the first commit as a ref line on stderr, now and for 3 s from a
    // background process that outlives it, then runs the remote command.
    const fakeSsh = join(root, "lying-ssh");
    const lie = `printf '%s\\trefs/heads/main\\n' ${first} >&2`;
    await writeFile(
      fakeSsh,
      `#!/bin/sh\n${lie}\n( i=0; while [ $i -lt 300 ]; do ${lie}; sleep 0.01; i=$((i+1)); done ) &\nfor last; do :; done\nexec sh -c "$last"\n`,
      { mode: 0o755 },
    );
    const src = source({
      url: `ssh://git.example.invalid${remote}`,
      env: { GIT_SSH_COMMAND: fakeSsh, GIT_SSH_VARIANT: "simple" },
    });
    expect((await src.sync()).revision).toBe(first);
    await writeFiles({ "x.yaml": "a: 2\n" });
    const second = commitAndPush("two");
    expect((await src.sync()).revision).toBe(second);
    const third = commitAndPush("three");
    expect((await src.sync()).revision).toBe(third);
  });

  it("a work directory the controller's user may no longer enter is WorkDirInvalid, and is not wiped", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("one");
    // Root reads any directory: the source runs as nobody, in a child process.
    const script = join(root, "as-nobody.ts");
    const workDir = join(root, "nobody-checkout");
    const index = join(import.meta.dirname, "..", "controller", "source", "index.ts");
    await writeFile(
      script,
      [
        `import { chmodSync } from "node:fs";`,
        `import { createGitSource } from ${JSON.stringify(index)};`,
        `const src = createGitSource({ url: ${JSON.stringify(`file://${remote}`)}, workDir: ${JSON.stringify(workDir)} });`,
        `const first = (await src.sync()).revision;`,
        `chmodSync(${JSON.stringify(workDir)}, 0);`,
        `const error = await src.sync().then(() => undefined, (e) => e);`,
        `chmodSync(${JSON.stringify(workDir)}, 0o755);`,
        `console.log(JSON.stringify({ first, outcome: error?.outcome, reason: error?.reason, message: error?.message, again: (await src.sync()).revision }));`,
      ].join("\n"),
    );
    execFileSync("chown", ["-R", "nobody", root]);
    const out = execFileSync(
      "setpriv",
      ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, script],
      { encoding: "utf8", env: { ...process.env, HOME: root } },
    );
    const seen = JSON.parse(out.trim().split("\n").pop()!) as Record<string, string>;
    expect(seen).toMatchObject({ first: head, outcome: "stalled", reason: "WorkDirInvalid", again: head });
    expect(seen["message"]).toContain("EACCES");
  });

  it("git's packet trace on stderr, however long, does not fail a poll", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("one");
    // 1,500 tags: ls-remote lists them all in the trace, about 200 KiB of stderr.
    const tags = Array.from({ length: 1_500 }, (_, i) => `create refs/tags/t${i} ${head}`).join("\n");
    execFileSync("git", ["--git-dir", remote, "update-ref", "--stdin"], { input: `${tags}\n` });
    const src = source({ env: { GIT_TRACE_PACKET: "1" } });
    expect((await src.sync()).revision).toBe(head);
    expect((await src.sync()).revision).toBe(head);
  });

  it("a poll after the first sync keeps its typed errors: a deleted branch, a removed remote, an abort", async () => {
    const { src } = await tracedSource();
    // The poll runs git bare (not through simple-git): the same answers as the first sync's.
    execFileSync("git", ["--git-dir", remote, "update-ref", "-d", "refs/heads/main"]);
    expect(await syncError(src.sync())).toMatchObject({ outcome: "stalled", step: "fetch", reason: "BranchNotFound" });
    await rm(remote, { recursive: true });
    const gone = await syncError(src.sync());
    expect(gone).toMatchObject({ outcome: "transient", step: "fetch", reason: "FetchFailed" });
    expect(gone.message).toContain("does not appear to be a git repository");
    const controller = new AbortController();
    controller.abort(new Error("shutting down"));
    await expect(src.sync(controller.signal)).rejects.toThrow("shutting down");
  });

  it("a poll that outlives timeoutMs after the first sync is a transient timeout", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    // Stands in for ssh: runs the remote command locally, until the flag file exists; then it
    // hangs, as a server that stopped answering does, and writes its pid.
    const fakeSsh = join(root, "fake-ssh");
    const flag = join(root, "hang");
    const pidFile = join(root, "ssh.pid");
    await writeFile(
      fakeSsh,
      `#!/bin/sh\nif [ -e '${flag}' ]; then echo $$ > '${pidFile}'; exec sleep 30; fi\nfor last; do :; done\nexec sh -c "$last"\n`,
      { mode: 0o755 },
    );
    const src = source({
      url: `ssh://git.example.invalid${remote}`,
      timeoutMs: 1_500,
      env: { GIT_SSH_COMMAND: fakeSsh, GIT_SSH_VARIANT: "simple" },
    });
    await src.sync();
    await writeFile(flag, "");
    const started = Date.now();
    try {
      const error = await syncError(src.sync());
      expect(error).toMatchObject({ outcome: "transient", step: "fetch", reason: "Timeout" });
      expect(Date.now() - started).toBeLessThan(10_000);
      // The poll shell's process group was killed: git, and the "ssh" under it.
      expect(await stopWrittenPid(pidFile)).toBe(false);
    } finally {
      await stopWrittenPid(pidFile);
    }
  });

  it("a new revision starts no rev-parse, before its fetch or after it, and no type check of the root tree", async () => {
    const { src, since } = await tracedSource();
    await writeFiles({ "x.yaml": "a: 2\n" });
    const head = commitAndPush("two");
    const snapshot = await src.sync();
    expect(snapshot.revision).toBe(head);
    expect(snapshot.message).toBe("two");
    expect(text(snapshot)).toEqual({ "x.yaml": "a: 2\n" });
    // Through simple-git: the blob reads (cat-file --batch) run with an environment of their own.
    // The fetched commit's id, author and message come from one `git log`.
    expect((await since()).sort()).toEqual(["fetch", "log", "ls-remote", "ls-tree"]);
  });

  it("after a webhook said the branch moved, a new revision is fetched without listing the branch first", async () => {
    const { src, since } = await tracedSource();
    await writeFiles({ "x.yaml": "a: 2\n" });
    const head = commitAndPush("two");
    src.moved();
    const snapshot = await src.sync();
    expect(snapshot.revision).toBe(head);
    expect(text(snapshot)).toEqual({ "x.yaml": "a: 2\n" });
    expect((await since()).sort()).toEqual(["fetch", "log", "ls-tree"]);
    // Once: the next poll lists the branch as before, and finds it unchanged.
    expect((await src.sync()).revision).toBe(head);
    expect(await since()).toEqual(["ls-remote"]);
  });

  it("a webhook for a branch that is gone still gives a stalled BranchNotFound", async () => {
    const { src } = await tracedSource();
    execFileSync("git", ["--git-dir", remote, "update-ref", "-d", "refs/heads/main"]);
    src.moved();
    await expect(src.sync()).rejects.toMatchObject({ outcome: "stalled", reason: "BranchNotFound" });
  });

  it("each file carries Git's blob id of its content (the parse cache's key), as git hash-object gives it", async () => {
    await writeFiles({ "x.yaml": "a: 1\n", "deep/y.yml": "b: 2\n" });
    commitAndPush("ids");
    const snapshot = await source().sync();
    expect(snapshot.files.length).toBe(2);
    for (const file of snapshot.files) {
      const oid = execFileSync("git", ["hash-object", "--stdin"], { input: Buffer.from(file.content) })
        .toString()
        .trim();
      expect(file.id).toBe(`git-blob:${oid}`);
    }
  });

  it("a new revision reads only the blobs it adds: an unchanged file keeps the content already held", async () => {
    await writeFiles({ "x.yaml": "a: 1\n", "y.yaml": "b: 1\n" });
    commitAndPush("one");
    const src = source();
    const first = await src.sync();
    await writeFiles({ "y.yaml": "b: 2\n", "z/x.yaml": "a: 1\n" });
    commitAndPush("two");
    const second = await src.sync();
    const file = (s: Snapshot, path: string) => s.files.find((f) => f.path === path)!.content;
    expect(text(second)).toEqual({ "x.yaml": "a: 1\n", "y.yaml": "b: 2\n", "z/x.yaml": "a: 1\n" });
    // The very same bytes, not read again; a copy under a new path shares them too.
    expect(file(second, "x.yaml")).toBe(file(first, "x.yaml"));
    expect(file(second, "z/x.yaml")).toBe(file(first, "x.yaml"));
    expect(file(second, "y.yaml")).not.toBe(file(first, "y.yaml"));
  });

  it("a force-push replacing the head is followed, and the old content is gone", async () => {
    await writeFiles({ "x.yaml": "a: 1\n", "bad.yaml": "oops: true\n" });
    commitAndPush("one");
    const src = source();
    await src.sync();
    await writeFiles({ "x.yaml": "a: 2\n" });
    commitAndPush("two");
    await src.sync();

    git(work, ["reset", "--quiet", "--hard", "HEAD~1"]);
    await rm(join(work, "bad.yaml"));
    await writeFiles({ "x.yaml": "a: 3\n" });
    const rewritten = commitAndPush("rewritten history", { force: true });

    const snapshot = await src.sync();
    expect(snapshot.revision).toBe(rewritten);
    expect(text(snapshot)).toEqual({ "x.yaml": "a: 3\n" });
  });

  it("a new source on an existing work directory (a restart) reuses it", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("one");
    await source().sync();
    const snapshot = await source().sync();
    expect(snapshot.revision).toBe(head);
    expect(text(snapshot)).toEqual({ "x.yaml": "a: 1\n" });
  });

  it("a work directory holding something else is refused, not wiped", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const workDir = join(root, "precious");
    await mkdir(workDir);
    await writeFile(join(workDir, "notes.txt"), "keep me");
    const error = await syncError(source({ workDir }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "checkout", reason: "WorkDirInvalid" });
    expect(await readFile(join(workDir, "notes.txt"), "utf8")).toBe("keep me");
  });

  it("a missing branch is a stalled fetch error", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const error = await syncError(source({ branch: "release" }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "fetch", reason: "BranchNotFound" });
  });

  it("a missing sub-path is a stalled checkout error carrying the revision", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("one");
    const error = await syncError(source({ path: "nope" }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "checkout", reason: "PathNotFound", revision: head });
  });

  it("an unreachable repository is a transient fetch error that keeps git's cause", async () => {
    const error = await syncError(source({ url: `file://${join(root, "missing.git")}` }).sync());
    expect(error).toMatchObject({ outcome: "transient", step: "fetch", reason: "FetchFailed" });
    // Not only git's fixed hint ("Please make sure you have the correct access rights").
    expect(error.message).toContain("does not appear to be a git repository");
    expect(error.message).not.toContain("Please make sure");
  });

  it("credentials in an https URL appear neither in errors nor in the source's url", async () => {
    // Port 1 on loopback refuses the connection at once.
    const src = source({ url: "https://deployer:s3cr3t-T0ken@127.0.0.1:1/org/repo.git" });
    expect(src.url).toBe("https://127.0.0.1:1/org/repo.git");
    const error = await syncError(src.sync());
    expect(error).toMatchObject({ outcome: "transient", step: "fetch" });
    expect(error.message).not.toContain("s3cr3t");
    expect(JSON.stringify(error)).not.toContain("s3cr3t");
    expect(error.message).toContain("127.0.0.1");
  });

  it("a sync aborted by the caller rejects with the signal's reason", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const controller = new AbortController();
    controller.abort(new Error("shutting down"));
    await expect(source().sync(controller.signal)).rejects.toThrow("shutting down");
  });

  it("ssh:// goes through the configured GIT_SSH_COMMAND, with the user name kept out of the url", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("one");
    // Stands in for ssh: runs the remote command (git-upload-pack '<path>') locally and leaves a mark.
    const fakeSsh = join(root, "fake-ssh");
    const mark = join(root, "ssh-was-used");
    await writeFile(fakeSsh, `#!/bin/sh\ntouch '${mark}'\nfor last; do :; done\nexec sh -c "$last"\n`, { mode: 0o755 });

    const src = source({
      url: `ssh://deploy@git.example.invalid${remote}`,
      env: { GIT_SSH_COMMAND: fakeSsh, GIT_SSH_VARIANT: "simple" },
    });
    expect(src.url).toBe(`ssh://git.example.invalid${remote}`);
    expect((await src.sync()).revision).toBe(head);
    expect(existsSync(mark)).toBe(true);
  });

  it("a remote that does not answer within timeoutMs is a transient timeout", async () => {
    const slowSsh = join(root, "slow-ssh");
    // Never answers. git is killed at the deadline; the stand-in outlives it, so the test stops it by pid.
    const pidFile = join(root, "slow-ssh.pid");
    await writeFile(slowSsh, `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 30\n`, { mode: 0o755 });
    const started = Date.now();
    try {
      const error = await syncError(
        source({ url: "ssh://git.example.invalid/repo.git", timeoutMs: 500, env: { GIT_SSH_COMMAND: slowSsh } }).sync(),
      );
      expect(error).toMatchObject({ outcome: "transient", step: "fetch", reason: "Timeout" });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await stopWrittenPid(pidFile);
    }
  });

  it("an environment variable git could be subverted with is refused as a stalled error", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const error = await syncError(source({ env: { GIT_CONFIG_GLOBAL: join(root, "evil.gitconfig") } }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "fetch", reason: "UnsafeGitEnvironment" });
  });

  it("symlinks in the repository are never followed, even when named .yaml", async () => {
    await writeFiles({ "manifests/real.yaml": "a: 1\n" });
    await symlink("/etc/passwd", join(work, "manifests/passwd.yaml"));
    await symlink("/etc", join(work, "manifests/etc"));
    await symlink("../outside", join(work, "manifests/up.yaml"));
    await symlink("/etc", join(work, "linked"));
    const head = commitAndPush("sneaky links");

    const snapshot = await source({ path: "manifests" }).sync();
    expect(snapshot.files.map((f) => f.path)).toEqual(["real.yaml"]);
    expect(snapshot.files.some((f) => Buffer.from(f.content).toString("utf8").includes("root:"))).toBe(false);

    // A sub-path that is itself a link is not a directory of this repository.
    const error = await syncError(source({ path: "linked", workDir: join(root, "other") }).sync());
    expect(error).toMatchObject({ outcome: "stalled", reason: "PathNotFound", revision: head });
  });
});

describe("SSH commit signatures", () => {
  async function sshKey(name: string): Promise<{ key: string; pub: string }> {
    const key = join(root, name);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key], { stdio: "ignore" });
    return { key, pub: (await readFile(`${key}.pub`, "utf8")).trim() };
  }
  const signWith = (key: string) => [
    "-c",
    "gpg.format=ssh",
    "-c",
    `user.signingkey=${key}`,
    "-c",
    "commit.gpgsign=true",
  ];

  it("a commit signed by an allowed key verifies; an unsigned one is refused with its revision", async () => {
    const { key, pub } = await sshKey("deploy-signer");
    const allowedSignersFile = join(root, "allowed_signers");
    await writeFile(allowedSignersFile, `dev@example.com namespaces="git" ${pub}\n`);
    const src = source({ verify: { mode: "ssh", allowedSignersFile } });

    await writeFiles({ "x.yaml": "a: 1\n" });
    const signed = commitAndPush("signed", { sign: signWith(key) });
    // Independent check: git itself agrees the signature is good.
    git(work, ["-c", `gpg.ssh.allowedSignersFile=${allowedSignersFile}`, "verify-commit", signed]);
    expect((await src.sync()).revision).toBe(signed);

    await writeFiles({ "x.yaml": "a: 2\n" });
    const unsigned = commitAndPush("unsigned");
    const error = await syncError(src.sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "verify", reason: "SignatureInvalid", revision: unsigned });
  });

  it("a commit signed by a key missing from the allowed signers is refused", async () => {
    const allowed = await sshKey("allowed");
    const stranger = await sshKey("stranger");
    const allowedSignersFile = join(root, "allowed_signers");
    await writeFile(allowedSignersFile, `dev@example.com namespaces="git" ${allowed.pub}\n`);

    await writeFiles({ "x.yaml": "a: 1\n" });
    const head = commitAndPush("signed by a stranger", { sign: signWith(stranger.key) });
    const error = await syncError(source({ verify: { mode: "ssh", allowedSignersFile } }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "verify", reason: "SignatureInvalid", revision: head });
  });

  it("a missing allowed-signers file is a stalled verification error", async () => {
    await writeFiles({ "x.yaml": "a: 1\n" });
    commitAndPush("one");
    const allowedSignersFile = join(root, "absent");
    const error = await syncError(source({ verify: { mode: "ssh", allowedSignersFile } }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "verify", reason: "VerificationConfigInvalid" });
  });
});

const hasGpg = (() => {
  try {
    execFileSync("gpg", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe.runIf(hasGpg)("GPG commit signatures", () => {
  async function gnupgHome(name: string): Promise<string> {
    const home = join(root, name);
    await mkdir(home, { mode: 0o700 });
    gnupgHomes.push(home);
    return home;
  }
  function gpg(home: string, args: string[]): Buffer {
    return execFileSync("gpg", ["--batch", "--quiet", ...args], {
      env: { ...process.env, GNUPGHOME: home },
      stdio: "pipe",
    });
  }

  it("a commit signed by a key in the keyring verifies; unsigned and SSH-signed ones are refused", async () => {
    const signer = await gnupgHome("signer");
    gpg(signer, ["--passphrase", "", "--quick-gen-key", "Dev One <dev@example.com>", "ed25519", "sign", "never"]);
    const keyringDir = await gnupgHome("keyring");
    await writeFile(join(root, "pub.gpg"), gpg(signer, ["--export", "dev@example.com"]));
    gpg(keyringDir, ["--import", join(root, "pub.gpg")]);
    const src = source({ verify: { mode: "gpg", keyringDir } });

    await writeFiles({ "x.yaml": "a: 1\n" });
    const sign = ["-c", "gpg.format=openpgp", "-c", "user.signingkey=dev@example.com", "-c", "commit.gpgsign=true"];
    const signed = commitAndPush("gpg signed", { sign, env: { GNUPGHOME: signer } });
    expect((await src.sync()).revision).toBe(signed);

    await writeFiles({ "x.yaml": "a: 2\n" });
    const unsigned = commitAndPush("unsigned");
    expect(await syncError(src.sync())).toMatchObject({ outcome: "stalled", step: "verify", revision: unsigned });

    const sshKey = join(root, "ssh-signer");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", sshKey], { stdio: "ignore" });
    await writeFiles({ "x.yaml": "a: 3\n" });
    const sshSigned = commitAndPush("ssh signed", {
      sign: ["-c", "gpg.format=ssh", "-c", `user.signingkey=${sshKey}`, "-c", "commit.gpgsign=true"],
    });
    expect(await syncError(src.sync())).toMatchObject({ reason: "SignatureInvalid", revision: sshSigned });
  });

  it("a commit signed by a key outside the keyring is refused", async () => {
    const signer = await gnupgHome("signer");
    gpg(signer, ["--passphrase", "", "--quick-gen-key", "Dev One <dev@example.com>", "ed25519", "sign", "never"]);
    const keyringDir = await gnupgHome("empty-keyring");
    gpg(keyringDir, ["--list-keys"]); // creates an empty keyring

    await writeFiles({ "x.yaml": "a: 1\n" });
    const sign = ["-c", "gpg.format=openpgp", "-c", "user.signingkey=dev@example.com", "-c", "commit.gpgsign=true"];
    const head = commitAndPush("signed", { sign, env: { GNUPGHOME: signer } });
    const error = await syncError(source({ verify: { mode: "gpg", keyringDir } }).sync());
    expect(error).toMatchObject({ outcome: "stalled", step: "verify", reason: "SignatureInvalid", revision: head });
  });
});
