// The KDS root key object (msKds-ProvRootKey) as Add-KdsRootKey and Samba's gkdi.c write it,
// and the FILETIME arithmetic its attributes need. Pure: randomness and the clock come in.

/** 100 ns ticks between 1601-01-01 and 1970-01-01 (FILETIME epoch to Unix epoch). */
const EPOCH_DIFFERENCE_TICKS = 116_444_736_000_000_000n;
const TICKS_PER_MS = 10_000n;
/** AD writes 0x7FFFFFFFFFFFFFFF for "never" (accountExpires and friends). */
const AD_NEVER = 0x7fff_ffff_ffff_ffffn;

/** Converts a Date to a FILETIME (100 ns ticks since 1601-01-01 UTC). */
export function dateToFiletime(date: Date): bigint {
  return BigInt(date.getTime()) * TICKS_PER_MS + EPOCH_DIFFERENCE_TICKS;
}

/**
 * Converts a FILETIME (bigint or the decimal string AD sends for Integer8 attributes) to a Date,
 * truncated to the millisecond. Returns undefined for 0 ("never set"), for AD's "never"
 * (0x7FFFFFFFFFFFFFFF) and for text that is not a decimal integer.
 */
export function filetimeToDate(value: bigint | string): Date | undefined {
  let ticks: bigint;
  if (typeof value === "string") {
    if (!/^-?\d+$/.test(value.trim())) return undefined;
    ticks = BigInt(value.trim());
  } else {
    ticks = value;
  }
  if (ticks <= 0n || ticks >= AD_NEVER) return undefined;
  const ms = Number((ticks - EPOCH_DIFFERENCE_TICKS) / TICKS_PER_MS);
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Samba accepts a root key only once UseStartTime <= now - (10 h + 5 min): the GKDI key cycle
 * (gkdi_key_cycle_duration, 360000000000 ticks) plus the maximum clock skew (3000000000 ticks),
 * see gmsa_generate_blobs in source4/dsdb/gmsa/util.c. Samba's own provision backdates by this.
 */
export const KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS = (10 * 60 + 5) * 60 * 1000;

/**
 * Add-KdsRootKey without -EffectiveTime or -EffectiveImmediately makes the key effective ten
 * days after now (cmdlet help; Samba's gkdi tests check "exactly ten days in the future").
 */
export const KDS_DEFAULT_DELAY_MS = 10 * 24 * 60 * 60 * 1000;

/** Whether the forest's KDS root keys allow creating a gMSA now, and if not, from when. */
export interface KdsState {
  readonly effective: boolean;
  readonly effectiveAt: Date | undefined;
}

/**
 * When the given root keys allow gMSA creation: the earliest key's UseStartTime plus the
 * 10 h 05 min a DC waits (KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS). No key: never.
 */
export function kdsState(keys: ReadonlyArray<{ readonly useStartTime: Date }>, now: Date): KdsState {
  let earliest: number | undefined;
  for (const key of keys) {
    const at = key.useStartTime.getTime() + KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS;
    if (earliest === undefined || at < earliest) earliest = at;
  }
  if (earliest === undefined) return { effective: false, effectiveAt: undefined };
  return { effective: earliest <= now.getTime(), effectiveAt: new Date(earliest) };
}

/** The container of root keys, relative to the configuration naming context. */
export function kdsRootKeyContainerDn(configDn: string): string {
  return `CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,${configDn}`;
}

/**
 * msKds-KDFParam as Windows and Samba write it: NDR KdfParameters selecting SHA512
 * (00000000 01000000 0e000000 00000000, then UTF-16LE "SHA512\0").
 */
export const KDS_KDF_PARAM = Buffer.concat([
  Buffer.from("00000000010000000e00000000000000", "hex"),
  Buffer.from("SHA512\0", "utf16le"),
]);

// RFC 5114 section 2.3: 2048-bit MODP group with a 256-bit prime order subgroup.
const RFC5114_2048_256_P =
  "87A8E61DB4B6663CFFBBD19C651959998CEEF608660DD0F25D2CEED4435E3B00E00DF8F1D61957D4FAF7DF4561B2AA30" +
  "16C3D91134096FAA3BF4296D830E9A7C209E0C6497517ABD5A8A9D306BCF67ED91F9E6725B4758C022E0B1EF4275BF7B" +
  "6C5BFC11D45F9088B941F54EB1E59BB8BC39A0BF12307F5C4FDB70C581B23F76B63ACAE1CAA6B7902D52526735488A0E" +
  "F13C6D9A51BFA4AB3AD8347796524D8EF6A167B5A41825D967E144E5140564251CCACB83E6B486F6B3CA3F7971506026" +
  "C0B857F689962856DED4010ABD0BE621C3A3960A54E710C375F26375D7014103A4B54330C198AF126116D2276E11715F" +
  "693877FAD7EF09CADB094AE91E1A1597";
const RFC5114_2048_256_G =
  "3FB32C9B73134D0B2E77506660EDBD484CA7B18F21EF205407F4793A1A0BA12510DBC15077BE463FFF4FED4AAC0BB555" +
  "BE3A6C1B0C6B47B1BC3773BF7E8C6F62901228F8C28CBB18A55AE31341000A650196F931C77A57F2DDF463E5E9EC144B" +
  "777DE62AAAB8A8628AC376D282D6ED3864E67982428EBC831D14348F6F2F9193B5045AF2767164E1DFC967C1FB3F2E55" +
  "A4BD1BFFE83B9C80D052B985D182EA0ADB2A3B7313D3FE14C8484B1E052588B9B7D2BBD2DF016199ECD06E1557CD0915" +
  "B3353BBB64E0EC377FD028370DF92B52C7891428CDC67EB6184B523D1DB246C32F63078490F00EF8D647D148D4795451" +
  "5E2327CFEF98C582664B4C0F6CC41659";

/**
 * msKds-SecretAgreementParam as Windows writes it: FfcDhParameters = uint32 length (12 + 2*256),
 * magic "DHPM", uint32 key length 256, then p and g of the RFC 5114 2048-bit group, big-endian.
 */
export const KDS_SECRET_AGREEMENT_PARAM = Buffer.concat([
  Buffer.from("0c0200004448504d00010000", "hex"),
  Buffer.from(RFC5114_2048_256_P, "hex"),
  Buffer.from(RFC5114_2048_256_G, "hex"),
]);

/** Inputs for a new root key. */
export interface KdsRootKeyInput {
  /** The key's GUID, also its CN. */
  id: string;
  /** 64 random bytes (GKDI_KEY_LEN). */
  rootKeyData: Uint8Array;
  /** msKds-CreateTime. */
  createTime: Date;
  /** msKds-UseStartTime: when DCs may start deriving passwords from the key. */
  useStartTime: Date;
  /** DN of the DC computer object that "created" the key (rootDSE serverName's serverReference). */
  domainId: string;
}

const GUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The attributes of a msKds-ProvRootKey object: every mustContain plus both optional parameter
 * blobs, with the values Windows writes (SP800_108_CTR_HMAC/SHA512, DH with the RFC 5114 group,
 * public key length 2048, private key length 512). Integer8 times are FILETIME decimal strings.
 */
export function kdsRootKeyAttributes(input: KdsRootKeyInput): Record<string, string | Buffer> {
  if (!GUID_PATTERN.test(input.id)) throw new Error(`KDS root key id is not a GUID: ${JSON.stringify(input.id)}`);
  if (input.rootKeyData.length !== 64)
    throw new Error(`KDS root key data must be 64 bytes, got ${input.rootKeyData.length}`);
  return {
    objectClass: "msKds-ProvRootKey",
    cn: input.id,
    "msKds-Version": "1",
    "msKds-KDFAlgorithmID": "SP800_108_CTR_HMAC",
    "msKds-KDFParam": KDS_KDF_PARAM,
    "msKds-SecretAgreementAlgorithmID": "DH",
    "msKds-SecretAgreementParam": KDS_SECRET_AGREEMENT_PARAM,
    "msKds-PublicKeyLength": "2048",
    "msKds-PrivateKeyLength": "512",
    "msKds-RootKeyData": Buffer.from(input.rootKeyData),
    "msKds-CreateTime": dateToFiletime(input.createTime).toString(),
    "msKds-UseStartTime": dateToFiletime(input.useStartTime).toString(),
    "msKds-DomainID": input.domainId,
  };
}

/**
 * UseStartTime for a new key. `effectiveImmediately` (lab use) backdates by 10 h 5 min so that
 * Samba, and Windows DCs that wait one 10-hour key cycle, use it at once. Otherwise the key
 * takes effect at `effectiveTime`, or, as plain Add-KdsRootKey does, ten days from now.
 */
export function kdsUseStartTime(options: { effectiveImmediately: boolean; now: Date; effectiveTime?: Date }): Date {
  if (options.effectiveImmediately) return new Date(options.now.getTime() - KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS);
  if (options.effectiveTime) return new Date(options.effectiveTime.getTime());
  return new Date(options.now.getTime() + KDS_DEFAULT_DELAY_MS);
}
