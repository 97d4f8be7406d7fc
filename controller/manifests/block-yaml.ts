/**
 * A reader for the plain block YAML that nearly every manifest is written in, and nothing
 * else: it gives up (returns undefined) on anything it does not know, and the file then goes
 * the general way (js-yaml, then `yaml`, see yaml.ts). What it accepts it reads exactly as
 * js-yaml does with the YAML 1.2 core schema: plain scalars are resolved by js-yaml's own
 * resolver, keys are stringified the same way, and yaml.test.ts compares both over every
 * fixture, every example and the corpus of tricky files.
 *
 * Why: at 10,000 resources, js-yaml's parsing (events first, then values) and the garbage it
 * leaves were the largest part of `validate` (docs/benchmarks.md). This reader makes the values
 * straight from the text, one pass, line by line.
 *
 * Accepted: documents separated by `---` lines (nothing after the marker but a comment), each a
 * block map at column 0; block maps and sequences indented with spaces, including `key:`
 * followed by a sequence at the key's own indentation and `- key: value` items; single-line
 * plain, single-quoted and double-quoted scalars without escapes; single-line flow sequences of
 * plain scalars; `{}`; comments and blank lines; LF or CRLF line ends. Given up on: tabs,
 * anchors, aliases, tags, directives, `...`, block scalars, multi-line scalars, flow maps,
 * complex keys, escapes, duplicate keys, empty documents, characters js-yaml would refuse,
 * nesting deeper than the depth limit, and anything else.
 */
import { CORE_SCHEMA, NOT_RESOLVED } from "js-yaml";
import type { Position } from "./yaml.ts";

/** The documents of a file: their values and where each one's content starts. */
export interface BlockDocuments {
  values: unknown[];
  starts: Position[];
}

/** Thrown inside the reader to give up; never leaves this module (one instance: no stack per file). */
class GiveUp extends Error {}
const GIVE_UP = new GiveUp("not plain block YAML");

/** Deeper than this is given up (js-yaml's limit in yaml.ts is 64; the general way reports it). */
const MAX_DEPTH = 60;

/**
 * The core schema's implicit scalar types (null, bool, int, float) by the first characters
 * each declares, as js-yaml picks them for a plain scalar; the rest of a plain scalar is a string.
 */
const IMPLICIT: ReadonlyArray<{
  readonly tagName: string;
  readonly implicitFirstChars: readonly string[] | null;
  readonly resolve: (source: string, isExplicit: boolean, tagName: string) => unknown;
}> = CORE_SCHEMA.tags.flatMap((tag) => (tag.nodeKind === "scalar" && tag.implicit ? [tag] : []));
const ANY_FIRST = IMPLICIT.filter((tag) => tag.implicitFirstChars === null);
const BY_FIRST = new Map(
  IMPLICIT.flatMap((tag) => tag.implicitFirstChars ?? []).map((c) => [
    c,
    IMPLICIT.filter((tag) => tag.implicitFirstChars === null || tag.implicitFirstChars.includes(c)),
  ]),
);

/** A plain scalar's value under the core schema, as js-yaml resolves it. */
function plain(source: string): unknown {
  for (const tag of BY_FIRST.get(source.charAt(0)) ?? ANY_FIRST) {
    const value = tag.resolve(source, false, tag.tagName);
    if (value !== NOT_RESOLVED) return value;
  }
  return source;
}

/** First characters of something other than a plain scalar: ? : | > & * % @ ` , ] } */
const INDICATORS: readonly number[] = [...`?:|>&*%@\`,]}`].map((c) => c.charCodeAt(0));

/** A plain key: stringified from js-yaml's resolution, so `1` and `0x1` read as js-yaml reads them. */
const PLAIN_KEY = /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/;

/** Flow sequence items read here: plain scalars without indicators or spaces inside. */
const FLOW_ITEM = /^(?:[A-Za-z0-9_]|[.+-][A-Za-z0-9_.])[A-Za-z0-9_.+/=@$()^~-]*$/;

