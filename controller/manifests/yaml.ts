/**
 * Bytes → YAML documents → plain values, with a way back to the syntax tree so that any error
 * found later (schema, lint) can be placed at the exact key or value it concerns.
 *
 * Three readers, one answer. Plain block YAML, nearly every manifest, is read by block-yaml.ts
 * in one pass (docs/decisions/block-yaml.md); whatever it gives up on goes to the two general
 * parsers. js-yaml turns text into values about ten times faster than `yaml` (which keeps
 * positions), and positions are only needed for the few documents with errors.
 * So such a file is read by js-yaml first; `yaml` reads it whenever js-yaml refuses it, it may
 * hold directives or tags, or the two disagree on its documents, and re-reads it on demand to
 * place an error. Both use the YAML 1.2 core schema, and nothing may change that: a `%YAML`
 * directive other than 1.2 (under 1.1, `030` is 24 and `yes` is true), any other directive and
 * any explicit tag (`!evil`, `!!binary`) are refused, so a file means the same whichever parser
 * reads it (yaml.test.ts checks this over a corpus of tricky files).
 *
 * Hostile input is bounded: aliases are refused outright (an alias bomb never expands), nesting
 * deeper than MAX_DEPTH is refused by js-yaml before the recursive parser ever sees the file
 * (100,000 nested brackets would otherwise overflow its stack after seconds), the caller
 * has already capped the file size, and a file of more than MAX_ITEMS lines and flow items is
 * refused before either parser builds it: under the size cap, 900 KB of "1," is 450,000 nodes,
 * which the position-keeping parser holds in 640 MB and reports as 300,000 errors. The block
 * reader visits each line a bounded number of times, and gives up past its depth limit and past
 * MAX_ITEMS before it builds anything, leaving the refusal to the code below.
 */
import { CORE_SCHEMA, loadAll } from "js-yaml";
import { createRequire } from "node:module";
import type * as YamlModule from "yaml";
import type { LineCounter, Node } from "yaml";
import type { ErrorCode, ManifestError } from "./types.ts";
import { formatPath, quote } from "./text.ts";
import { readBlockYaml } from "./block-yaml.ts";

let yamlModule: typeof YamlModule | undefined;

/**
 * The position-keeping parser, loaded on first use: only a file js-yaml refuses (or that may
 * hold a directive or a tag) and an error to place need it, so a valid repository never loads
 * it. Synchronous (parsing is), and the same module instance an `import` of "yaml" gives.
 */
function yaml(): typeof YamlModule {
  return (yamlModule ??= createRequire(import.meta.url)("yaml") as typeof YamlModule);
}

/** One step of a path inside a document: a map key or a list index. */
export type PathSegment = string | number;

/** Deeper nesting than any manifest needs; refusing it keeps recursion bounded. */
const MAX_DEPTH = 64;

/**
 * More lines plus flow separators (',') than any manifest file needs: a group of 20,000
 * members written one per line stays below it. Every YAML node but a handful per line needs
 * one of the two, so this bounds the nodes a file can make the parsers build (about 2 KB each
 * in `yaml`).
 */
const MAX_ITEMS = 50_000;

/** Lines and flow separators in `text`: the upper bound on its nodes that MAX_ITEMS caps. */
function itemCount(text: string): number {
  let n = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 44) n++;
  }
  return n;
}

/** One YAML document of a file. `value` is undefined when the document could not be read (`broken`). */
export interface YamlDocument {
  file: string;
  lines: LineCounter;
  /** The document's syntax tree, possibly partial when broken; null for an empty document. */
  root: Node | null;
  /** Offset of the document's first content, for positions of document-level errors. */
  start: number;
  value: unknown;
  broken: boolean;
  /** Position among the file's non-empty documents; parsing the same text again gives the same index. */
  index: number;
}

/**
 * One document of a file as the checks see it: its plain value, and its syntax tree on demand
 * (`tree()` may re-parse the file; call it only to place an error).
 */
export interface ParsedDocument {
  file: string;
  /** Position among the file's non-empty documents, the same whichever parser read it. */
  index: number;
  value: unknown;
  /** A syntax error, duplicate key or alias made the value unusable (only from the slow path). */
  broken: boolean;
  /** Where the document's content starts. */
  start: Position;
  tree: () => YamlDocument;
}

