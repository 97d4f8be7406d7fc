// The folder reader's bytes: exactly each file's, whatever its size, while consecutive small
// files share one buffer (a buffer per file cost an allocation outside the heap each).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isManifestPath, readManifestTree } from "./tree.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gmsa-tree-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** `n` bytes of YAML comment text that differ from file to file. */
function text(seed: number, n: number): string {
  const line = `# file ${seed} ${"x".repeat(60)}\n`;
  return line.repeat(Math.ceil(n / line.length)).slice(0, n);
}

describe("readManifestTree", () => {
  it("reads every file's bytes exactly, empty, small and larger than a shared buffer", async () => {
    const sizes = [0, 1, 700, 65_535, 65_536, 65_537, 200_000, 300, 1_048_576, 5];
    sizes.forEach((n, i) => writeFileSync(join(dir, `f${String(i).padStart(2, "0")}.yaml`), text(i, n)));
    const tree = await readManifestTree(dir);
    expect(tree.errors).toEqual([]);
    expect(tree.files.map((f) => f.path)).toEqual(sizes.map((_, i) => `f${String(i).padStart(2, "0")}.yaml`));
    for (const file of tree.files)
      expect(Buffer.from(file.content).equals(readFileSync(join(dir, file.path))), file.path).toBe(true);
  });

  it("gives consecutive small files views of one buffer, not a buffer each", async () => {
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, `app${String(i).padStart(2, "0")}.yaml`), text(i, 900));
    const tree = await readManifestTree(dir);
    expect(tree.files).toHaveLength(20);
    expect(new Set(tree.files.map((f) => f.content.buffer)).size).toBe(1);
    expect(tree.files.map((f) => f.content.length)).toEqual(Array(20).fill(900));
  });

  it("still refuses a file over the limit, reading at most one byte more", async () => {
    writeFileSync(join(dir, "big.yaml"), text(1, 2_000));
    writeFileSync(join(dir, "small.yaml"), text(2, 1_000));
    const tree = await readManifestTree(dir, 1_500);
    expect(tree.errors.map((e) => [e.file, e.code])).toEqual([["big.yaml", "file-too-large"]]);
    expect(tree.files.map((f) => [f.path, f.content.length])).toEqual([["small.yaml", 1_000]]);
  });
});

describe("isManifestPath", () => {
  it("takes .yaml and .yml in any case, and nothing under or named with a leading '.'", () => {
    const paths = ["a.yaml", "a/b.YML", "a/b/c.Yaml", "a..yaml", ".a.yaml", ".github/ci.yml", "a/.b/c.yaml"];
    paths.push("a/.yaml", "a/b.yaml.txt", "a/b.yamlx", "a.b/c.yml", "a/b./c.yml", "a//b.yaml");
    expect(paths.filter((p) => isManifestPath(p))).toEqual([
      "a.yaml",
      "a/b.YML",
      "a/b/c.Yaml",
      "a..yaml",
      "a.b/c.yml",
      "a/b./c.yml",
      "a//b.yaml",
    ]);
  });
});
