// LDIF for the benches' ldapadd baselines, produced by running the controller's own apply
// against a writer that records instead of writing: the entries ldapadd creates then carry
// exactly the attributes and bytes apply would send (marker, descriptor and all), by construction.
import type { AttributeValues, DirectoryWriter } from "../../controller/directory/index.ts";

/**
 * RFC 2849 SAFE-STRING: ASCII without NUL, LF or CR, not starting with a space, ':' or '<',
 * and (so ldapadd keeps it whole) not ending with a space. Anything else goes base64.
 */
function isSafe(value: string): boolean {
  if (value === "") return true;
  if (/^[ :<]/.test(value) || value.endsWith(" ")) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 127) return false;
  }
  return true;
}

function line(attribute: string, value: string | Buffer): string {
  if (typeof value === "string" && isSafe(value)) return `${attribute}: ${value}`;
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  return `${attribute}:: ${bytes.toString("base64")}`;
}

/** One LDIF add record (content form, no changetype), ending with the blank separator line. */
export function ldifAddRecord(dn: string, attributes: Readonly<Record<string, AttributeValues>>): string {
  const lines = [line("dn", dn)];
  for (const [attribute, raw] of Object.entries(attributes)) {
    const list = typeof raw === "string" || Buffer.isBuffer(raw) ? [raw] : raw;
    for (const value of list) lines.push(line(attribute, value));
  }
  return `${lines.join("\n")}\n\n`;
}

/** One LDIF change record adding values to one attribute (for ldapmodify), ending with the blank separator line. */
export function ldifAddValuesRecord(dn: string, attribute: string, values: readonly string[]): string {
  const lines = [line("dn", dn), "changetype: modify", `add: ${attribute}`, ...values.map((v) => line(attribute, v))];
  return `${lines.join("\n")}\n-\n\n`;
}

/** One LDIF change record replacing one attribute's value (for ldapmodify). */
export function ldifReplaceRecord(dn: string, attribute: string, value: string): string {
  return `${[line("dn", dn), "changetype: modify", `replace: ${attribute}`, line(attribute, value)].join("\n")}\n-\n\n`;
}

/** A DirectoryWriter that turns every add into an LDIF record; the DNs are kept in order. */
export interface RecordingWriter {
  readonly writer: DirectoryWriter;
  /** The records so far, concatenated: input for one ldapadd process. */
  ldif(): string;
  /** The records so far, dealt round-robin into `n` LDIF texts (for concurrent seeding). */
  split(n: number): string[];
  readonly dns: readonly string[];
  /** Members added to groups, as ldapmodify change records, to run after the adds. */
  memberChanges(): string;
}

/**
 * A SID handed to apply for a group it just "created": apply keeps it for gMSAs created in the
 * same plan, so a plan that creates a group and a gMSA naming it cannot be recorded (the
 * seeder records groups and gMSAs in two rounds).
 */
export const PLACEHOLDER_SID = "S-1-5-21-0-0-0-0";

/**
 * Records the adds (and the member additions) of a create-only plan. Any other write (modify,
 * delete, KDS key) throws: a create-only plan has none, so one showing up means the plan was
 * not what the bench expected.
 */
export function recordingWriter(): RecordingWriter {
  const records: string[] = [];
  const members: string[] = [];
  const dns: string[] = [];
  const unexpected = (operation: string) => (): Promise<never> =>
    Promise.reject(new Error(`the bench expected a create-only plan, but apply asked to ${operation}`));
  return {
    dns,
    ldif: () => records.join(""),
    split: (n) => Array.from({ length: n }, (_, k) => records.filter((_r, i) => i % n === k).join("")),
    memberChanges: () => members.join(""),
    writer: {
      add: (dn, attributes) => {
        records.push(ldifAddRecord(dn, attributes));
        dns.push(dn);
        return Promise.resolve();
      },
      // Apply marks each object it creates once the DC has given it an objectGUID (add, read the
      // GUID, write the marker): the seeded entries carry no marker, and the bench plans creates only.
      modify: (_dn, changes) =>
        changes.every((c) => c.attribute === "adminDescription") ? Promise.resolve() : unexpected("modify")(),
      move: unexpected("move"),
      delete: unexpected("delete"),
      addMembers: (groupDn, dns) => {
        members.push(ldifAddValuesRecord(groupDn, "member", dns));
        return Promise.resolve();
      },
      removeMembers: unexpected("remove members"),
      readSid: () => Promise.resolve(PLACEHOLDER_SID),
      readGuid: () => Promise.resolve("00000000-0000-0000-0000-000000000000"),
      createKdsRootKey: unexpected("create a KDS root key"),
    },
  };
}
