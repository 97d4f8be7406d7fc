// Ownership of AD objects: the marker the controller writes to adminDescription, which only a
// holder of the ownership key can make, and the objects that are never touched whatever their
// marker says. The reasons are in docs/decisions/ownership-and-prune.md.
import { createHmac, timingSafeEqual } from "node:crypto";
import { normalizeDn, parentDn } from "./dn.ts";

/** What every gmsa-gitops marker starts with (the reader finds candidate objects by it). */
export const MARKER_PREFIX = "gmsa-gitops:";

/** The marker of versions before v2: anyone could write it, so it proves nothing any more. */
export const LEGACY_MARKER = "gmsa-gitops:managed";

/** An owner id: lower-case letters, digits and '-', at most 63 characters (it sits in the marker). */
export const OWNER_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The shortest ownership key accepted, in bytes: HMAC-SHA256 wants at least its output size. */
export const MIN_OWNERSHIP_KEY_BYTES = 32;

/** How an object's adminDescription relates to this controller. */
export type MarkerCheck =
  /** A v2 marker of this owner id whose MAC matches this very object. */
  | { readonly status: "ours" }
  /** No gmsa-gitops marker at all. */
  | { readonly status: "none" }
  /** `gmsa-gitops:managed`, or a v2 marker of our owner id whose MAC does not match this object. */
  | { readonly status: "unproven"; readonly why: string }
  /** A well-formed v2 marker of another owner id: that controller's object. */
  | { readonly status: "foreign"; readonly ownerId: string };

const V2 = /^gmsa-gitops:v2:([^:]+):([A-Za-z0-9_-]+)$/;

/**
 * The canonical text of an objectGUID (its 16 bytes as AD stores them): the registry form
 * `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, first three fields little-endian, lower case.
 */
export function guidToString(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`an objectGUID has 16 bytes, not ${bytes.length}`);
  const b = Buffer.from(bytes);
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = b.subarray(from, to);
    return Buffer.from(reverse ? [...part].reverse() : part).toString("hex");
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join("-");
}

/**
 * The controller's proof of ownership: an owner id and a secret key. `markerFor(guid)` is
 * `gmsa-gitops:v2:<ownerId>:<mac>` with mac = HMAC-SHA256(key, "v2" NUL ownerId NUL guid),
 * base64url. The key never leaves this object: it is not enumerable, not in JSON, not in errors.
 */
export class OwnershipKey {
  readonly ownerId: string;
  readonly #key: Buffer;

  constructor(ownerId: string, key: Uint8Array) {
    if (!OWNER_ID_PATTERN.test(ownerId))
      throw new RangeError("an owner id is 1-63 lower-case letters, digits and '-', starting and ending alphanumeric");
    if (key.length < MIN_OWNERSHIP_KEY_BYTES)
      throw new RangeError(`an ownership key has at least ${MIN_OWNERSHIP_KEY_BYTES} bytes`);
    this.ownerId = ownerId;
    this.#key = Buffer.from(key);
  }

  #mac(guid: string): Buffer {
    return createHmac("sha256", this.#key).update(`v2\0${this.ownerId}\0${guid.toLowerCase()}`).digest();
  }

  /** The marker for the object with this objectGUID (canonical text, see guidToString). */
  markerFor(guid: string): string {
    return `${MARKER_PREFIX}v2:${this.ownerId}:${this.#mac(guid).toString("base64url")}`;
  }

  /** Classifies an object's adminDescription; `guid` is the object's own objectGUID. */
  check(adminDescription: string | undefined, guid: string | undefined): MarkerCheck {
    if (adminDescription === undefined || !adminDescription.startsWith(MARKER_PREFIX)) return { status: "none" };
    if (adminDescription === LEGACY_MARKER)
      return { status: "unproven", why: `the marker ${LEGACY_MARKER} carries no proof (written before v2)` };
    const m = V2.exec(adminDescription);
    if (!m) return { status: "unproven", why: "the marker is not a well-formed gmsa-gitops v2 marker" };
    const [, owner, mac] = m as unknown as [string, string, string];
    if (owner !== this.ownerId) return { status: "foreign", ownerId: owner };
    if (guid === undefined) return { status: "unproven", why: "the object's objectGUID could not be read" };
    const want = this.#mac(guid);
    const got = Buffer.from(mac, "base64url");
    if (got.length !== want.length || !timingSafeEqual(got, want))
      return { status: "unproven", why: "the marker's MAC does not match this object (copied or forged)" };
    return { status: "ours" };
  }