/** A 1-based line and column. */
export interface Position {
  line: number;
  column: number;
}

/**
 * Decodes UTF-8 strictly. Invalid bytes are an error placed at the first bad byte rather than
 * silently replaced by U+FFFD (which would change account names behind the author's back).
 */
export function decodeUtf8(file: string, bytes: Uint8Array): { text: string } | { error: ManifestError } {
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  const nul = bytes.indexOf(0);
  if (utf16 || nul >= 0) {
    // UTF-16 text (with or without its BOM) and binary files are valid UTF-8 or close to it
    // byte by byte, but every other byte of ASCII UTF-16 is NUL: say what the file is.
    const what = utf16
      ? "UTF-16 (it starts with a UTF-16 byte order mark)"
      : `NUL byte at offset ${nul}: UTF-16 without a byte order mark, or a binary file`;
    return {
      error: {
        ...textPosition(file, bytes, utf16 ? 0 : nul),
        message: `not UTF-8 text (${what}); save the file as UTF-8`,
        path: "",
        code: "invalid-utf8",
      },
    };
  }
  let text: string;
  try {
    // The decoder drops one byte order mark at the very start of the file, as YAML allows.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const message = `invalid UTF-8 (byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, "0")} at offset ${offset}); save the file as UTF-8`;
    return { error: { ...textPosition(file, bytes, offset), path: "", message, code: "invalid-utf8" } };
  }
  const bom = text.indexOf("\uFEFF");
  if (bom >= 0) {
    // YAML allows a BOM before each document; editors and the fast parser take it as content
    // (a key "\uFEFFkind"). One at the start of the file is enough; another is a pasted file.
    const offset = new TextEncoder().encode(text.slice(0, bom)).length + (bytes[0] === 0xef ? 3 : 0);
    const message =
      "a byte order mark (U+FEFF) in the middle of the file; only the very start of a file may hold one (was a second file pasted in?)";
    return { error: { ...textPosition(file, bytes, offset), path: "", message, code: "invalid-utf8" } };
  }
  return { text };
}

/** File, 1-based line and column of a byte offset in (mostly) UTF-8 bytes. */
function textPosition(file: string, bytes: Uint8Array, offset: number): { file: string; line: number; column: number } {
  const before = bytes.subarray(0, offset);
  const lineStart = before.lastIndexOf(0x0a) + 1;
  const line = before.filter((b) => b === 0x0a).length + 1;
  const column = new TextDecoder().decode(before.subarray(lineStart)).replace(/^\uFEFF/, "").length + 1;
  return { file, line, column };
}

/** Offset of the first byte that does not start or continue a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    const need =
      b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0) return i;
    // Overlong, surrogate and out-of-range second bytes (RFC 3629 table).
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return bytes.length;
}

/**
 * Parses every document of a file. Syntax errors, duplicate keys, aliases and excessive
 * nesting are appended to `errors` and mark their document broken; the other documents of the
 * file are still returned intact.
 */
