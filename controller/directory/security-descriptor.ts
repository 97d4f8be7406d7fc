// Self-relative security descriptors ([MS-DTYP] 2.4.6) as stored in msDS-GroupMSAMembership (the
// DC grants msDS-ManagedPassword to whoever this descriptor allows READ_PROP, 0x10) and in
// msDS-AllowedToActOnBehalfOfOtherIdentity (resource-based constrained delegation: the KDC lets a
// service delegate to this account when the descriptor allows it CONTROL_ACCESS, 0x100).
import { encodeSid, InvalidSidError, readSidAt } from "./sid.ts";

/** Thrown when bytes are not a well-formed self-relative security descriptor. */
export class InvalidSecurityDescriptorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidSecurityDescriptorError";
  }
}

/** ACE type codes ([MS-DTYP] 2.4.4.1) that the controller names. */
export const ACE_TYPE = {
  accessAllowed: 0x00,
  accessDenied: 0x01,
  systemAudit: 0x02,
  accessAllowedObject: 0x05,
  accessDeniedObject: 0x06,
} as const;

/** Access-mask bits the controller needs. */
export const ACCESS_MASK = {
  readProperty: 0x10,
  controlAccess: 0x100,
  /** SEC_ADS_GENERIC_ALL: what New-ADServiceAccount grants each allowed principal. */
  adsGenericAll: 0x000f01ff,
  genericAll: 0x1000_0000,
  genericRead: 0x8000_0000,
} as const;

/** ACE flag INHERIT_ONLY_ACE: the ACE does not apply to the object itself. */
const INHERIT_ONLY_ACE = 0x08;

/** BUILTIN\Administrators, the owner the AD module writes into msDS-GroupMSAMembership. */
export const BUILTIN_ADMINISTRATORS_SID = "S-1-5-32-544";

/** One access control entry. Object ACEs (types 5-8, 0x0B, 0x0C, 0x0F, 0x10) also carry their GUIDs. */
export interface Ace {
  type: number;
  flags: number;
  mask: number;
  sid: string;
  /** Object ACEs only: the property, property set or class the ACE is limited to. */
  objectType?: string;
  /** Object ACEs only: the class of child objects that inherit the ACE. */
  inheritedObjectType?: string;
}

/** A decoded security descriptor: owner, group, and the DACL's entries in order. */
export interface SecurityDescriptor {
  owner?: string;
  group?: string;
  /** Entries of the DACL; empty when the DACL is absent or empty. */
  aces: Ace[];
}

const SE_DACL_PRESENT = 0x0004;
const SE_SELF_RELATIVE = 0x8000;
const HEADER_LENGTH = 20;
const ACL_HEADER_LENGTH = 8;
/** Revision 4 (ACL_REVISION_DS) is what .NET and Samba write for DS descriptors. */
const ACL_REVISION_DS = 4;

/**
 * Builds msDS-GroupMSAMembership exactly as New-ADServiceAccount does: owner BUILTIN\Administrators,
 * no group, no SACL, a DACL (revision 4) with one ACCESS_ALLOWED ACE of mask 0xF01FF per principal,
 * in the order given, self-relative with the owner at offset 20 and the DACL after it.
 * Duplicate SIDs are written once. Throws InvalidSidError for a malformed SID.
 */
export function encodeGroupMsaMembership(sids: readonly string[]): Buffer {
  const owner = encodeSid(BUILTIN_ADMINISTRATORS_SID);
  const seen = new Set<string>();
  const aces: Buffer[] = [];
  for (const sid of sids) {
    const bin = encodeSid(sid);
    const key = bin.toString("hex");
    if (seen.has(key)) continue;
    seen.add(key);
    const ace = Buffer.alloc(8 + bin.length);
    ace.writeUInt8(ACE_TYPE.accessAllowed, 0);
    ace.writeUInt8(0, 1);
    ace.writeUInt16LE(ace.length, 2);
    ace.writeUInt32LE(ACCESS_MASK.adsGenericAll, 4);
    bin.copy(ace, 8);
    aces.push(ace);
  }
  const aclSize = ACL_HEADER_LENGTH + aces.reduce((n, a) => n + a.length, 0);
  const acl = Buffer.alloc(ACL_HEADER_LENGTH);
  acl.writeUInt8(ACL_REVISION_DS, 0);
  acl.writeUInt16LE(aclSize, 2);
  acl.writeUInt16LE(aces.length, 4);

  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt8(1, 0);
  header.writeUInt16LE(SE_SELF_RELATIVE | SE_DACL_PRESENT, 2);
  header.writeUInt32LE(HEADER_LENGTH, 4); // owner
  header.writeUInt32LE(0, 8); // group
  header.writeUInt32LE(0, 12); // SACL
  header.writeUInt32LE(HEADER_LENGTH + owner.length, 16); // DACL
  return Buffer.concat([header, owner, acl, ...aces]);
}