/**
 * Reads `text` as plain block YAML, or returns undefined when it holds anything else (see the
 * module comment) or more than `maxItems` lines and commas. Never throws.
 */
export function readBlockYaml(text: string, maxItems: number): BlockDocuments | undefined {
  try {
    return new Reader(text, maxItems).documents();
  } catch (error: unknown) {
    if (error === GIVE_UP) return undefined;
    throw error;
  }
}

function giveUp(): never {
  throw GIVE_UP;
}

/** Whether js-yaml accepts the character in a document, and this reader needs nothing special for it. */
function plainChar(c: number): boolean {
  if (c >= 0x20 && c < 0x7f) return c !== 0x21; // '!' may start a tag: the general way
  return c >= 0xa0 && c !== 0x2028 && c !== 0x2029 && c !== 0xfeff && c !== 0xfffe && c !== 0xffff;
}

/** `s` without its leading and trailing ASCII spaces (the only ones YAML trims around a flow item here). */
function spaceless(s: string): string {
  let from = 0;
  let to = s.length;
  while (from < to && s.charCodeAt(from) === 32) from++;
  while (to > from && s.charCodeAt(to - 1) === 32) to--;
  return s.slice(from, to);
}

class Reader {
  readonly #text: string;
  /** Content lines only (no blank or comment lines): start of content, end (without CR), indent, 1-based number. */
  readonly #start: number[] = [];
  readonly #end: number[] = [];
  readonly #indent: number[] = [];
  readonly #number: number[] = [];
  /** Lines that are a `---` marker. */
  readonly #marker: boolean[] = [];
  #at = 0;

