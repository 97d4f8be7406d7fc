import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await sleep(20);
  }
}

describe("local source read", () => {
  it("returns the YAML files, skipping other files, .git and symlinks", async () => {
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
