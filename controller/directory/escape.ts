// Escaping for values that reach an LDAP filter (RFC 4515) or a DN (RFC 4514). Every value from
// Git or from AD that is spliced into a filter or DN string goes through one of these.

/**
 * Escapes a value for use inside an RFC 4515 filter assertion, e.g. `(sAMAccountName=${v})`.
 * Strings: `*`, `(`, `)`, `\`, NUL and other control characters become `\xx`; other characters,
 * including non-ASCII, stay as they are (the client encodes them as UTF-8).
 * Bytes: every byte becomes `\xx`, the RFC's form for binary values such as objectSid. Note that
 * ldapts' own filter-string parser turns `\xx` above 0x7f into a Latin-1 character; send binary
 * values through an EqualityFilter object (as the client in this folder does) rather than a string.
 */
export function escapeFilterValue(value: string | Uint8Array): string {
  if (typeof value !== "string") {
    return Array.from(value, (byte) => `\\${byte.toString(16).padStart(2, "0")}`).join("");
  }
  let out = "";
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === "*" || ch === "(" || ch === ")" || ch === "\\" || code < 0x20 || code === 0x7f) {
      out += `\\${code.toString(16).padStart(2, "0")}`;
    } else {
      out += ch;
    }
  }
  return out;
}

const DN_SPECIAL = new Set([",", "+", '"', "\\", "<", ">", ";", "="]);

/**
 * Escapes an attribute value for use in an RFC 4514 DN, e.g. `CN=${v},OU=...`: backslash before
 * `, + " \ < > ; =`, before a leading space or `#` and before a trailing space; NUL and other
 * control characters as `\xx`. Non-ASCII characters stay as they are.
 */
export function escapeDnValue(value: string): string {
  const chars = Array.from(value);
  let out = "";
  chars.forEach((ch, i) => {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f) {
      out += `\\${code.toString(16).padStart(2, "0")}`;
    } else if (DN_SPECIAL.has(ch) || (ch === " " && (i === 0 || i === chars.length - 1)) || (ch === "#" && i === 0)) {
      out += `\\${ch}`;
    } else {
      out += ch;
    }
  });
  return out;
}

/**
 * The DN of a child entry: `<attribute>=<escaped value>,<parentDn>`. The attribute type must be a
 * plain name (letters, digits, hyphen); `parentDn` is used as given (it is already a DN).
 */
export function childDn(attribute: string, value: string, parentDn: string): string {
  if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(attribute))
    throw new Error(`not an attribute type: ${JSON.stringify(attribute)}`);
  if (value.length === 0) throw new Error(`an RDN value for ${attribute} cannot be empty`);
  return parentDn === "" ? `${attribute}=${escapeDnValue(value)}` : `${attribute}=${escapeDnValue(value)},${parentDn}`;
}
