// Reading ldapsearch output in tests: the independent path that checks what the controller
// wrote. The harness runs ldapsearch with `-o ldif-wrap=no`, so every value is on one line.

/** One attribute's values from unwrapped LDIF, matched case-insensitively; `::` values are base64-decoded. */
export function ldifValues(ldif: string, attribute: string): Buffer[] {
  const out: Buffer[] = [];
  for (const line of ldif.split("\n")) {
    const m = /^([^:]+)(::?) ?(.*)$/.exec(line);
    if (!m || m[1]?.toLowerCase() !== attribute.toLowerCase()) continue;
    out.push(m[2] === "::" ? Buffer.from(m[3] ?? "", "base64") : Buffer.from(m[3] ?? "", "utf8"));
  }
  return out;
}

/** The values as UTF-8 text. */
export function ldifText(ldif: string, attribute: string): string[] {
  return ldifValues(ldif, attribute).map((b) => b.toString("utf8"));
}