  /** Only the owner id: the key is never serialised. */
  toJSON(): { ownerId: string } {
    return { ownerId: this.ownerId };
  }
}

/** What the never-touch rules look at. */
export interface ProtectionFacts {
  readonly dn: string;
  readonly sid: string;
  readonly isCriticalSystemObject?: boolean | undefined;
  readonly adminCount?: number | undefined;
  /** sAMAccountName (without a gMSA's "$"), for the privileged groups only a name identifies. */
  readonly samAccountName?: string | undefined;
}

/**
 * The containers a domain is created with, relative to its DN. Objects in them belong to the
 * domain itself unless a manifest names the container as its path (CN=Users and CN=Managed
 * Service Accounts are the CRD defaults); CN=Builtin is never allowed.
 */
export const BUILTIN_CONTAINERS = [
  "CN=Builtin",
  "CN=Users",
  "CN=Computers",
  "CN=System",
  "OU=Domain Controllers",
  "CN=ForeignSecurityPrincipals",
  "CN=Program Data",
  "CN=Managed Service Accounts",
  "CN=LostAndFound",
  "CN=Infrastructure",
  "CN=NTDS Quotas",
  "CN=Keys",
  "CN=TPM Devices",
] as const;

/**
 * Privileged groups a server role creates with an ordinary RID, in CN=Users, neither critical
 * nor adminCount=1, so no other rule catches them: members of DnsAdmins load code into the DNS
 * service on every domain controller; DnsUpdateProxy's members leave DNS records ownerless.
 */
const PRIVILEGED_ROLE_GROUPS = new Set(["dnsadmins", "dnsupdateproxy"]);

/** Below this RID, accounts and groups are the domain's own (Administrator 500, Domain Admins 512, ...). */
const FIRST_ORDINARY_RID = 1000;

/**
 * Why an object must never be written or deleted, whatever its marker and `--adopt` say, or
 * undefined when none of the rules applies. `allowedContainers` are the normalised DNs of the
 * containers manifests name as their path.
 */
export function protectedReason(
  o: ProtectionFacts,
  baseDn: string,
  allowedContainers: ReadonlySet<string>,
): string | undefined {
  if (o.isCriticalSystemObject === true) return "isCriticalSystemObject is TRUE";
  if (o.adminCount === 1) return "adminCount is 1 (a protected account or group, guarded by AdminSDHolder)";
  if (o.sid.startsWith("S-1-5-32-")) return `${o.sid} is a builtin (S-1-5-32) SID`;
  if (o.samAccountName !== undefined && PRIVILEGED_ROLE_GROUPS.has(o.samAccountName.toLowerCase()))
    return `${o.samAccountName} is a privileged group of the DNS server role (its members administer DNS on the domain controllers)`;
  const rid = Number(o.sid.slice(o.sid.lastIndexOf("-") + 1));
  if (/^S-1-5-21-/.test(o.sid) && rid < FIRST_ORDINARY_RID) return `RID ${rid} is a well-known RID (below 1000)`;
  const dn = normalizeDn(o.dn);
  const base = normalizeDn(baseDn);
  if (dn.endsWith(`,cn=builtin,${base}`)) return "it is under CN=Builtin";
  const parent = normalizeDn(parentDn(o.dn));
  for (const container of BUILTIN_CONTAINERS) {
    const c = `${normalizeDn(container)},${base}`;
    if ((dn.endsWith(`,${c}`) || parent === c) && !allowedContainers.has(parent))
      return `it is in the built-in container ${container}, which no manifest names as its path`;
  }
  return undefined;
}
