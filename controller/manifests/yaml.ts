/**
 * Bytes → YAML documents → plain values, keeping the syntax tree so that any error found later
 * (schema, lint) can be placed at the exact key or value it concerns.
 *
 * Hostile input is bounded: aliases are refused outright (an alias bomb never expands), nesting
 * deeper than MAX_DEPTH is refused, and the caller has already capped the file size.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments } from "yaml";
import type { Node } from "yaml";
import type { ErrorCode, ManifestError } from "./types.ts";
import { formatPath } from "./text.ts";

/** One step of a path inside a document: a map key or a list index. */
export type PathSegment = string | number;

/** Deeper nesting than any manifest needs; refusing it keeps recursion bounded. */
const MAX_DEPTH = 64;

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
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, offset);
    const lineStart = before.lastIndexOf(0x0a) + 1;
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = new TextDecoder().decode(before.subarray(lineStart)).length + 1;
    const message = `invalid UTF-8 (byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, "0")} at offset ${offset}); save the file as UTF-8`;
    return { error: { file, line, column, path: "", message, code: "invalid-utf8" } };
  }
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
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const out: YamlDocument[] = [];
  for (const doc of docs) {
    const root = doc.contents;
    const start = root?.range?.[0] ?? doc.range[0];
    const before = errors.length;
    for (const err of doc.errors) {
      const pos = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
      const code: ErrorCode = err.code === "DUPLICATE_KEY" ? "duplicate-key" : "yaml-syntax";
      // yaml appends a code excerpt after the first line; the position already says where.
      const message = (err.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
      errors.push({ file, line: pos.line, column: pos.col, path: "", message: lowerFirst(message), code });
    }
    if (root === null || (isScalar(root) && root.value === null && root.source === "")) {
      if (doc.errors.length === 0) continue; // an empty document, e.g. after a trailing '---'
    }
    let value: unknown;
    if (doc.errors.length === 0) value = toPlain({ file, lines, errors }, root, [], 0);
    out.push({ file, lines, root, start, value, broken: errors.length > before, index: out.length });
  }
  return out;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

interface Ctx {
  file: string;
  lines: LineCounter;
  errors: ManifestError[];
}

/** Converts a syntax tree to plain JSON-like values, refusing aliases and deep nesting. */
function toPlain(ctx: Ctx, node: Node | null, path: PathSegment[], depth: number): unknown {
  if (node === null) return null;
  const fail = (code: ErrorCode, message: string): undefined => {
    const pos = ctx.lines.linePos(node.range?.[0] ?? 0);
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
  if (isAlias(node)) {
    // Aliases buy nothing in a manifest and are the vector of "billion laughs" expansion bombs.
    return fail("alias-refused", `YAML aliases (*${node.source}) are not allowed; write the value out`);
  }
  if (isScalar(node)) return node.value;
  // `path` is one stack pushed and popped on the way down, not copied per node: it is only
  // read when an error is reported.
  if (isSeq(node))
    return node.items.map((item, i) => {
      path.push(i);
      const value = toPlain(ctx, item as Node | null, path, depth + 1);
      path.pop();
      return value;
    });
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      if (!isScalar(key)) {
        if (key !== null) toPlain(ctx, key, path, depth + 1);
        fail("yaml-syntax", "map keys must be plain strings");
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
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      const value = pair.value as Node | null;
      // `key:` with nothing after it: the (empty) value has no useful position, the key has.
      if (!value?.range || (isScalar(value) && value.source === "")) break;
      node = value;
      if (!(last && at === "key")) offset = value.range[0];
    } else if (isSeq(node) && typeof seg === "number") {
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
    if (!isMap(node)) return undefined;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg);
    node = pair?.value;
  }
  return isScalar(node) ? node.value : undefined;
}
