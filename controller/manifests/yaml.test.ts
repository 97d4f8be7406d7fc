// The fast parser (js-yaml) and the positioned one (yaml) must agree on every document they
// both accept: same values, same document starts. Checked on every fixture and example file,
// on document-marker edge cases, and differentially over test/fixtures/yaml/: a corpus of the
// scalars, directives, tags and keys on which YAML 1.1, YAML 1.2 and the two loaders differ.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { CORE_SCHEMA, dump, loadAll } from "js-yaml";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { parseManifests } from "./parse.ts";
import type { ManifestError } from "./types.ts";
import { decodeUtf8, parseFile, parseYaml } from "./yaml.ts";
import { readBlockYaml } from "./block-yaml.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CORPUS = join(ROOT, "test", "fixtures", "yaml");

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

/**
 * What the block reader gives, and what js-yaml (values) and `yaml` (values and document
 * starts) give for the same text: equal whenever the block reader accepts the text.
 */
function blockAndGeneral(text: string): { block: unknown; general: unknown } | undefined {
  const block = readBlockYaml(text, 50_000);
  if (!block) return undefined;
  const byJsYaml = loadAll(text, { schema: CORE_SCHEMA, maxAliases: 0, maxDepth: 64 });
  const byYaml = parseYaml("f.yaml", text, []).map((d) => {
    const pos = d.lines.linePos(d.start);
    return { value: d.value, start: { line: pos.line, column: pos.col } };
  });
  expect(byJsYaml).toEqual(byYaml.map((d) => d.value));
  return { block: block.values.map((value, i) => ({ value, start: block.starts[i] })), general: byYaml };
}

