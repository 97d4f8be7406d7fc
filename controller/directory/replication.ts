/**
 * Who last changed an attribute: an object's replication metadata, decoded. Windows DCs serve
 * it as the constructed attributes `msDS-ReplAttributeMetaData` / `msDS-ReplValueMetaData`
 * (XML fragments); Samba (4.22) serves neither, but returns the stored `replPropertyMetaData`
 * blob, which holds the same facts per attribute (docs/active-directory.md, "Replication
 * metadata"). Pure decoding; the client reads.
 */

/** When, where and how often one attribute was last changed at its origin. */
export interface AttributeHistory {
  /** lDAPDisplayName, as the plan names the attribute. */
  readonly attribute: string;
  /** Originating change time (one-second resolution). */
  readonly time: Date;
  /** The attribute's version: 1 when written at creation, +1 at every originating change. */
  readonly version: number | undefined;
  /** invocationId of the DC where the change originated (lower-case GUID). */
  readonly invocationId: string | undefined;
  /** The originating DC's NTDS Settings DN, when the DC names it (Windows does, Samba does not). */
  readonly dsaDn: string | undefined;
  /** The originating DC's DNS host name, once the client has matched invocationId or dsaDn to a DC. */
  readonly dc?: string | undefined;
  /**
   * True when the DC keeps no per-attribute record for it (a linked value such as `member` on
   * Samba): `time` is then the object's whenChanged, and version and DC are unknown.
   */
  readonly objectLevel: boolean;
}

/**
 * ATTRTYP of the attributes the plan reports, from the fixed prefixes of every forest's
 * prefix table (MS-DRSR 5.16.4: index 0 = 2.5.4, 2 = 1.2.840.113556.1.2, 9 = 1.2.840.113556.1.4;
 * the low word is the OID's last arc). A move changes `name`, which the plan shows as the DN.
 */
export const ATTRIBUTE_IDS: Readonly<Record<string, number>> = {
  description: 0x0000000d, // 2.5.4.13
  member: 0x0000001f, // 2.5.4.31 (linked: only legacy, non-LVR values are in the blob)
  displayName: 0x0002000d, // 1.2.840.113556.1.2.13
  adminDescription: 0x000200e2, // 1.2.840.113556.1.2.226
  distinguishedName: 0x00090001, // name, 1.2.840.113556.1.4.1
  sAMAccountName: 0x000900dd, // 1.2.840.113556.1.4.221
  dNSHostName: 0x0009026b, // 1.2.840.113556.1.4.619
  groupType: 0x000902ee, // 1.2.840.113556.1.4.750
  servicePrincipalName: 0x00090303, // 1.2.840.113556.1.4.771
  "msDS-SupportedEncryptionTypes": 0x000907ab, // 1.2.840.113556.1.4.1963
  "msDS-ManagedPasswordInterval": 0x00090894, // 1.2.840.113556.1.4.2196
  "msDS-GroupMSAMembership": 0x00090898, // 1.2.840.113556.1.4.2200
};

const NAME_OF = new Map(Object.entries(ATTRIBUTE_IDS).map(([name, id]) => [id, name]));

/** Seconds between 1601-01-01 (NTTIME's epoch) and 1970-01-01. */
const NT_EPOCH_SECONDS = 11_644_473_600n;

/** A GUID's 16 bytes (mixed-endian, as AD stores them) as the usual lower-case text. */
export function guidText(b: Buffer): string {
  const hex = (x: Buffer): string => x.toString("hex");
  const le = (x: Buffer): string => hex(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`;
}

/**
 * Decodes a `replPropertyMetaData` blob (replPropertyMetaDataBlob, version 1: a count, then 48
 * bytes per attribute: attid, version, originating change time in NTTIME seconds, originating
 * invocationId, originating and local USN). Only attributes in {@link ATTRIBUTE_IDS} are
 * returned; a blob of another version or a truncated one gives none.
 */
export function parseReplPropertyMetaData(blob: Buffer): AttributeHistory[] {
  if (blob.length < 16 || blob.readUInt32LE(0) !== 1) return [];
  const count = blob.readUInt32LE(8);
  const out: AttributeHistory[] = [];
  for (let i = 0, o = 16; i < count && o + 48 <= blob.length; i++, o += 48) {
    const attribute = NAME_OF.get(blob.readUInt32LE(o));
    if (attribute === undefined) continue;
    const seconds = blob.readBigUInt64LE(o + 8) - NT_EPOCH_SECONDS;
    out.push({
      attribute,
      version: blob.readUInt32LE(o + 4),
      time: new Date(Number(seconds) * 1000),
      invocationId: guidText(blob.subarray(o + 16, o + 32)),
      dsaDn: undefined,
      objectLevel: false,
    });
  }
  return out;
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return m?.[1]?.trim();
}

const unescapeXml = (s: string): string =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");

/**
 * Decodes Windows' `msDS-ReplAttributeMetaData` values (one `<DS_REPL_ATTR_META_DATA>` fragment
 * per attribute) and, for linked values, `msDS-ReplValueMetaData` (`<DS_REPL_VALUE_META_DATA>`,
 * one per value; the newest change per attribute wins). Unknown attributes are skipped.
 */
export function parseReplMetaDataXml(values: readonly string[]): AttributeHistory[] {
  const latest = new Map<string, AttributeHistory>();
  for (const xml of values) {
    const attribute = tag(xml, "pszAttributeName");
    const when = tag(xml, "ftimeLastOriginatingChange");
    if (attribute === undefined || when === undefined || !(attribute in ATTRIBUTE_IDS)) continue;
    const time = new Date(when);
    if (Number.isNaN(time.getTime())) continue;
    const version = Number(tag(xml, "dwVersion"));
    const dsa = tag(xml, "pszLastOriginatingDsaDN");
    const entry: AttributeHistory = {
      attribute,
      time,
      version: Number.isInteger(version) ? version : undefined,
      invocationId: tag(xml, "uuidLastOriginatingDsaInvocationID")?.toLowerCase(),
      dsaDn: dsa ? unescapeXml(dsa) : undefined,
      objectLevel: false,
    };
    const before = latest.get(attribute);
    if (!before || before.time < time) latest.set(attribute, entry);
  }
  return [...latest.values()];
}
