// What the controller reads from AD, and the pure conversion from ldapts search entries to it.
import type { Entry } from "ldapts";
import { filetimeToDate } from "./kds.ts";
import { guidToString, MARKER_PREFIX } from "./ownership.ts";
import { parseSid } from "./sid.ts";

/**
 * What the never-touch rules and the ownership marker need of an object, read with it:
 * objectGUID (the identity the marker's MAC covers), isCriticalSystemObject and adminCount.
 */
export interface ObjectGuard {
  /** objectGUID, canonical text (ownership.ts guidToString); undefined when unreadable. */
  guid?: string | undefined;
  isCriticalSystemObject?: boolean | undefined;
  adminCount?: number | undefined;
}

/**
 * A group managed service account as read from AD, or a standalone one (`standalone`: objectClass
 * msDS-ManagedServiceAccount), which the same search reads: both are service accounts with the
 * same attributes, and one search keeps a full read at one request per kind of object.
 */
export interface ObservedGmsa extends ObjectGuard {
  dn: string;
  /** True for a standalone managed service account (sMSA); absent or false for a gMSA. */
  standalone?: boolean | undefined;
  /**
   * msDS-HostServiceAccountBL: the computers whose msDS-HostServiceAccount links this account
   * (an sMSA's host, as Add-ADComputerServiceAccount links it). Empty or absent for gMSAs.
   */
  hostComputers?: string[] | undefined;
  /** sAMAccountName without the trailing "$". */
  samAccountName: string;
  sid: string;
  dnsHostName?: string | undefined;
  description?: string | undefined;
  displayName?: string | undefined;
  servicePrincipalNames: string[];
  /** msDS-SupportedEncryptionTypes, all bits (see encryption-types.ts). */
  encryptionTypes?: number | undefined;
  /** msDS-ManagedPasswordInterval in days. */
  passwordIntervalDays?: number | undefined;
  /** msDS-GroupMSAMembership, raw self-relative security descriptor. */
  groupMsaMembership?: Buffer | undefined;
  /** msDS-AllowedToDelegateTo: the SPNs of constrained delegation. */
  allowedToDelegateTo?: string[] | undefined;
  /** msDS-AllowedToActOnBehalfOfOtherIdentity (resource-based constrained delegation), raw descriptor. */
  allowedToActOnBehalf?: Buffer | undefined;
  userAccountControl?: number | undefined;
  /** When the DC last generated the managed password; undefined when 0 (never). */
  pwdLastSet?: Date | undefined;
  adminDescription?: string | undefined;
  /** Which repository resource the object belongs to (see docs/decisions/renames.md). */
  adminDisplayName?: string | undefined;
  /** True when adminDescription carries a gmsa-gitops marker (proven or not: see ownership.ts). */
  managed: boolean;
  whenChanged?: Date | undefined;
}

/** A security group as read from AD. */
export interface ObservedGroup extends ObjectGuard {
  dn: string;
  samAccountName: string;
  sid: string;
  /** groupType bits as a signed 32-bit integer (security groups have 0x80000000 set). */
  groupType: number;
  description?: string | undefined;
  displayName?: string | undefined;
  /** The info attribute (notes). */
  info?: string | undefined;
  /** The DN in managedBy. */
  managedBy?: string | undefined;
  /** Member DNs, every range of a large group merged. */
  members: string[];
  adminDescription?: string | undefined;
  /** Which repository resource the object belongs to (see docs/decisions/renames.md). */
  adminDisplayName?: string | undefined;
  managed: boolean;
}

/** A computer account (never a gMSA or sMSA) as read from AD. */
export interface ObservedComputer {
  dn: string;
  /** sAMAccountName without the trailing "$". */
  samAccountName: string;
  sid: string;
  dnsHostName?: string | undefined;
  /**
   * msDS-HostServiceAccount: DNs of the standalone managed service accounts linked to this
   * computer (Add-ADComputerServiceAccount). Read from the computer, the forward link, so an
   * incremental read sees a link changed by hand (that changes the computer, not the account).
   */
  hostServiceAccounts?: string[] | undefined;
}