  /**
   * Splits the text into content lines, giving up on a character it does not read and on more
   * than `maxItems` lines plus commas (the bound yaml.ts puts on files, which it then reports).
   */
  constructor(text: string, maxItems: number) {
    this.#text = text;
    let number = 0;
    let commas = 0;
    for (let at = 0; at <= text.length;) {
      number++;
      const newline = text.indexOf("\n", at);
      let end = newline < 0 ? text.length : newline;
      if (end > at && text.charCodeAt(end - 1) === 13) end--;
      let i = at;
      while (i < end && text.charCodeAt(i) === 32) i++;
      for (let k = i; k < end; k++) {
        const c = text.charCodeAt(k);
        if (c === 44) commas++;
        else if (c >= 0xd800 && c <= 0xdfff) {
          // Only a high surrogate followed by a low one is a character; js-yaml refuses the rest.
          const low = text.charCodeAt(k + 1);
          if (c > 0xdbff || k + 1 >= end || low < 0xdc00 || low > 0xdfff) giveUp();
          k++;
        } else if (!plainChar(c)) giveUp();
      }
      const first = text.charCodeAt(i);
      if (i < end && first !== 35) {
        // '#' at a line's start (after spaces) is a comment; '%' there a directive.
        if (first === 37 || (i === at && first === 46 && text.startsWith("...", i))) giveUp();
        const marker =
          i === at && first === 45 && text.startsWith("---", i) && (end === i + 3 || text.charCodeAt(i + 3) === 32);
        if (marker && !/^---[ ]*(?:#.*)?$/.test(text.slice(i, end))) giveUp(); // content on the marker line
        this.#start.push(i);
        this.#end.push(end);
        this.#indent.push(i - at);
        this.#number.push(number);
        this.#marker.push(marker);
      }
      if (newline < 0) break;
      at = newline + 1;
    }
    if (number + commas > maxItems) giveUp();
  }

  documents(): BlockDocuments {
    const values: unknown[] = [];
    const starts: Position[] = [];
    const count = this.#start.length;
    // A leading marker (or several with nothing between) opens the first document.
    let open = false;
    while (this.#at < count) {
      if (this.#marker[this.#at]) {
        if (open) giveUp(); // an empty document between two markers
        open = true;
        this.#at++;
        continue;
      }
      if (this.#indent[this.#at] !== 0) giveUp();
      starts.push({ line: this.#number[this.#at] as number, column: 1 });
      values.push(this.#block(0, 0));
      open = false;
      if (this.#at < count && !this.#marker[this.#at]) giveUp(); // left-over lines
    }
    if (open && values.length > 0) giveUp(); // a trailing marker: an empty last document
    if (values.length === 0) giveUp();
    return { values, starts };
  }

  /** Whether the content line `at` is a sequence item (`- ...` or a lone `-`). */
  #isItem(at: number): boolean {
    const s = this.#start[at] as number;
    return this.#text.charCodeAt(s) === 45 && (s + 1 === this.#end[at] || this.#text.charCodeAt(s + 1) === 32);
  }

  /** The block map or sequence whose first line is the current one, at `indent`. */
  #block(indent: number, depth: number): unknown {
    return this.#isItem(this.#at) ? this.#sequence(indent, depth) : this.#map(indent, depth);
  }

  #map(indent: number, depth: number): Record<string, unknown> {
    if (depth > MAX_DEPTH) giveUp(); // also reached without #block: `- key:` items, sequences at a key's indent
    const out: Record<string, unknown> = {};
    const text = this.#text;
    const count = this.#start.length;
    while (this.#at < count && this.#indent[this.#at] === indent && !this.#marker[this.#at]) {
      const at = this.#at;
      const start = this.#start[at] as number;
      const end = this.#end[at] as number;
      if (this.#isItem(at)) giveUp(); // a sequence item among map entries
      const colon = this.#colon(start, end);
      if (colon < 0) giveUp();
      const rawKey = text.slice(start, colon);
      if (!PLAIN_KEY.test(rawKey)) giveUp();
      const key = String(plain(rawKey));
      if (key === "__proto__" || Object.prototype.hasOwnProperty.call(out, key)) giveUp();
      this.#at++;
      out[key] = this.#value(colon + 1, end, indent, depth);
    }
    if (this.#at < count && (this.#indent[this.#at] as number) > indent) giveUp();
    return out;
  }

  #sequence(indent: number, depth: number): unknown[] {
    if (depth > MAX_DEPTH) giveUp();
    const out: unknown[] = [];
    const text = this.#text;
    const count = this.#start.length;
    while (this.#at < count && this.#indent[this.#at] === indent && !this.#marker[this.#at] && this.#isItem(this.#at)) {
      const at = this.#at;
      const end = this.#end[at] as number;
      let s = (this.#start[at] as number) + 1;
      while (s < end && text.charCodeAt(s) === 32) s++;
      if (s === end || text.charCodeAt(s) === 35) giveUp(); // a lone '-': its item is below
      const c = text.charCodeAt(s);
      if (c === 45 && (s + 1 === end || text.charCodeAt(s + 1) === 32)) giveUp(); // '- - x'
      const lineStart = (this.#start[at] as number) - indent;
      if (this.#isEntry(s, end)) {
        // `- key: value`: a map whose indent is the column of its first key.
        this.#start[at] = s;
        this.#indent[at] = s - lineStart;
        out.push(this.#map(s - lineStart, depth + 1));
      } else {
        this.#at++;
        out.push(this.#value(s - 1, end, indent, depth));
      }
    }
    if (this.#at < count && (this.#indent[this.#at] as number) > indent) giveUp();
    return out;
  }

  /** Whether the content from `s` is a map entry (`key: ...` or `key:`) rather than a scalar. */
  #isEntry(s: number, end: number): boolean {
    const c = this.#text.charCodeAt(s);
    if (c === 34 || c === 39 || c === 91 || c === 123) return false; // quoted or flow
    return this.#colon(s, end) >= 0;
  }

  /** The first ':' between `from` and `end` followed by a space or the end of the line, or -1. */
  #colon(from: number, end: number): number {
    const text = this.#text;
    for (let k = from; k < end; k++)
      if (text.charCodeAt(k) === 58 && (k + 1 === end || text.charCodeAt(k + 1) === 32)) return k;
    return -1;
  }

  /** The first `quote` character between `from` and `end`, or -1. */
  #find(quote: number, from: number, end: number): number {
    for (let k = from; k < end; k++) if (this.#text.charCodeAt(k) === quote) return k;
    return -1;
  }

  /**
   * The value after a key's ':' or an item's '-' (content from `from` to `end` of the line just
   * consumed), reading a nested block when the line holds none.
   */
  #value(from: number, end: number, indent: number, depth: number): unknown {
    const text = this.#text;
    let s = from;
    while (s < end && text.charCodeAt(s) === 32) s++;
    if (s === end || text.charCodeAt(s) === 35) {
      // Nothing on the line: a block below, a sequence at the key's own indent, or null.
      const count = this.#start.length;
      if (this.#at >= count || this.#marker[this.#at]) return null;
      const next = this.#indent[this.#at] as number;
      if (next > indent) return this.#block(next, depth + 1);
      if (next === indent && this.#isItem(this.#at)) return this.#sequence(indent, depth + 1);
      return null;
    }
    if (this.#at < this.#start.length && (this.#indent[this.#at] as number) > indent && !this.#marker[this.#at])
      giveUp(); // a continuation line, or a block under a scalar
    const c = text.charCodeAt(s);
    if (c === 34 || c === 39) return this.#quoted(s, end);
    if (c === 91) return this.#flowSequence(s, end);
    if (c === 123) {
      if (!/^\{\}[ ]*(?:#.*)?$/.test(text.slice(s, end))) giveUp();
      return {};
    }
    // '?', ':', '|', '>', '&', '*', '%', '@', '`', ',', ']', '}' start something else.
    if (INDICATORS.includes(c)) giveUp();
    if (c === 45 && (s + 1 === end || text.charCodeAt(s + 1) === 32)) giveUp(); // '- x' after a key
    let stop = end;
    for (let k = s + 1; k < end; k++) {
      const ch = text.charCodeAt(k);
      if (ch === 35 && text.charCodeAt(k - 1) === 32) {
        stop = k; // ' #' starts a comment
        break;
      }
      if (ch === 58 && (k + 1 === end || text.charCodeAt(k + 1) === 32)) giveUp(); // a map, or an error
    }
    while (stop > s && text.charCodeAt(stop - 1) === 32) stop--;
    return plain(text.slice(s, stop));
  }

  /** A single-line quoted scalar without escapes, followed by nothing but a comment. */
  #quoted(s: number, end: number): string {
    const text = this.#text;
    const quote = text.charCodeAt(s);
    let value = "";
    let i = s + 1;
    for (;;) {
      const close = this.#find(quote, i, end);
      if (close < 0) giveUp();
      value += text.slice(i, close);
      if (quote === 39 && text.charCodeAt(close + 1) === 39) {
        value += "'";
        i = close + 2;
        continue;
      }
      i = close + 1;
      break;
    }
    if (quote === 34 && value.includes("\\")) giveUp();
    if (!/^(?:[ ]+(?:#.*)?)?$/.test(text.slice(i, end))) giveUp();
    return value;
  }

  /** `[a, b]` on one line, of plain scalars, followed by nothing but a comment. */
  #flowSequence(s: number, end: number): unknown[] {
    const text = this.#text;
    const close = this.#find(93, s, end);
    if (close < 0 || !/^(?:[ ]+(?:#.*)?)?$/.test(text.slice(close + 1, end))) giveUp();
    // Only spaces are trimmed: String.prototype.trim would also drop U+00A0, U+3000 and other
    // Unicode spaces, which YAML keeps as part of the scalar ("[a\u00A0]" is ["a\u00A0"]).
    const inner = spaceless(text.slice(s + 1, close));
    if (inner === "") return [];
    return inner.split(",").map((item) => {
      const raw = spaceless(item);
      if (!FLOW_ITEM.test(raw)) giveUp();
      return plain(raw);
    });
  }
}
