/**
 * The one way text reaches the status page's HTML. Everything shown there comes from Git
 * (names, descriptions), from AD or the hosts (attribute values, error messages) or from the
 * request (query parameters): all of it goes through `escapeHtml`, in element content and in
 * quoted attribute values alike.
 */

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes `&`, `<`, `>`, `"` and `'`, so the result is inert as element content and inside a
 * single- or double-quoted attribute value. Characters outside these five are kept (the page
 * is UTF-8), except C0 controls other than tab, newline and carriage return, which HTML
 * forbids and which are dropped.
 */
export function escapeHtml(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");
}