/** A KDS root key (msKds-ProvRootKey). */
export interface ObservedKdsRootKey {
  dn: string;
  /** The key's GUID (its CN). */
  id: string;
  useStartTime: Date;
  createTime: Date;
  /** objectGUID, canonical text: what an ownership marker on the key is bound to. */
  guid?: string | undefined;
  /** The ownership marker, written only on keys whose resource says deletionPolicy: Delete. */
  adminDescription?: string | undefined;
  /** The resource tag of the KdsRootKey resource the key was made or named for. */
  adminDisplayName?: string | undefined;
}

/** A principal found by SID or DN, to name the entries of a security descriptor. */
export interface ResolvedPrincipal {
  sid: string;
  dn: string;
  samAccountName: string;
  /** Most specific structural class, e.g. "group", "computer", "msDS-GroupManagedServiceAccount". */
  objectClass: string;
  /** For `user:` references by UPN (alice@corp.example). */
  userPrincipalName?: string | undefined;
}

/** Attribute names with the server's exact casing; ldapts matches explicitBufferAttributes case-sensitively. */
export const BINARY_ATTRIBUTES = [
  "objectSid",
  "objectGUID",
  "invocationId",
  "msDS-GroupMSAMembership",
  "msDS-AllowedToActOnBehalfOfOtherIdentity",
  "msKds-RootKeyData",
  "msKds-KDFParam",
  "msKds-SecretAgreementParam",
  "replPropertyMetaData",
  "invocationId",
];

/** Attributes read for gMSAs. */
export const GMSA_ATTRIBUTES = [
  "sAMAccountName",
  "objectSid",
  "dNSHostName",
  "description",
  "displayName",
  "servicePrincipalName",
  "msDS-SupportedEncryptionTypes",
  "msDS-ManagedPasswordInterval",
  "msDS-GroupMSAMembership",
  "msDS-AllowedToDelegateTo",
  "msDS-AllowedToActOnBehalfOfOtherIdentity",
  "userAccountControl",
  "pwdLastSet",
  "adminDescription",
  "adminDisplayName",
  "whenChanged",
  "objectGUID",
  "isCriticalSystemObject",
  "adminCount",
  "objectClass",
  "msDS-HostServiceAccountBL",
];

/** Values per ranged read of "member": AD's default MaxValRange. */
export const MEMBER_RANGE_SIZE = 1500;

/**
 * Attributes read for groups. "member" is asked for as an explicit first range: Windows ranges
 * large attributes by itself, but Samba (4.22) returns every value of a plain "member" request
 * and ranges only when asked, so asking explicitly gives one code path on both.
 */
export const GROUP_ATTRIBUTES = [
  "sAMAccountName",
  "objectSid",
  "groupType",
  "description",
  "displayName",
  "info",
  "managedBy",
  `member;range=0-${MEMBER_RANGE_SIZE - 1}`,
  "adminDescription",
  "adminDisplayName",
  "objectGUID",
  "isCriticalSystemObject",
  "adminCount",
];

/** Attributes read for computers; msDS-HostServiceAccount holds the sMSAs the computer hosts. */
export const COMPUTER_ATTRIBUTES = ["sAMAccountName", "objectSid", "dNSHostName", "msDS-HostServiceAccount"];

/** Attributes read for principals found by SID. */
export const PRINCIPAL_ATTRIBUTES = ["sAMAccountName", "objectSid", "objectClass", "userPrincipalName"];

/** Attributes read for KDS root keys (confidential: the bind account needs read access). */
export const KDS_ROOT_KEY_ATTRIBUTES = [
  "cn",
  "msKds-UseStartTime",
  "msKds-CreateTime",
  "objectGUID",
  "adminDescription",
  "adminDisplayName",
];

/** Thrown when an entry lacks an attribute the controller cannot do without. */
export class MissingAttributeError extends Error {
  readonly dn: string;
  readonly attribute: string;
  constructor(dn: string, attribute: string) {
    super(`${dn} has no readable ${attribute}`);
    this.name = "MissingAttributeError";
    this.dn = dn;
    this.attribute = attribute;
  }
}

type Value = string | Buffer;

/** Values of an attribute, looked up case-insensitively (servers may vary the casing). */
export function values(entry: Entry, attribute: string): Value[] {
  // Servers normally answer with the casing that was asked for: try that before scanning,
  // which made reading 5,000 gMSAs spend most of its CPU here.
  const exact = attribute === "dn" ? undefined : entry[attribute];
  if (exact !== undefined) return Array.isArray(exact) ? exact : [exact];
  const wanted = attribute.toLowerCase();
  for (const [key, raw] of Object.entries(entry)) {
    if (key === "dn" || key.toLowerCase() !== wanted) continue;
    return Array.isArray(raw) ? raw : [raw];
  }
  return [];
}