describe("the block reader (plain block YAML without the general parsers)", () => {
  const files = [
    ...yamlFiles(join(ROOT, "examples")),
    ...yamlFiles(join(ROOT, "test", "fixtures", "manifests")),
    ...yamlFiles(CORPUS),
  ];

  it.each(files.map((f) => [relative(ROOT, f), f]))("reads %s as js-yaml and yaml do, or gives it up", (_, file) => {
    const both = blockAndGeneral(readFileSync(file, "utf8"));
    if (both) expect(both.block).toEqual(both.general);
  });

  it("reads every example manifest itself", () => {
    const manifests = yamlFiles(join(ROOT, "examples")).filter((f) => !/[/\\]ci[/\\]/.test(f));
    expect(manifests.length).toBeGreaterThan(3);
    expect(
      manifests.filter((f) => !readBlockYaml(readFileSync(f, "utf8"), 50_000)).map((f) => relative(ROOT, f)),
    ).toEqual([]);
  });

  it.each([
    ["comments at any indent", "# c\na: 1 # one\n  # deeper\nb:\n    # before\n  c: x#y\n# after\n"],
    ["CRLF line ends", "---\r\na: 1\r\nb:\r\n  - x\r\n---\r\nc: 'it''s'\r\n"],
    ["a sequence at its key's indent", "a:\n- x\n- y: 1\n  z: 2\nb: ~\n"],
    ["maps in sequences", "a:\n  - b: 1\n    c:\n      - d\n  -   e: 2\n"],
    ["sequences inside items, at their key's indent", "a:\n- b:\n  - x\n  c: 1\n- d:\n- e\n"],
    [
      "scalars the core schema resolves",
      "a: 030\nb: 0x1F\nc: 0o17\nd: -1.5e3\ne: .inf\nf: .NaN\ng: True\nh: NULL\ni: yes\nj: 1_000\nk: +12\nl: '030'\nm: \"true\"\nn:\n",
    ],
    ["keys the core schema resolves", "1: a\n0x10: b\ntrue: c\nnull: d\n1.50: e\n"],
    ["flow sequences and empty collections", "a: [AES128, AES256]\nb: []\nc: {}\nd: [ 1, -2, .5, x.y ] # n\n"],
    [
      "quotes and characters inside plain scalars",
      'a: "x: y # z"\nb: \'a"b\'\nc: a\'b"c\nd: C:\\\\Apps\\\\\ne: Société Générale\nf: a:b\n',
    ],
    ["a leading marker and several documents", "# head\n--- # first\na: 1\n---\nb: 2\n---\nc: 3\n"],
  ])("agrees with js-yaml and yaml on %s", (_, text) => {
    const both = blockAndGeneral(text);
    expect(both).toBeDefined();
    expect(both?.block).toEqual(both?.general);
  });

  // Seeded mutations (inserted YAML punctuation, deleted characters, repeated lines) of every
  // file above: whatever the reader still accepts, js-yaml reads to the same values and `yaml`
  // to the same document starts.
  it("agrees with js-yaml on 4,000 mutations of those files, or gives them up", () => {
    const seeds = files.map((f) => readFileSync(f, "utf8"));
    const pieces = [" ", ":", "-", "#", "\n", "\n  ", '"', "'", "[", "]", ",", "{", "}", "0", "x", ".", "~"];
    pieces.push("\r\n", "- ", ": ", "---\n", "  ", "e", "true", "null", "0o7", "_", "+", "\\", "é");
    let state = 12345;
    const random = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return Math.floor((state / 2 ** 32) * n);
    };
    let accepted = 0;
    for (let t = 0; t < 4_000; t++) {
      let text = seeds[random(seeds.length)] ?? "";
      for (let k = random(3); k >= 0; k--) {
        const at = random(text.length + 1);
        const how = random(10);
        if (how < 4) text = text.slice(0, at) + (pieces[random(pieces.length)] ?? "") + text.slice(at);
        else if (how < 7) text = text.slice(0, at) + text.slice(at + 1 + random(3));
        else {
          const lines = text.split("\n");
          lines.splice(random(lines.length), 0, lines[random(lines.length)] ?? "");
          text = lines.join("\n");
        }
      }
      const block = readBlockYaml(text, 50_000);
      if (!block) continue;
      accepted++;
      expect({ text, values: loadAll(text, { schema: CORE_SCHEMA, maxAliases: 0, maxDepth: 64 }) }).toEqual({
        text,
        values: block.values,
      });
      const starts = parseYaml("f.yaml", text, []).map((d) => d.lines.linePos(d.start));
      expect({ text, starts: starts.map((p) => ({ line: p.line, column: p.col })) }).toEqual({
        text,
        starts: block.starts,
      });
    }
    expect(accepted).toBeGreaterThan(500);
  });

  // Found by differential runs against js-yaml: each of these was once read to other values
  // than js-yaml's (or accepted where js-yaml refuses the file).
  it.each([
    ["a no-break space after a flow item", "k: [a\u00A0]\n", [{ k: ["a\u00A0"] }]],
    ["a no-break space alone in a flow sequence", "- [\u00A0]\n", [[["\u00A0"]]]],
    ["an ideographic space before a flow item", "k: [b, \u3000x]\n", [{ k: ["b", "\u3000x"] }]],
    ["a lone high surrogate", "a: \uD800\n", "non-printable"],
    ["a lone low surrogate", "a: \uDC00x\n", "non-printable"],
    ["a surrogate pair", "a: \uD83D\uDE00\n", [{ a: "\uD83D\uDE00" }]],
  ])("reads %s as js-yaml does, or gives it up", (_, text, expected) => {
    const block = readBlockYaml(text, 50_000);
    const general = (): unknown => loadAll(text, { schema: CORE_SCHEMA, maxAliases: 0, maxDepth: 64 });
    if (typeof expected === "string") {
      expect(general).toThrow(expected);
      expect(block).toBeUndefined();
    } else {
      expect(general()).toEqual(expected);
      if (block) expect(block.values).toEqual(expected);
    }
  });

  it("refuses nesting past the depth limit made of `- key:` items and sequences at their key's indent", () => {
    // Neither step went through the reader's depth check: 40 such levels were accepted.
    const chain = (levels: number): string =>
      "a:\n" + Array.from({ length: levels }, (_, i) => `${" ".repeat(2 * i)}- k:\n`).join("");
    const errors: ManifestError[] = [];
    parseFile("f.yaml", chain(40), errors);
    expect(errors.map((e) => `${e.line}:${e.column} ${e.code}`)).toEqual(["33:65 too-deep"]);
    // Below the limit, read by the block reader as js-yaml reads it.
    const both = blockAndGeneral(chain(25));
    expect(both).toBeDefined();
    expect(both?.block).toEqual(both?.general);
  });

  // Generated rather than mutated: random values written out by js-yaml and by `yaml` in several
  // styles, keys unquoted (so `1`, `0x10`, `null` are resolved as keys), some lines indented one
  // more or less and Unicode spaces inserted. Whatever the reader accepts must read as js-yaml reads it,
  // with `yaml`'s document starts.
  it("agrees with js-yaml on 2,000 files written by js-yaml and yaml, or gives them up", () => {
    let state = 2024;
    const random = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return Math.floor((state / 2 ** 32) * n);
    };
    const pick = <T>(list: readonly T[]): T => list[random(list.length)] as T;
    const words = ["svc-web", "CN=x,DC=y", "a.b", "1.0", "web$", "0x1F", "0o17", "017", "+12", "1_000", ".inf"];
    words.push("-.Inf", ".NaN", "1e3", ".5", "5.", "true", "True", "null", "~", "yes", "it's", "a#b", "é", "-x");
    words.push("a\u00A0", "\u3000", "x\u200B", "1:2", "@", "-0", "2001-12-14");
    const keys = ["a", "b", "1", "01", "0x10", "1e3", "true", "null", "Null", "a.b", "a-b", "_", "1.50", "0o7"];
    const value = (depth: number, inSequence: boolean): unknown => {
      const r = random(10);
      if (depth > 5 || (r < 4 && depth > 0)) return random(8) === 0 ? Number(pick(words)) : pick(words);
      if (r < 6 && !inSequence) return Array.from({ length: random(4) }, () => value(depth + 1, true));
      return Object.fromEntries(Array.from({ length: random(4) + 1 }, () => [pick(keys), value(depth + 1, false)]));
    };
    const styles: ((v: unknown) => string)[] = [
      (v) => dump(v),
      (v) => dump(v, { flowLevel: 2 }),
      (v) => dump(v, { indent: 1 }),
      (v) => dump(v, { indent: 3, seqNoIndent: true }),
      (v) => stringify(v),
      (v) => stringify(v, { indent: 1, indentSeq: false }),
      (v) => stringify(v, { indent: 4, defaultStringType: "QUOTE_SINGLE" }),
    ];
    const inserts = [" ", "\u00A0", "\u3000", " #", ",", "\r\n", "---\n", "- ", ": ", "'", "[", "]", "\n  "];
    let accepted = 0;
    for (let t = 0; t < 2_000; t++) {
      const docs = Array.from({ length: random(3) + 1 }, () => pick(styles)(value(0, false)));
      let text = (random(3) === 0 ? "---\n" : "") + docs.join(random(2) ? "---\n" : "--- # next\n");
      if (random(3) !== 0) text = text.replace(/^(\s*(?:- )?)['"]([^'"]*)['"]:/gm, "$1$2:");
      if (random(4) === 0) text = text.replace(/\n/g, "\r\n");
      for (let m = random(3); m > 0; m--) {
        const at = random(text.length);
        const flow = [...text.matchAll(/[[,\]]/g)].map((match) => match.index);
        if (random(3) === 0 && flow.length > 0) {
          // A Unicode space beside a flow item, which YAML keeps in the item.
          const near = pick(flow) + (text[at] === "]" ? 0 : 1);
          text = text.slice(0, near) + pick(["\u00A0", "\u3000", "\u2003"]) + text.slice(near);
        } else if (random(2) === 0) text = text.slice(0, at) + pick(inserts) + text.slice(at);
        else {
          const lines = text.split("\n");
          const i = random(lines.length);
          lines[i] = random(2) ? ` ${lines[i]}` : (lines[i] ?? "").replace(/^ /, "");
          text = lines.join("\n");
        }
      }
      const block = readBlockYaml(text, 50_000);
      if (!block) continue;
      accepted++;
      const values = loadAll(text, { schema: CORE_SCHEMA, maxAliases: 0, maxDepth: 64 });
      expect({ text, values: block.values }).toEqual({ text, values });
      const starts = parseYaml("f.yaml", text, []).map((d) => d.lines.linePos(d.start));
      expect({ text, starts: block.starts }).toEqual({
        text,
        starts: starts.map((p) => ({ line: p.line, column: p.col })),
      });
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it.each([
    ["a continuation line", "a: b\n  c\n"],
    ["a key without a space after its colon", "a:b\nc: d\n"],
    ["a sequence item after a key on its line", "a: - b\n"],
    ["a duplicate key", "a: 1\na: 2\n"],
    ["a trailing marker", "a: 1\n---\n"],
    ["an empty document", "---\n---\na: 1\n"],
    ["an end marker", "a: 1\n...\n"],
    ["a directive", "%YAML 1.2\n---\na: 1\n"],
    ["content on the marker line", "--- {a: 1}\n"],
    ["a tag", "a: !!str 1\n"],
    ["an exclamation mark anywhere", "a: hello! # hi\n"],
    ["an anchor and an alias", "a: &x 1\nb: *x\n"],
    ["a block scalar", "a: |\n  x\n"],
    ["a tab", "a:\t1\n"],
    ["an escape", 'a: "x\\ty"\n'],
    ["a multi-line flow sequence", "a: [x,\n  y]\n"],
    ["a flow map", "a: {b: 1}\n"],
    ["bad indentation", "a:\n    b: 1\n  c: 2\n"],
    ["a lone dash", "a:\n  -\n    b: 1\n"],
    ["a nested sequence on one line", "a:\n  - - b\n"],
    ["a __proto__ key", "__proto__: 1\n"],
    ["a root that is not a map at column 0", "  a: 1\n"],
    ["a complex key", "? a\n: 1\n"],
    ["a control character", "a: x\u0007\n"],
    ["an empty file", ""],
  ])("gives up on %s", (_, text) => {
    expect(readBlockYaml(text, 50_000)).toBeUndefined();
  });
});

/** What a file reads as: its accepted values, or its errors as `LINE:COL code`. */
function read(file: string): { values: unknown[] } | { errors: string[] } {
  const errors: ManifestError[] = [];
  const docs = parseFile(file, readFileSync(join(CORPUS, file), "utf8"), errors);
  if (errors.length > 0 || docs.some((d) => d.broken))
    return { errors: errors.map((e) => `${e.line}:${e.column} ${e.code}`) };
  return { values: docs.map((d) => d.value) };
}

describe("one YAML meaning (differential, over test/fixtures/yaml/)", () => {
  const corpus = readdirSync(CORPUS).sort();

  it.each(corpus)("%s: js-yaml and yaml give identical values whenever the file is accepted", (file) => {
    const text = readFileSync(join(CORPUS, file), "utf8");
    const result = read(file);
    if ("errors" in result) return; // refused: neither parser's value is used (see the next test)
    // Both loaders directly, not through the production routing between them.
    const byJsYaml = loadAll(text, { schema: CORE_SCHEMA }).filter((v) => v !== null && v !== undefined);
    const byYaml = parseYaml(file, text, []).map((d) => d.value);
    expect(byJsYaml).toEqual(byYaml);
    expect(result.values).toEqual(byYaml);
  });

  it("refuses the files whose meaning depends on the parser, at the offending directive, tag or node", () => {
    const refused = Object.fromEntries(
      corpus.map((f) => [f, read(f)]).filter(([, r]) => typeof r === "object" && "errors" in r),
    );
    expect(refused).toEqual({
      "anchors.yaml": { errors: ["2:7 alias-refused"] },
      "binary-tag.yaml": { errors: ["1:7 tag-refused"] },
      "complex-key.yaml": { errors: ["1:1 yaml-syntax"] },
      "deep.yaml": { errors: ["1:67 too-deep"] },
      "duplicate.yaml": { errors: ["2:1 duplicate-key"] },
      "float-tag.yaml": { errors: ["1:11 tag-refused"] },
      "set-tag.yaml": { errors: ["1:10 tag-refused"] },
      "str-tag.yaml": { errors: ["1:11 tag-refused"] },
      "tag-directive.yaml": { errors: ["1:1 directive-refused", "3:4 tag-refused"] },
      "tagged-key.yaml": { errors: ["1:1 tag-refused"] },
      "tags.yaml": { errors: ["1:8 tag-refused"] },
      "unknown-directive.yaml": { errors: ["1:1 directive-refused"] },
      "yaml11-directive.yaml": { errors: ["1:1 directive-refused"] },
    });
  });

  it("reads 030 as 30 and yes as a string, with or without '<<' in a comment", () => {
    const plain = "managedPasswordIntervalInDays: 030\nallowWeakEncryption: yes\n";
    for (const text of [plain, `# <<\n${plain}`, `%YAML 1.2\n---\n${plain}`]) {
      const docs = parseFile("f.yaml", text, []);
      expect(docs.map((d) => d.value)).toEqual([{ managedPasswordIntervalInDays: 30, allowWeakEncryption: "yes" }]);
    }
    const result = parseManifests([
      { path: "merge-comment.yaml", content: readFileSync(join(CORPUS, "merge-comment.yaml")) },
    ]);
    expect(result.ok ? [] : result.errors.map((e) => `${e.line}:${e.column} ${e.code} ${e.path}`)).toEqual([
      "10:24 wrong-type spec.allowWeakEncryption",
    ]);
  });

  it("names the directive it refuses and why", () => {
    const errors: ManifestError[] = [];
    parseFile("f.yaml", readFileSync(join(CORPUS, "yaml11-directive.yaml"), "utf8"), errors);
    expect(errors[0]?.message).toBe(
      '"%YAML 1.1" is not allowed: manifests are YAML 1.2 (under YAML 1.1, 030 is 24 and yes is true); remove the directive or write %YAML 1.2',
    );
  });

  it("refuses 500,000 nested brackets at the depth limit in bounded time", () => {
    const errors: ManifestError[] = [];
    const started = performance.now();
    parseFile("f.yaml", `a: ${"[".repeat(500_000)}`, errors);
    expect(performance.now() - started).toBeLessThan(500);
    expect(errors.map((e) => `${e.line}:${e.column} ${e.code} ${e.message}`)).toEqual([
      "1:67 too-deep nested more than 64 levels deep",
    ]);
  });
});

describe("bytes that are not UTF-8 text", () => {
  const utf16 = (text: string, bom: boolean): Uint8Array => {
    const out = Buffer.alloc(text.length * 2);
    for (let i = 0; i < text.length; i++) out.writeUInt16LE(text.charCodeAt(i), i * 2);
    return bom ? Buffer.concat([Buffer.from([0xff, 0xfe]), out]) : out;
  };
  const decoded = (bytes: Uint8Array): string =>
    "error" in decodeUtf8("f.yaml", bytes)
      ? ((r) => `${r.line}:${r.column} ${r.message}`)((decodeUtf8("f.yaml", bytes) as { error: ManifestError }).error)
      : "text";

  it("say UTF-16 without a byte order mark, or a file of NUL bytes, is not UTF-8 text", () => {
    expect(decoded(utf16("kind: ADGroup\n", false))).toBe(
      "1:2 not UTF-8 text (NUL byte at offset 1: UTF-16 without a byte order mark, or a binary file); save the file as UTF-8",
    );
    expect(decoded(new Uint8Array(64))).toMatch(/^1:1 not UTF-8 text \(NUL byte at offset 0/);
    expect(decoded(utf16("kind: ADGroup\n", true))).toMatch(/^1:1 not UTF-8 text \(UTF-16/);
  });

  it("refuse a byte order mark at the start of a second document, and accept one at the start of the file", () => {
    expect(decoded(Buffer.from("\uFEFFa: 1\n---\nb: 2\n"))).toBe("text");
    expect(decoded(Buffer.from("\uFEFFa: 1\n---\n\uFEFFb: 2\n"))).toBe(
      "3:1 a byte order mark (U+FEFF) in the middle of the file; only the very start of a file may hold one (was a second file pasted in?)",
    );
  });
});