/**
 * Builds msDS-AllowedToActOnBehalfOfOtherIdentity as the AD module writes it for
 * Set-ADServiceAccount -PrincipalsAllowedToDelegateToAccount, which is the same layout as
 * msDS-GroupMSAMembership: owner BUILTIN\Administrators and one ACCESS_ALLOWED ACE of mask 0xF01FF
 * per principal ("O:BAD:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;<SID>)"; Samba's
 * `samba-tool delegation add-principal` writes SEC_ADS_GENERIC_ALL under the same owner too).
 */
export const encodeAllowedToActOnBehalfOfOtherIdentity: (sids: readonly string[]) => Buffer = encodeGroupMsaMembership;

const BASIC_ACE_TYPES = new Set([0x00, 0x01, 0x02, 0x03, 0x09, 0x0a, 0x0d, 0x0e, 0x11, 0x12, 0x13]);
const OBJECT_ACE_TYPES = new Set([0x05, 0x06, 0x07, 0x08, 0x0b, 0x0c, 0x0f, 0x10]);

/**
 * Decodes a self-relative security descriptor. Tolerates any order of owner, group, SACL and
 * DACL, ACL revision 2 or 4, and padding after an ACE's SID (AD sometimes adds null bytes).
 * Object ACEs are returned with their GUIDs; ACE types without a SID layout it knows are
 * skipped. The SACL is not decoded. Throws InvalidSecurityDescriptorError when an offset or
 * size points outside the buffer.
 */