function text(entry: Entry, attribute: string): string | undefined {
  const v = values(entry, attribute)[0];
  if (v === undefined) return undefined;
  return typeof v === "string" ? v : v.toString("utf8");
}

function texts(entry: Entry, attribute: string): string[] {
  return values(entry, attribute).map((v) => (typeof v === "string" ? v : v.toString("utf8")));
}

function integer(entry: Entry, attribute: string): number | undefined {
  const t = text(entry, attribute);
  if (t === undefined || !/^-?\d+$/.test(t.trim())) return undefined;
  return Number(t);
}

function binary(entry: Entry, attribute: string): Buffer | undefined {
  const v = values(entry, attribute)[0];
  if (v === undefined) return undefined;
  // A string here means the attribute was not in explicitBufferAttributes with the server's
  // casing and happened to be valid UTF-8: a programming error, not data.
  if (typeof v === "string") throw new Error(`${entry.dn}: ${attribute} came back as text; request it as a buffer`);
  return v;
}

/**
 * A binary value the picture keeps, copied: ldapts hands out views into the received message,
 * and one kept view would keep the whole message (every entry of its page) alive.
 */
function keptBinary(entry: Entry, attribute: string): Buffer | undefined {
  const v = binary(entry, attribute);
  return v === undefined ? undefined : Buffer.from(v);
}

function required(entry: Entry, attribute: string): string {
  const t = text(entry, attribute);
  if (t === undefined) throw new MissingAttributeError(entry.dn, attribute);
  return t;
}

function sidOf(entry: Entry): string {
  const b = binary(entry, "objectSid");
  if (b === undefined) throw new MissingAttributeError(entry.dn, "objectSid");
  return parseSid(b);
}

function withoutDollar(name: string): string {
  return name.endsWith("$") ? name.slice(0, -1) : name;
}

function guard(entry: Entry): ObjectGuard {
  const guid = values(entry, "objectGUID")[0];
  const critical = text(entry, "isCriticalSystemObject");
  return {
    guid: Buffer.isBuffer(guid) && guid.length === 16 ? guidToString(guid) : undefined,
    isCriticalSystemObject: critical === undefined ? undefined : critical.toUpperCase() === "TRUE",
    adminCount: integer(entry, "adminCount"),
  };
}

const marked = (adminDescription: string | undefined): boolean => adminDescription?.startsWith(MARKER_PREFIX) ?? false;

/** Parses GeneralizedTime as AD writes it ("20250601120000.0Z"). */
export function parseGeneralizedTime(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,](\d+))?Z$/.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = frac === undefined ? 0 : Math.round(Number(`0.${frac}`) * 1000);
  return new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms));
}

/** Converts a gMSA search entry. Throws MissingAttributeError without sAMAccountName or objectSid. */
export function gmsaFromEntry(entry: Entry): ObservedGmsa {
  const adminDescription = text(entry, "adminDescription");
  const pwd = text(entry, "pwdLastSet");
  const changed = text(entry, "whenChanged");
  return {
    dn: entry.dn,
    ...standaloneFields(entry),
    samAccountName: withoutDollar(required(entry, "sAMAccountName")),
    sid: sidOf(entry),
    servicePrincipalNames: texts(entry, "servicePrincipalName").sort(),
    managed: marked(adminDescription),
    ...guard(entry),
    dnsHostName: text(entry, "dNSHostName"),
    description: text(entry, "description"),
    displayName: text(entry, "displayName"),
    encryptionTypes: integer(entry, "msDS-SupportedEncryptionTypes"),
    passwordIntervalDays: integer(entry, "msDS-ManagedPasswordInterval"),
    groupMsaMembership: keptBinary(entry, "msDS-GroupMSAMembership"),
    allowedToDelegateTo: texts(entry, "msDS-AllowedToDelegateTo").sort(),
    allowedToActOnBehalf: keptBinary(entry, "msDS-AllowedToActOnBehalfOfOtherIdentity"),
    userAccountControl: integer(entry, "userAccountControl"),
    pwdLastSet: pwd === undefined ? undefined : filetimeToDate(pwd),
    adminDescription,
    adminDisplayName: text(entry, "adminDisplayName"),
    whenChanged: changed === undefined ? undefined : parseGeneralizedTime(changed),
  };
}

