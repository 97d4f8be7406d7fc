// msDS-SupportedEncryptionTypes ([MS-KILE] 2.2.7) <-> the names manifests use
// (kerberosEncryptionTypes, as in New-ADServiceAccount -KerberosEncryptionType).

/** The encryption type names a manifest may list. */
export type EncryptionTypeName = "DES" | "RC4" | "AES128" | "AES256";

/**
 * Bits per name. DES covers DES_CBC_CRC (0x1) and DES_CBC_MD5 (0x2) together, as the AD module's
 * ADKerberosEncryptionType.DES does.
 */
export const ENCRYPTION_TYPE_BITS: Readonly<Record<EncryptionTypeName, number>> = {
  DES: 0x1 | 0x2,
  RC4: 0x4,
  AES128: 0x8,
  AES256: 0x10,
};

/** The bits the manifest's names cover (DES, RC4, AES128, AES256); others (FAST...) are AD's to keep. */
export const MANAGED_ENCRYPTION_BITS = 0x1f;

/** `observed` with the managed bits replaced by `managed`; every other bit is kept as it is. */
export function withManagedEncryptionTypes(observed: number, managed: number): number {
  return (observed & ~MANAGED_ENCRYPTION_BITS) | managed;
}

/** Names in a fixed order (weakest first), used for stable output. */
export const ENCRYPTION_TYPE_NAMES: readonly EncryptionTypeName[] = ["DES", "RC4", "AES128", "AES256"];

/** Other bits AD uses in the same attribute; named only so reports can say what they are. */
export const OTHER_ENCRYPTION_TYPE_FLAGS: Readonly<Record<number, string>> = {
  0x1: "DES_CBC_CRC",
  0x2: "DES_CBC_MD5",
  0x20: "AES256_CTS_HMAC_SHA1_96_SK",
  0x10000: "FAST_SUPPORTED",
  0x20000: "COMPOUND_IDENTITY_SUPPORTED",
  0x40000: "CLAIMS_SUPPORTED",
  0x80000: "RESOURCE_SID_COMPRESSION_DISABLED",
};

/** Result of decoding msDS-SupportedEncryptionTypes. */
export interface DecodedEncryptionTypes {
  /** Names whose bits are all set, in ENCRYPTION_TYPE_NAMES order. */
  names: EncryptionTypeName[];
  /**
   * Every set bit not covered by `names` (e.g. FAST 0x10000, or a lone DES bit), so a diff can
   * choose to ignore or report them. 0 when there are none.
   */
  otherBits: number;
}

/** The attribute value for a list of names (repeats allowed, order irrelevant). */
export function encodeEncryptionTypes(names: readonly EncryptionTypeName[]): number {
  let value = 0;
  for (const name of names) value |= ENCRYPTION_TYPE_BITS[name];
  return value;
}

/** Splits an attribute value into names and the remaining bits; nothing set is lost. */
export function decodeEncryptionTypes(value: number): DecodedEncryptionTypes {
  let rest = value >>> 0;
  const names: EncryptionTypeName[] = [];
  for (const name of ENCRYPTION_TYPE_NAMES) {
    const bits = ENCRYPTION_TYPE_BITS[name];
    if ((rest & bits) === bits) {
      names.push(name);
      rest &= ~bits;
    }
  }
  return { names, otherBits: rest >>> 0 };
}

/** Human-readable names of bits outside the manifest's names, e.g. ["FAST_SUPPORTED", "0x100"]. */
export function describeOtherBits(bits: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < 32; i++) {
    const bit = 2 ** i;
    if (((bits >>> i) & 1) === 1) out.push(OTHER_ENCRYPTION_TYPE_FLAGS[bit] ?? `0x${bit.toString(16)}`);
  }
  return out;
}

/**
 * Every set bit as a label, manifest names first then other flags, e.g. 0x10018 →
 * ["AES128", "AES256", "FAST_SUPPORTED"]. For plans and drift messages.
 */
export function describeEncryptionTypes(value: number): string[] {
  const { names, otherBits } = decodeEncryptionTypes(value);
  return [...names, ...describeOtherBits(otherBits)];
}
