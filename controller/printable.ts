/**
 * Text from AD, Git or a host made safe to show on one line of a terminal, a log line or a
 * pull-request comment. It imports nothing, so every layer can use it.
 */

// C0 and C1 controls (ESC starts a terminal escape sequence, CR and LF forge lines; U+009B is
// the 8-bit CSI), DEL, the Unicode line and paragraph separators, and the bidirectional
// embeddings, overrides and isolates that reorder what a reviewer sees ("Trojan Source").
const UNSAFE_CHARACTERS = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069";
const UNSAFE = new RegExp(`[${UNSAFE_CHARACTERS}]`, "g");
const UNSAFE_RUNS = new RegExp(`[${UNSAFE_CHARACTERS}]+`, "g");
const UNSAFE_OR_BACKSLASH = new RegExp(`[${UNSAFE_CHARACTERS}\\\\]`, "g");

const escapeOne = (c: string): string =>
  c === "\n" ? "\\n" : c === "\t" ? "\\t" : c === "\r" ? "\\r" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * `text` with every control character, line separator and bidirectional control written as an
 * escape (`\n`, `\u001b`, `\u202e`): what it shows is what it holds, on one line. With
 * `backslash`, `\` itself is doubled, so the escapes cannot be confused with the text (file
 * names); without it, DNs keep their RFC 4514 escapes as AD wrote them.
 */
export function printable(text: string, options: { readonly backslash?: boolean } = {}): string {
  return options.backslash === true
    ? text.replace(UNSAFE_OR_BACKSLASH, (c) => (c === "\\" ? "\\\\" : escapeOne(c)))
    : text.replace(UNSAFE, escapeOne);
}

/**
 * `text` on one line for a table cell, where escapes would only clutter the column: each run of
 * the characters `printable` escapes becomes one space.
 */
export function flattened(text: string): string {
  return text.replace(UNSAFE_RUNS, " ").trim();
}