/** A list, or undefined when empty: a gMSA or computer without links reads as it did before sMSAs. */
const orAbsent = (list: string[]): string[] | undefined => (list.length > 0 ? list : undefined);

/** What tells an sMSA from a gMSA: its structural class, and the computers that link it. */
function standaloneFields(entry: Entry): Pick<ObservedGmsa, "standalone" | "hostComputers"> {
  if (!texts(entry, "objectClass").some((c) => c.toLowerCase() === "msds-managedserviceaccount")) return {};
  return { standalone: true, hostComputers: texts(entry, "msDS-HostServiceAccountBL") };
}

/**
 * Converts a group search entry; `members` are the values of "member" or of whatever
 * "member;range=..." attribute came back (the client merges further ranges).
 */
export function groupFromEntry(entry: Entry): ObservedGroup {
  const adminDescription = text(entry, "adminDescription");
  const range = memberRange(entry);
  return {
    dn: entry.dn,
    samAccountName: required(entry, "sAMAccountName"),
    sid: sidOf(entry),
    groupType: integer(entry, "groupType") ?? 0,
    members: range ? range.values : texts(entry, "member"),
    managed: marked(adminDescription),
    ...guard(entry),
    description: text(entry, "description"),
    displayName: text(entry, "displayName"),
    info: text(entry, "info"),
    managedBy: text(entry, "managedBy"),
    adminDescription,
    adminDisplayName: text(entry, "adminDisplayName"),
  };
}

/** Converts a computer search entry. */
export function computerFromEntry(entry: Entry): ObservedComputer {
  return {
    dn: entry.dn,
    samAccountName: withoutDollar(required(entry, "sAMAccountName")),
    sid: sidOf(entry),
    dnsHostName: text(entry, "dNSHostName"),
    hostServiceAccounts: orAbsent(texts(entry, "msDS-HostServiceAccount")),
  };
}

/** Converts a principal search entry (any object with a SID). */
export function principalFromEntry(entry: Entry): ResolvedPrincipal {
  const classes = texts(entry, "objectClass");
  return {
    sid: sidOf(entry),
    dn: entry.dn,
    samAccountName: text(entry, "sAMAccountName") ?? "",
    objectClass: classes[classes.length - 1] ?? "",
    userPrincipalName: text(entry, "userPrincipalName"),
  };
}

/**
 * Converts a KDS root key entry. Throws MissingAttributeError when the times are absent: they
 * are confidential attributes, so this means the bind account may not read them.
 */
export function kdsRootKeyFromEntry(entry: Entry): ObservedKdsRootKey {
  const use = filetimeToDate(required(entry, "msKds-UseStartTime"));
  const created = filetimeToDate(required(entry, "msKds-CreateTime"));
  if (use === undefined) throw new MissingAttributeError(entry.dn, "msKds-UseStartTime");
  if (created === undefined) throw new MissingAttributeError(entry.dn, "msKds-CreateTime");
  const guid = values(entry, "objectGUID")[0];
  return {
    dn: entry.dn,
    id: required(entry, "cn"),
    useStartTime: use,
    createTime: created,
    guid: Buffer.isBuffer(guid) && guid.length === 16 ? guidToString(guid) : undefined,
    adminDescription: text(entry, "adminDescription"),
    adminDisplayName: text(entry, "adminDisplayName"),
  };
}

/**
 * The ranged "member" attribute of an entry, if the server sent one: AD returns
 * "member;range=0-1499" when a group has more values than MaxValRange (1500), and
 * "member;range=1500-*" on the last page. `next` is where to continue, absent on the last page.
 * An empty range is the last page too: Samba 4.22 answers "member;range=0-1499" with no values
 * for a group without members, and would keep doing so for every later range.
 */
export function memberRange(entry: Entry): { values: string[]; next?: number } | undefined {
  for (const key of Object.keys(entry)) {
    const m = /^member;range=(\d+)-(\d+|\*)$/i.exec(key);
    if (!m) continue;
    const vals = texts(entry, key);
    if (m[2] === "*" || vals.length === 0) return { values: vals };
    return { values: vals, next: Number(m[2]) + 1 };
  }
  return undefined;
}