export function parseYaml(file: string, text: string, errors: ManifestError[]): YamlDocument[] {
  const lines = new (yaml().LineCounter)();
  const docs = yaml().parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const refused = refuseDirectives(file, text, lines, errors);
  const out: YamlDocument[] = [];
  for (const doc of docs) {
    const root = doc.contents;
    const start = root?.range?.[0] ?? doc.range[0];
    // A refused directive makes every document of its file unusable: values read under
    // another YAML version, or with tag shorthands we refuse, are not the author's values.
    const before = refused ? -1 : errors.length;
    for (const err of doc.errors) {
      const pos = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
      const code: ErrorCode = err.code === "DUPLICATE_KEY" ? "duplicate-key" : "yaml-syntax";
      // yaml appends a code excerpt after the first line; the position already says where.
      const message = (err.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
      errors.push({ file, line: pos.line, column: pos.col, path: "", message: lowerFirst(message), code });
    }
    // An empty (or explicitly null) document, e.g. after a trailing '---', holds nothing.
    if (doc.errors.length === 0 && (root === null || (yaml().isScalar(root) && root.value === null))) continue;
    let value: unknown;
    if (doc.errors.length === 0) value = toPlain({ file, text, lines, errors }, root, [], 0);
    out.push({ file, lines, root, start, value, broken: errors.length > before, index: out.length });
  }
  return out;
}

/**
 * Parses a file into documents: js-yaml when it can, else `yaml` (see the module comment).
 * Errors of the slow path are appended to `errors`.
 */
export function parseFile(file: string, text: string, errors: ManifestError[]): ParsedDocument[] {
  // Plain block YAML, nearly every manifest, is read in one pass without the general parsers.
  const block = readBlockYaml(text, MAX_ITEMS);
  if (block) return documents(file, text, block.values, block.starts);
  const items = itemCount(text);
  if (items > MAX_ITEMS) {
    const wide: ManifestError = {
      file,
      line: 1,
      column: 1,
      path: "",
      code: "file-too-large",
      message: `holds ${items.toLocaleString("en-US")} lines and flow items; a manifest file holds at most ${MAX_ITEMS.toLocaleString("en-US")}: split it into several files`,
    };
    errors.push(wide);
    return [brokenFile(file, wide)];
  }
  let values: unknown[] | undefined;
  try {
    // No aliases at all (the slow path reports them with a position), bounded depth.
    values = loadAll(text, { schema: CORE_SCHEMA, filename: file, maxAliases: 0, maxDepth: MAX_DEPTH });
  } catch (error: unknown) {
    // Too deep: `yaml` recurses once per level and would take seconds to overflow its stack,
    // so js-yaml's answer (given at the limit, in bounded time) is the one reported.
    const deep = tooDeep(error);
    if (deep) {
      errors.push({ file, path: "", ...deep });
      return [brokenFile(file, deep)];
    }
    // Any other refusal (syntax error, duplicate key, alias): the slow path says where.
  }
  if (values !== undefined && !needsSlowPath(text)) {
    const fast = fromFast(file, text, values);
    if (fast) return fast;
  }
  return parseYaml(file, text, errors).map((doc) => {
    const pos = doc.lines.linePos(doc.start);
    return { ...doc, start: { line: pos.line, column: pos.col }, tree: () => doc };
  });
}

/**
 * Whether a file may hold a directive or an explicit tag, which only the slow path refuses
 * with a position. Conservative: "Hello !" also goes the slow way, which is only slower.
 */
function needsSlowPath(text: string): boolean {
  return /^%/m.test(text) || /(?:^|[\s[{,])!/.test(text);
}

/** The error for a file nested deeper than MAX_DEPTH, from js-yaml's refusal (undefined for any other). */
function tooDeep(error: unknown): Omit<ManifestError, "file" | "path"> | undefined {
  if (!(error instanceof Error) || !/maxDepth/.test(error.message)) return undefined;
  const mark = (error as { mark?: { line?: number; column?: number } }).mark;
  return {
    line: (mark?.line ?? 0) + 1,
    column: (mark?.column ?? 0) + 1,
    code: "too-deep",
    message: `nested more than ${MAX_DEPTH} levels deep`,
  };
}

/** The one (broken, treeless) document of a file refused as a whole, at `at`. */
function brokenFile(file: string, at: { line: number; column: number }): ParsedDocument {
  const empty: YamlDocument = {
    file,
    lines: new (yaml().LineCounter)(),
    root: null,
    start: 0,
    value: undefined,
    broken: true,
    index: 0,
  };
  const { line, column } = at;
  return { file, index: 0, value: undefined, broken: true, start: { line, column }, tree: () => empty };
}

/** The fast path's documents, or undefined when they do not line up with the file's document markers. */
function fromFast(file: string, text: string, values: unknown[]): ParsedDocument[] | undefined {
  const starts = documentStarts(text);
  if (starts.length !== values.length) return undefined; // the parsers disagree: trust the slow one
  return documents(file, text, values, starts);
}

/**
 * The documents of a file read without positions: each value (null ones, empty documents,
 * skipped) with where it starts; its syntax tree is parsed by `yaml` only when asked for.
 */
function documents(file: string, text: string, values: unknown[], starts: Position[]): ParsedDocument[] {
  let cache: YamlDocument[] | undefined;
  const out: ParsedDocument[] = [];
  values.forEach((value, i) => {
    if (value === null || value === undefined) return;
    const index = out.length;
    const tree = (): YamlDocument => {
      cache ??= parseYaml(file, text, []);
      return (
        cache[index] ?? { file, lines: new (yaml().LineCounter)(), root: null, start: 0, value, broken: false, index }
      );
    };
    out.push({ file, index, value, broken: false, start: starts[i] ?? { line: 1, column: 1 }, tree });
  });
  return out;
}

/**
 * Where each document of a stream starts (its first content, or its '---' marker when empty),
 * found from document markers alone. Text before the first '---' is a document only if it has
 * content; '...' ends a document. Used to check that js-yaml saw the same documents as `yaml`
 * would, and to give each resource its source line without a syntax tree.
 */
function documentStarts(text: string): Position[] {
  const starts: Position[] = [];
  let pending: Position | undefined; // a '---' whose document has no content yet
  let inDoc = false; // inside a document that has content
  // Line by line without splitting the text: inside a document, only a line starting with '-'
  // or '.' can be a marker, and no other line is even cut out of the text.
  for (let i = 0, at = 0; at <= text.length; i++) {
    const newline = text.indexOf("\n", at);
    const end = newline < 0 ? text.length : newline;
    const first = text.charCodeAt(at);
    const line = inDoc && first !== 45 && first !== 46 ? undefined : text.slice(at, end);
    at = end + 1;
    if (line === undefined) continue;
    const marker = /^---(?=\s|$)/.test(line);
    if (marker || /^\.\.\.(?=\s|$)/.test(line)) {
      if (pending) starts.push(pending);
      pending = undefined;
      inDoc = false;
      if (!marker) continue;
      const rest = line.slice(3);
      const content = /\S/.exec(rest)?.index ?? -1;
      if (content >= 0 && rest[content] !== "#") {
        starts.push({ line: i + 1, column: content + 4 });
        inDoc = true;
      } else pending = { line: i + 1, column: 1 };
      continue;
    }
    if (inDoc) continue;
    const trimmed = line.trimStart();
    if (trimmed === "" || trimmed.startsWith("#") || (!pending && trimmed.startsWith("%"))) continue;
    starts.push({ line: i + 1, column: line.length - trimmed.length + 1 });
    pending = undefined;
    inDoc = true;
  }
  if (pending) starts.push(pending);
  return starts;
}

/**
 * Appends an error for each directive other than `%YAML 1.2` and says whether there was one.
 * `%YAML 1.1` would switch `yaml` to the 1.1 schema (`030` octal, `yes` a boolean) while js-yaml
 * stays on 1.2; `%TAG` only serves tags, which are refused anyway.
 */
function refuseDirectives(file: string, text: string, lines: LineCounter, errors: ManifestError[]): boolean {
  if (!/^%/m.test(text)) return false;
  let refused = false;
  for (const token of new (yaml().Parser)().parse(text)) {
    if (token.type !== "directive") continue;
    const source = token.source.trim();
    if (/^%YAML[ \t]+1\.2$/.test(source)) continue;
    const name = /^%\S*/.exec(source)?.[0] ?? "%";
    const message =
      name === "%YAML"
        ? `${quote(source)} is not allowed: manifests are YAML 1.2 (under YAML 1.1, 030 is 24 and yes is true); remove the directive or write %YAML 1.2`
        : `the ${name} directive is not allowed in a manifest; remove it`;
    const pos = lines.linePos(token.offset);
    errors.push({ file, line: pos.line, column: pos.col, path: "", message, code: "directive-refused" });
    refused = true;
  }
  return refused;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

interface Ctx {
  file: string;
  text: string;
  lines: LineCounter;
  errors: ManifestError[];
}

/** Converts a syntax tree to plain JSON-like values, refusing aliases and deep nesting. */
function toPlain(ctx: Ctx, node: Node | null, path: PathSegment[], depth: number): unknown {
  if (node === null) return null;
  const fail = (code: ErrorCode, message: string, at = node.range?.[0] ?? 0): undefined => {
    const pos = ctx.lines.linePos(at);
    const prefix = path.length > 0 ? `${formatPath(path)}: ` : "";
    ctx.errors.push({
      file: ctx.file,
      line: pos.line,
      column: pos.col,
      path: formatPath(path),
      message: prefix + message,
      code,
    });
    return undefined;
  };
  if (depth > MAX_DEPTH) return fail("too-deep", `nested more than ${MAX_DEPTH} levels deep`);
  if (node.tag !== undefined) {
    // Tags change what a value is (`!!binary` makes bytes, `!!float 1` a float, `!evil` whatever
    // a loader registered for it): a manifest is plain data, and js-yaml and `yaml` resolve tags
    // differently. Only explicit tags carry `tag`; plain values resolved by the schema do not.
    const shown = node.tag.replace(/^tag:yaml\.org,2002:/, "!!");
    return fail(
      "tag-refused",
      `YAML tags (${shown.slice(0, 40)}) are not allowed; write a plain value (quote it to make it a string)`,
      tagOffset(ctx.text, node.range?.[0] ?? 0),
    );
  }
  if (yaml().isAlias(node)) {
    // Aliases buy nothing in a manifest and are the vector of "billion laughs" expansion bombs.
    return fail("alias-refused", `YAML aliases (*${node.source}) are not allowed; write the value out`);
  }
  if (yaml().isScalar(node)) return node.value;
  // `path` is one stack pushed and popped on the way down, not copied per node: it is only
  // read when an error is reported.
  if (yaml().isSeq(node))
    return node.items.map((item, i) => {
      path.push(i);
      const value = toPlain(ctx, item as Node | null, path, depth + 1);
      path.pop();
      return value;
    });
  if (yaml().isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      if (!yaml().isScalar(key) || key.tag !== undefined) {
        if (key !== null) toPlain(ctx, key, path, depth + 1); // a tag or an alias says why itself
        if (!yaml().isScalar(key)) fail("yaml-syntax", "map keys must be plain strings");
        continue;
      }
      const name = String(key.value);
      path.push(name);
      const value = toPlain(ctx, pair.value as Node | null, path, depth + 1);
      path.pop();
      // Define rather than assign, so a key named __proto__ stays data.
      Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return fail("yaml-syntax", "unsupported YAML node");
}

/** Where the tag before the value at `offset` starts (a node's range begins after its tag). */
function tagOffset(text: string, offset: number): number {
  let i = offset;
  while (i > 0 && (text[i - 1] === " " || text[i - 1] === "\t")) i--;
  while (i > 0 && !/\s/.test(text[i - 1] ?? "")) i--;
  return text[i] === "!" ? i : offset;
}

/**
 * An error pointing at `path` in a document (its key or its value, as `locate` finds it), with
 * the dot path leading the message.
 */
export function errorAt(
  doc: YamlDocument,
  path: readonly PathSegment[],
  at: "key" | "value",
  code: ErrorCode,
  message: string,
): ManifestError {
  const pos = locate(doc, path, at);
  const p = formatPath(path);
  return {
    file: doc.file,
    line: pos.line,
    column: pos.column,
    path: p,
    message: p ? `${p}: ${message}` : message,
    code,
  };
}

/**
 * The position of `path` inside a document: of the key itself when `at` is "key" and the last
 * step is a map key, else of the value. When the path does not exist (a missing field), the
 * deepest existing ancestor's key is returned, which is where a compiler would point.
 */
export function locate(doc: YamlDocument, path: readonly PathSegment[], at: "key" | "value"): Position {
  let node: Node | null = doc.root;
  let offset = doc.start;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (yaml().isMap(node)) {
      const pair = node.items.find((p) => yaml().isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      const value = pair.value as Node | null;
      // `key:` with nothing after it: the (empty) value has no useful position, the key has.
      if (!value?.range || (yaml().isScalar(value) && value.source === "")) break;
      node = value;
      if (!(last && at === "key")) offset = value.range[0];
    } else if (yaml().isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as Node | null | undefined;
      if (!item?.range) break;
      node = item;
      offset = item.range[0];
    } else break;
  }
  const pos = doc.lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Reads a scalar at `path` from a (possibly broken) syntax tree; used to name broken resources. */
export function peekScalar(doc: YamlDocument, path: readonly string[]): unknown {
  let node: unknown = doc.root;
  for (const seg of path) {
    if (!yaml().isMap(node)) return undefined;
    const pair = node.items.find((p) => yaml().isScalar(p.key) && String(p.key.value) === seg);
    node = pair?.value;
  }
  return yaml().isScalar(node) ? node.value : undefined;
}
