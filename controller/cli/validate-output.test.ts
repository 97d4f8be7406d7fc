// The exact bytes `validate` prints for many invalid repositories, against a recording made
// with the code as it was before the loader was made faster: every error's file, line, column,
// path, code and message, their order and the exit code must stay what they were. The
// repositories are the fixture folders and, for breadth, examples/ with one change each (a
// field removed, given a wrong type, an empty or an over-long value, or an unknown sibling).
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMap, isScalar, isSeq, parseDocument } from "yaml";
import { main } from "./main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures");
const RECORDING = join(FIXTURES, "validate-output.txt");

/** `validate DIR --format F`'s exit code, stdout and stderr, as one block of text. */
async function validate(dir: string, format: string): Promise<string> {
  let out = "";
  let err = "";
  const code = await main(["validate", dir, "--format", format], {
    stdout: (s) => void (out += s),
    stderr: (s) => void (err += s),
  });
  return `exit ${code}\n${out}${err === "" ? "" : `stderr:\n${err}`}`;
}

/** Every leaf (scalar) path of a YAML node. */
function leaves(node: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (isMap(node))
    return node.items.flatMap((pair) =>
      isScalar(pair.key) ? leaves(pair.value, [...path, String(pair.key.value)]) : [],
    );
  if (isSeq(node)) return node.items.flatMap((item, i) => leaves(item, [...path, i]));
  return [path];
}

/** examples/ with one change each: the folder name says which. */
async function mutations(into: string): Promise<string[]> {
  const examples = join(ROOT, "examples");
  const files = (await readdir(examples, { recursive: true })).filter((f) => f.endsWith(".yaml")).sort();
  const dirs: string[] = [];
  for (const file of files) {
    const text = await readFile(join(examples, file), "utf8");
    const docs = text.split(/^---\n/m);
    for (const [d, source] of docs.entries()) {
      for (const path of leaves(parseDocument(source).contents)) {
        if (path.length === 0) continue;
        const changes: [string, (doc: ReturnType<typeof parseDocument>) => void][] = [
          ["removed", (doc) => doc.deleteIn(path)],
          ["number", (doc) => doc.setIn(path, 12345)],
          ["list", (doc) => doc.setIn(path, doc.createNode(["a", "b"]))],
          ["empty", (doc) => doc.setIn(path, "")],
          ["long", (doc) => doc.setIn(path, "x".repeat(300))],
        ];
        if (typeof path.at(-1) === "string")
          changes.push(["unknown", (doc) => doc.setIn([...path.slice(0, -1), "colour"], "blue")]);
        for (const [what, change] of changes) {
          const doc = parseDocument(source);
          change(doc);
          const name = `${file.replaceAll("/", "_")}.${d}.${path.join(".")}.${what}`;
          const dir = join(into, name);
          await cp(examples, dir, { recursive: true });
          await writeFile(join(dir, file), docs.map((s, i) => (i === d ? doc.toString() : s)).join("---\n"));
          dirs.push(dir);
        }
      }
    }
  }
  return dirs;
}

describe("validate's output for invalid repositories", () => {
  let scratch = "";
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "gmsa-validate-output-"));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it("is byte for byte the recorded one: errors, their order and the exit code", async () => {
    const fixtures = [
      ...(await readdir(join(FIXTURES, "manifests"))).sort().map((d) => join(FIXTURES, "manifests", d)),
      join(FIXTURES, "yaml"),
      join(FIXTURES, "invalid", "hostile"),
    ];
    const dirs = [...fixtures, ...(await mutations(scratch))];
    let recorded = "";
    for (const dir of dirs) {
      const name = dir.startsWith(scratch) ? relative(scratch, dir) : relative(ROOT, dir);
      // json carries the same fields as text: once is enough for the many mutated copies.
      const formats = dir.startsWith(scratch) ? ["text"] : ["text", "json"];
      for (const format of formats) recorded += `== ${name} --format ${format}\n${await validate(dir, format)}`;
    }
    await expect(recorded).toMatchFileSnapshot(RECORDING);
  }, 120_000);
});