export function decodeSecurityDescriptor(buf: Uint8Array): SecurityDescriptor {
  if (buf.length < HEADER_LENGTH) fail(`descriptor is ${buf.length} bytes, the header alone is 20`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const revision = view.getUint8(0);
  if (revision !== 1) fail(`descriptor revision is ${revision}, expected 1`);
  const control = view.getUint16(2, true);
  if ((control & SE_SELF_RELATIVE) === 0) fail("descriptor is not self-relative");
  const ownerOffset = view.getUint32(4, true);
  const groupOffset = view.getUint32(8, true);
  const daclOffset = view.getUint32(16, true);

  const result: SecurityDescriptor = { aces: [] };
  if (ownerOffset !== 0) result.owner = sidAt(buf, ownerOffset, "owner");
  if (groupOffset !== 0) result.group = sidAt(buf, groupOffset, "group");
  if ((control & SE_DACL_PRESENT) !== 0 && daclOffset !== 0) result.aces = decodeAcl(buf, view, daclOffset);
  return result;
}

function decodeAcl(buf: Uint8Array, view: DataView, offset: number): Ace[] {
  if (offset + ACL_HEADER_LENGTH > buf.length) fail(`DACL offset ${offset} is past the end (${buf.length} bytes)`);
  const revision = view.getUint8(offset);
  if (revision !== 2 && revision !== ACL_REVISION_DS) fail(`DACL revision is ${revision}, expected 2 or 4`);
  const aclSize = view.getUint16(offset + 2, true);
  const aceCount = view.getUint16(offset + 4, true);
  const aclEnd = offset + aclSize;
  if (aclSize < ACL_HEADER_LENGTH || aclEnd > buf.length) {
    fail(`DACL size ${aclSize} at offset ${offset} does not fit in ${buf.length} bytes`);
  }
  const aces: Ace[] = [];
  let at = offset + ACL_HEADER_LENGTH;
  for (let i = 0; i < aceCount; i++) {
    if (at + 4 > aclEnd) fail(`ACE ${i} header runs past the end of the DACL`);
    const type = view.getUint8(at);
    const flags = view.getUint8(at + 1);
    const size = view.getUint16(at + 2, true);
    if (size < 8 || at + size > aclEnd) fail(`ACE ${i} has size ${size}, which does not fit`);
    // The ACE's own size bounds its fields; the padding after the SID is ignored.
    const ace = buf.subarray(at, at + size);
    const aceView = new DataView(ace.buffer, ace.byteOffset, ace.byteLength);
    if (BASIC_ACE_TYPES.has(type)) {
      aces.push({ type, flags, mask: aceView.getUint32(4, true), sid: sidAt(ace, 8, `ACE ${i} SID`) });
    } else if (OBJECT_ACE_TYPES.has(type)) {
      aces.push(decodeObjectAce(ace, aceView, type, flags, i));
    }
    at += size;
  }
  return aces;
}

function decodeObjectAce(ace: Uint8Array, view: DataView, type: number, flags: number, index: number): Ace {
  if (ace.length < 12) fail(`object ACE ${index} is too short`);
  const mask = view.getUint32(4, true);
  const objectFlags = view.getUint32(8, true);
  let at = 12;
  const result: Ace = { type, flags, mask, sid: "" };
  if ((objectFlags & 0x1) !== 0) {
    result.objectType = guidAt(ace, at, index);
    at += 16;
  }
  if ((objectFlags & 0x2) !== 0) {
    result.inheritedObjectType = guidAt(ace, at, index);
    at += 16;
  }
  result.sid = sidAt(ace, at, `object ACE ${index} SID`);
  return result;
}

/** GUIDs are stored with the first three fields little-endian ([MS-DTYP] 2.3.4.2). */
function guidAt(buf: Uint8Array, at: number, index: number): string {
  if (at + 16 > buf.length) fail(`object ACE ${index} GUID is truncated`);
  const b = Buffer.from(buf.subarray(at, at + 16));
  const h = (start: number, end: number): string => b.subarray(start, end).toString("hex");
  const le = (start: number, end: number): string => Buffer.from(b.subarray(start, end)).reverse().toString("hex");
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${h(8, 10)}-${h(10, 16)}`;
}

function sidAt(buf: Uint8Array, offset: number, what: string): string {
  try {
    return readSidAt(buf, offset).sid;
  } catch (err) {
    if (err instanceof InvalidSidError) fail(`${what}: ${err.message}`);
    throw err;
  }
}

function fail(message: string): never {
  throw new InvalidSecurityDescriptorError(message);
}

function asDescriptor(sd: Uint8Array | SecurityDescriptor): SecurityDescriptor {
  return sd instanceof Uint8Array ? decodeSecurityDescriptor(sd) : sd;
}

/**
 * The SIDs an msDS-GroupMSAMembership descriptor lets read the managed password: every
 * ACCESS_ALLOWED ACE (type 0, not inherit-only) whose mask includes READ_PROP (0x10),
 * GENERIC_READ or GENERIC_ALL. Deny ACEs are not subtracted and object ACEs are ignored, as the
 * DC's plain access check for READ_PROP on this descriptor ignores object ACEs too.
 */
export function allowedReaders(sd: Uint8Array | SecurityDescriptor): Set<string> {
  return allowedSids(sd, ACCESS_MASK.readProperty | ACCESS_MASK.genericRead | ACCESS_MASK.genericAll);
}

/**
 * The SIDs an msDS-AllowedToActOnBehalfOfOtherIdentity descriptor lets delegate to the account:
 * every ACCESS_ALLOWED ACE (type 0, not inherit-only) whose mask has CONTROL_ACCESS (0x100), the
 * specific right the KDC's S4U2Proxy check evaluates. GENERIC_ALL alone does not count: the KDC
 * does not expand generic rights, so such an ACE allows nothing and reads as drift.
 */
export function allowedDelegators(sd: Uint8Array | SecurityDescriptor): Set<string> {
  return allowedSids(sd, ACCESS_MASK.controlAccess);
}

/** SIDs of the ACCESS_ALLOWED ACEs (type 0, not inherit-only) whose mask has any of `grants`. */
function allowedSids(sd: Uint8Array | SecurityDescriptor, grants: number): Set<string> {
  const sids = new Set<string>();
  for (const ace of asDescriptor(sd).aces) {
    if (ace.type !== ACE_TYPE.accessAllowed || (ace.flags & INHERIT_ONLY_ACE) !== 0) continue;
    if ((ace.mask & grants) !== 0) sids.add(ace.sid);
  }
  return sids;
}
