/** Small helpers that turn paths and values into the text of error messages. */

/** Longest value an error message quotes; longer values are clipped so messages stay readable. */
const MAX_QUOTED = 60;

/** `["spec", "members", 1, "group"]` → `spec.members[1].group`; keys that are not identifiers are quoted. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${quote(seg)}]`;
  }
  return out;
}

/**
 * A value as an error message shows it: strings quoted, anything long clipped with its full
 * length noted, objects and lists summarised. Never echoes more than about 80 characters.
 */
export function quote(value: unknown): string {
  if (typeof value === "string") {
    if (value.length <= MAX_QUOTED) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, MAX_QUOTED))}… (${value.length} characters)`;
  }
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === "object") return "a map";
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value).slice(0, MAX_QUOTED);
  return typeof value;
}

/** "a string", "a number", "a list", "a map", "true", "null": how YAML showed the value. */
export function describeType(value: unknown): string {
  if (value === null || value === undefined) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `a string (${quote(value)})`;
  if (typeof value === "number") return Number.isInteger(value) ? `a number (${value})` : `a decimal number (${value})`;
  if (typeof value === "boolean") return `a boolean (${value})`;
  return typeof value;
}

/** The candidate closest to `word` (case-insensitively, edit distance at most 2 or a third of its length), if any. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance; inputs are short field and kind names. */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? Infinity;
}

/** "a, b or c". */
export function listOr(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}
