// Security identifiers (SIDs) in their binary form ([MS-DTYP] 2.4.2.2) and string form
// ([MS-DTYP] 2.4.2.1), as AD stores them in objectSid and inside security descriptors.

/** Thrown when bytes or text are not a well-formed SID. The message names what is wrong. */
export class InvalidSidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidSidError";
  }
}

/** [MS-DTYP]: a SID has at most 15 sub-authorities. */
const MAX_SUB_AUTHORITIES = 15;
const HEADER_LENGTH = 8;
const MAX_AUTHORITY = 2n ** 48n - 1n;
const MAX_SUB_AUTHORITY = 0xffff_ffff;

/** Byte length of a binary SID with `subAuthorityCount` sub-authorities. */
export function sidLength(subAuthorityCount: number): number {
  return HEADER_LENGTH + 4 * subAuthorityCount;
}

/**
 * Reads one binary SID that starts at `offset` in `buf` (bytes after it are ignored, as inside a
 * security descriptor) and returns its string form and its length in bytes.
 * Throws InvalidSidError when the revision is not 1, the count is over 15 or the bytes run out.
 */
export function readSidAt(buf: Uint8Array, offset: number): { sid: string; length: number } {
  if (offset < 0 || offset + HEADER_LENGTH > buf.length) {
    throw new InvalidSidError(`SID at offset ${offset} is truncated: ${buf.length - offset} bytes left, 8 needed`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const revision = view.getUint8(offset);
  const count = view.getUint8(offset + 1);
  if (revision !== 1) throw new InvalidSidError(`SID revision is ${revision}, expected 1`);
  if (count > MAX_SUB_AUTHORITIES) {
    throw new InvalidSidError(`SID has ${count} sub-authorities, at most ${MAX_SUB_AUTHORITIES} allowed`);
  }
  const length = sidLength(count);
  if (offset + length > buf.length) {
    throw new InvalidSidError(
      `SID at offset ${offset} is truncated: ${buf.length - offset} bytes left, ${length} needed`,
    );
  }
  // The identifier authority is 48 bits big-endian; the sub-authorities are little-endian.
  let authority = 0n;
  for (let i = 0; i < 6; i++) authority = (authority << 8n) | BigInt(view.getUint8(offset + 2 + i));
  // [MS-DTYP] 2.4.2.1: authorities of 2^32 and above are written in hexadecimal.
  const parts = [authority < 2n ** 32n ? authority.toString(10) : `0x${authority.toString(16).toUpperCase()}`];
  for (let i = 0; i < count; i++) parts.push(String(view.getUint32(offset + HEADER_LENGTH + 4 * i, true)));
  return { sid: `S-1-${parts.join("-")}`, length };
}

/**
 * Parses a binary SID (objectSid) into its string form, e.g. "S-1-5-21-1-2-3-500".
 * The buffer must hold exactly one SID: trailing bytes are an error.
 */
export function parseSid(buf: Uint8Array): string {
  const { sid, length } = readSidAt(buf, 0);
  if (length !== buf.length) {
    throw new InvalidSidError(`SID is ${length} bytes but the value has ${buf.length}`);
  }
  return sid;
}

const SID_PATTERN = /^S-1-(0x[0-9A-Fa-f]{1,12}|\d{1,15})((?:-\d{1,10}){0,15})$/i;

/**
 * Encodes a SID string ("S-1-5-32-544", authority in decimal or 0x-hex) into its binary form.
 * Throws InvalidSidError for anything else: wrong revision, more than 15 sub-authorities,
 * values out of range, stray characters.
 */
export function encodeSid(sid: string): Buffer {
  const match = SID_PATTERN.exec(sid);
  if (!match) throw new InvalidSidError(`not a SID string: ${JSON.stringify(sid.slice(0, 80))}`);
  const authorityText = match[1] ?? "";
  const authority = BigInt(authorityText);
  if (authority > MAX_AUTHORITY) throw new InvalidSidError(`SID authority ${authorityText} exceeds 48 bits`);
  const subs = (match[2] ?? "").split("-").slice(1).map(Number);
  for (const sub of subs) {
    if (sub > MAX_SUB_AUTHORITY) throw new InvalidSidError(`SID sub-authority ${sub} exceeds 32 bits`);
  }
  const buf = Buffer.alloc(sidLength(subs.length));
  buf.writeUInt8(1, 0);
  buf.writeUInt8(subs.length, 1);
  let rest = authority;
  for (let i = 5; i >= 0; i--) {
    buf.writeUInt8(Number(rest & 0xffn), 2 + i);
    rest >>= 8n;
  }
  subs.forEach((sub, i) => buf.writeUInt32LE(sub, HEADER_LENGTH + 4 * i));
  return buf;
}
