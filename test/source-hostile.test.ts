// The Git source against a hostile or damaged repository, with real git: a huge pushed file
// must not be read into memory, and a corrupted clone must be verified, removed and cloned again.
import { execFile, execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rename, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadManifests, parseManifests } from "../controller/manifests/index.ts";
import { SourceError, createGitSource, fetchFailureReason } from "../controller/source/index.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
let root: string;
let remote: string;
let work: string;

const identity = ["-c", "user.name=Dev One", "-c", "user.email=dev@example.com", "-c", "commit.gpgsign=false"];
function git(cwd: string, args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: "pipe", maxBuffer: 16 * 1024 * 1024 });
}
function commitAndPush(message: string): void {
  git(work, ["add", "-A"]);
  git(work, [...identity, "commit", "--quiet", "-m", message]);
  git(work, ["push", "--quiet", "origin", "HEAD:main"]);
}
const group = (name: string) =>
  `apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: ${name}\nspec:\n  accountName: ${name}\n`;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "gmsa-source-hostile-"));
  remote = join(root, "remote.git");
  work = join(root, "work");
  git(root, ["init", "--quiet", "--bare", "--initial-branch=main", remote]);
  git(root, ["clone", "--quiet", remote, work]);
  git(work, ["checkout", "--quiet", "-b", "main"]);
  await writeFile(join(work, "a.yaml"), group("a"));
  await writeFile(join(work, "b.yaml"), group("b"));
  commitAndPush("two groups");
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

interface ChildSync {
  maxRssKiB: number;
  files: string[];
  errors: string[];
}

/** Syncs a fresh clone in a separate Node process and reports its peak RSS, files and refusals. */
function syncInChild(workDir: string): Promise<ChildSync> {
  const script = `
    import { createGitSource } from ${JSON.stringify(join(ROOT, "controller", "source", "index.ts"))};
    const [url, workDir] = process.argv.slice(-2);
    const snapshot = await createGitSource({ url, workDir, timeoutMs: 300000 }).sync();
    console.log(JSON.stringify({
      maxRssKiB: process.resourceUsage().maxRSS,
      files: snapshot.files.map((f) => f.path),
      errors: (snapshot.fileErrors ?? []).map((e) => e.file + " " + e.code),
    }));`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", script, `file://${remote}`, workDir],
      { maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ChildSync),
    );
  });
}

describe("a pushed file far over the size limit", () => {
  it("is reported from its size alone and never read: peak memory stays as without it", async () => {
    const before = await syncInChild(join(root, "clone-before"));
    // 300 MB of zeros (sparse on disk; git stores it compressed to a few hundred KB).
    await writeFile(join(work, "huge.yaml"), "");
    await truncate(join(work, "huge.yaml"), 300 * 1024 * 1024);
    commitAndPush("a 300 MB manifest");
    const after = await syncInChild(join(root, "clone-after"));
    console.log(`peak RSS of a sync: ${before.maxRssKiB} KiB without the file, ${after.maxRssKiB} KiB with it`);
    expect(after.files).toEqual(["a.yaml", "b.yaml"]);
    expect(after.errors).toEqual(["huge.yaml file-too-large"]);
    expect(after.maxRssKiB - before.maxRssKiB).toBeLessThan(64 * 1024);
  }, 300_000);
});

describe("a corrupted clone", () => {
  /** Empties every loose object file of the clone, as a full disk or a crash mid-write leaves them. */
  async function emptyObjects(workDir: string): Promise<number> {
    let emptied = 0;
    for (const dir of await readdir(join(workDir, "objects"))) {
      if (!/^[0-9a-f]{2}$/.test(dir)) continue;
      for (const file of await readdir(join(workDir, "objects", dir))) {
        await truncate(join(workDir, "objects", dir, file), 0);
        emptied++;
      }
    }
    return emptied;
  }

  it("is verified, removed and cloned again on the next sync (a restart), and reads the right files", async () => {
    const workDir = join(root, "checkout");
    const first = await createGitSource({ url: `file://${remote}`, workDir }).sync();
    expect(await emptyObjects(workDir)).toBeGreaterThan(0);

    const again = await createGitSource({ url: `file://${remote}`, workDir }).sync();
    expect(again.revision).toBe(first.revision);
    expect(again.files.map((f) => f.path)).toEqual(["a.yaml", "b.yaml"]);
    // An independent check that the clone is sound again.
    git(root, ["--git-dir", workDir, "fsck", "--no-dangling"]);
  }, 60_000);

  it("that cannot be cloned again fails as CloneCorrupt with git's own finding, not as a network failure", async () => {
    const workDir = join(root, "checkout");
    await createGitSource({ url: `file://${remote}`, workDir }).sync();
    await emptyObjects(workDir);
    await rename(remote, `${remote}.gone`);

    const error: unknown = await createGitSource({ url: `file://${remote}`, workDir })
      .sync()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect(error).toMatchObject({ outcome: "transient", reason: "CloneCorrupt" });
    expect((error as SourceError).message).toMatch(/^the clone in .* was corrupt \(error: .*empty/);
    expect(fetchFailureReason(error)).toBe("other");
  }, 60_000);
});

describe("a tree validate would refuse on a checkout", () => {
  it("is refused alike by the Git source: the same files and the same errors as validate on the work tree", async () => {
    const deep = join(work, "deep", ...Array.from({ length: 39 }, () => "d"));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, "x.yaml"), group("x"));
    await writeFile(join(work, "trailing.yaml "), group("trailing"));
    await mkdir(join(work, "apps "));
    await writeFile(join(work, "apps ", "c.yaml"), group("c"));
    commitAndPush("names and depths validate refuses");

    const snapshot = await createGitSource({ url: `file://${remote}`, workDir: join(root, "checkout") }).sync();
    const validated = await loadManifests(work);
    expect(parseManifests(snapshot.files, {}, snapshot.fileErrors)).toEqual(validated);
    expect(validated.ok ? [] : validated.errors.map((e) => `${e.file} ${e.code}`)).toEqual([
      "apps  suspicious-name",
      `deep/${"d/".repeat(31)}d too-deep`,
      "trailing.yaml  suspicious-name",
    ]);
  }, 60_000);
});
