// The fast parser (js-yaml) and the positioned one (yaml) must agree on every document they
// both accept: same values, same document starts. Checked on every fixture and example file,
// and on document-marker edge cases.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseFile, parseYaml } from "./yaml.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f));
}

function bothWays(text: string): { fast: unknown[]; slow: unknown[] } {
  const fast = parseFile("f.yaml", text, []).map((d) => ({ value: d.value, start: d.start, index: d.index }));
  const slow = parseYaml("f.yaml", text, []).map((d) => {
    const pos = d.lines.linePos(d.start);
    return { value: d.value, start: { line: pos.line, column: pos.col }, index: d.index };
  });
  return { fast, slow };
}

describe("the fast and the positioned YAML parsers", () => {
  const files = [...yamlFiles(join(ROOT, "examples")), ...yamlFiles(join(ROOT, "test", "fixtures", "manifests"))];

  it.each(files.map((f) => [relative(ROOT, f), f]))("agree on %s", (_, file) => {
    const { fast, slow } = bothWays(readFileSync(file, "utf8"));
    expect(fast).toEqual(slow);
  });

  it.each([
    ["a leading comment and an empty document", "# c\n---\n---\nx: 1\n"],
    ["a trailing marker", "a: 1\n---\n"],
    ["an explicit null document", "--- null\n---\na: 010\nb: 0b11\nc: 1_000\nd: 0o17\ne: .inf\n"],
    ["an end marker", "a: 1\n...\n---\nb: 2\n"],
    ["a directive", "%YAML 1.2\n---\na: 1\n"],
    ["content on the marker line", "--- {a: 1}\n--- [b]\n"],
    ["CRLF line ends", "a: 1\r\n---\r\nb: 2\r\n"],
    ["block scalars", "a: |\n  --- not a marker\n  # not a comment\nb: >-\n  folded\n  text\n"],
  ])("agree on %s", (_, text) => {
    const { fast, slow } = bothWays(text);
    expect(fast).toEqual(slow);
  });
});
