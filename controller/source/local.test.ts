import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadManifests, parseManifests } from "../manifests/index.ts";
import { SourceError } from "./errors.ts";
import { createLocalSource } from "./local.ts";
import type { LocalWatch } from "./local.ts";

let dir: string;
let watches: LocalWatch[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gmsa-local-"));
  watches = [];
});

afterEach(async () => {
  for (const w of watches) await w.close();
  execFileSync("rm", ["-rf", dir]); // fs.rm cannot remove the deep tree below
}, 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await sleep(20);
  }
}

describe("local source read", () => {
  it("returns the YAML files, skipping other files and .git, and refusing symlinks as validate does", async () => {
    await mkdir(join(dir, "teams/a"), { recursive: true });
    await mkdir(join(dir, ".git"));
    await writeFile(join(dir, "teams/a/gmsa.yaml"), "kind: GroupManagedServiceAccount\n");
    await writeFile(join(dir, "group.yml"), "kind: ADGroup\n");
    await writeFile(join(dir, "README.md"), "no\n");
    await writeFile(join(dir, ".git/config.yaml"), "no\n");
    await writeFile(join(dir, ".gmsa.yaml.swp"), "no\n");
    await symlink("/etc/passwd", join(dir, "passwd.yaml"));
    await symlink("/etc", join(dir, "etc"));

    const snapshot = await createLocalSource(dir).read();
    expect(snapshot.files.map((f) => f.path)).toEqual(["group.yml", "teams/a/gmsa.yaml"]);
    expect(Buffer.from(snapshot.files[1]?.content ?? []).toString()).toBe("kind: GroupManagedServiceAccount\n");
    expect(snapshot.revision).toMatch(/^local:[0-9a-f]{64}$/);
    expect(snapshot.fileErrors?.map((e) => `${e.file} ${e.code}`)).toEqual([
      "etc symlink-outside",
      "passwd.yaml symlink-outside",
    ]);
  });

  it("reads the same files and refuses the same entries as validate, over a tricky tree", async () => {
    const group = (name: string) =>
      `apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: ${name}\nspec:\n  accountName: ${name}\n  scope: Global\n`;
    await mkdir(join(dir, "apps/web"), { recursive: true });
    await mkdir(join(dir, ".github"));
    await writeFile(join(dir, "apps/web/group.yaml"), group("web"));
    await writeFile(join(dir, "apps/UPPER.YML"), group("upper"));
    await writeFile(join(dir, "apps/.hidden.yaml"), "not: read\n");
    await writeFile(join(dir, ".github/ci.yml"), "on: push\n");
    await writeFile(join(dir, "apps/web/group.yaml~"), "backup\n");
    await writeFile(join(dir, "#group.yaml#"), "emacs\n");
    await writeFile(join(dir, "trailing.yaml "), group("trailing"));
    await writeFile(join(dir, "big.yaml"), `# ${"x".repeat(2 * 1024 * 1024)}\n`);
    await symlink(join(dir, "apps/web/group.yaml"), join(dir, "inside.yaml"));
    await symlink(join(dir, "apps"), join(dir, "apps-link"));
    await symlink("/etc/hostname", join(dir, "outside.yaml"));
    execFileSync("mkfifo", [join(dir, "pipe.yaml")]);
    const socket = createServer();
    await new Promise<void>((resolve) => socket.listen(join(dir, "socket.yaml"), resolve));
    let deep = join(dir, "deep");
    for (let i = 0; i < 40; i++) deep = join(deep, "d");
    await mkdir(deep, { recursive: true });
    try {
      const validated = await loadManifests(dir);
      const snapshot = await createLocalSource(dir).read();
      // What `run --repo` parses is what `validate` and `plan --repo` parse.
      expect(parseManifests(snapshot.files, {}, snapshot.fileErrors)).toEqual(validated);
      expect(snapshot.files.map((f) => f.path)).toEqual(["apps/UPPER.YML", "apps/web/group.yaml"]);
      expect(validated.ok ? [] : validated.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.code}`)).toEqual([
        "apps-link:1:1 symlink-refused",
        "big.yaml:1:1 file-too-large",
        `deep/${"d/".repeat(31)}d:1:1 too-deep`,
        "inside.yaml:1:1 symlink-refused",
        "outside.yaml:1:1 symlink-outside",
        "pipe.yaml:1:1 unreadable-file",
        "socket.yaml:1:1 unreadable-file",
        "trailing.yaml :1:1 suspicious-name",
      ]);
    } finally {
      await new Promise((resolve) => socket.close(resolve));
    }
  });

  it("the revision changes with content and comes back when the content does", async () => {
    const source = createLocalSource(dir);
    await writeFile(join(dir, "a.yaml"), "a: 1\n");
    const first = (await source.read()).revision;
    expect((await source.read()).revision).toBe(first);
    await writeFile(join(dir, "a.yaml"), "a: 2\n");
    const second = (await source.read()).revision;
    expect(second).not.toBe(first);
    await writeFile(join(dir, "a.yaml"), "a: 1\n");
    expect((await source.read()).revision).toBe(first);
  });

  it("the revision changes when a file is only renamed", async () => {
    const source = createLocalSource(dir);
    await writeFile(join(dir, "a.yaml"), "a: 1\n");
    const before = (await source.read()).revision;
    await rm(join(dir, "a.yaml"));
    await writeFile(join(dir, "b.yaml"), "a: 1\n");
    expect((await source.read()).revision).not.toBe(before);
  });

  it("a missing directory is a stalled error", async () => {
    const error: unknown = await createLocalSource(join(dir, "absent"))
      .read()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect(error).toMatchObject({ outcome: "stalled", reason: "PathNotFound" });
  });
});

describe("local source watch", () => {
  it("fires once for a burst of writes, after the burst", async () => {
    await writeFile(join(dir, "a.yaml"), "a: 0\n");
    let calls = 0;
    const watch = createLocalSource(dir).watch(() => (calls += 1), 200);
    watches.push(watch);
    await watch.ready;

    for (let i = 1; i <= 10; i += 1) {
      await writeFile(join(dir, "a.yaml"), `a: ${i}\n`);
      await writeFile(join(dir, `new-${i}.yaml`), `n: ${i}\n`);
      await sleep(20);
    }
    await waitFor(() => calls > 0);
    await sleep(600);
    expect(calls).toBe(1);
  });

  it("ignores editor temp files and non-manifest files", async () => {
    let calls = 0;
    const watch = createLocalSource(dir).watch(() => (calls += 1), 100);
    watches.push(watch);
    await watch.ready;
    await writeFile(join(dir, ".a.yaml.swp"), "x");
    await writeFile(join(dir, "a.yaml~"), "x");
    await writeFile(join(dir, "notes.txt"), "x");
    await sleep(500);
    expect(calls).toBe(0);

    await writeFile(join(dir, "a.yaml"), "a: 1\n");
    await waitFor(() => calls === 1);
  });

  it("survives folders nested past PATH_MAX (2,500 levels): no watcher error escapes, and the read refuses the depth", async () => {
    const errors: unknown[] = [];
    // A 5,000-character path is too long for mkdir -p or for Node (ENAMETOOLONG): build it one
    // level at a time from inside, without a process per level.
    execFileSync("python3", [
      "-c",
      "import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(2500):\n os.mkdir('d'); os.chdir('d')",
      dir,
    ]);
    let calls = 0;
    const watch = createLocalSource(dir).watch(
      () => (calls += 1),
      100,
      (error) => errors.push(error),
    );
    watches.push(watch);
    await watch.ready;
    const snapshot = await createLocalSource(dir).read();
    expect(snapshot.fileErrors?.map((e) => `${e.file.length} ${e.code} ${e.message}`)).toEqual([
      `${33 * 2 - 1} too-deep folders nested more than 32 levels deep are not read`,
    ]);
    await writeFile(join(dir, "a.yaml"), "a: 1\n");
    await waitFor(() => calls === 1);
    expect(errors).toEqual([]);
  }, 60_000);

  it("does not call back after close", async () => {
    let calls = 0;
    const watch = createLocalSource(dir).watch(() => (calls += 1), 100);
    await watch.ready;
    await writeFile(join(dir, "a.yaml"), "a: 1\n");
    await watch.close();
    await sleep(400);
    expect(calls).toBe(0);
  });
});
