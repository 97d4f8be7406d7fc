// Distinguished names: building them from an account's name and container, and comparing them
// the way AD does (case and the spaces around separators do not matter).
import { childDn } from "./escape.ts";

/** Splits a DN at its unescaped commas. */
const rdns = (dn: string): string[] => dn.split(/(?<!\\),/);

/** The DN of an account: `CN=<accountName>,<path>,<baseDn>`, with the name escaped (RFC 4514). */
export function accountDn(accountName: string, path: string, baseDn: string): string {
  return childDn("CN", accountName, `${path},${baseDn}`);
}

/** Normalises a DN for comparison: lower case, no spaces around the RDNs. */
export function normalizeDn(dn: string): string {
  return rdns(dn)
    .map((rdn) => rdn.trim().toLowerCase())
    .join(",");
}

/** The DN of the entry's container ("" for a DN of one RDN). */
export function parentDn(dn: string): string {
  const i = dn.search(/(?<!\\),/);
  return i < 0 ? "" : dn.slice(i + 1);
}

/** Whether two DNs sit in the same container. */
export function sameParent(a: string, b: string): boolean {
  return normalizeDn(parentDn(a)) === normalizeDn(parentDn(b));
}

/** The DN an entry gets when moved into `newParent`, keeping its RDN (as a modify-DN does). */
export function movedDn(dn: string, newParent: string): string {
  return `${rdns(dn)[0] ?? ""},${newParent}`;
}
