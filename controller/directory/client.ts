// The LDAP client: one bound connection to one DC, verified TLS, paged reads and idempotent
// writes. Every failure leaves here as a DirectoryError (errors.ts).
import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import type { Entry, Filter } from "ldapts";
import { Attribute, Change, Client, Control, EqualityFilter, OrFilter } from "ldapts";
import { DirectoryError, hasResultCode, toDirectoryError } from "./errors.ts";
import type { DirectoryOperation } from "./errors.ts";
import { childDn, escapeFilterValue } from "./escape.ts";
import { kdsRootKeyAttributes, kdsRootKeyContainerDn, kdsUseStartTime } from "./kds.ts";
import type {
  ObservedComputer,
  ObservedGmsa,
  ObservedGroup,
  ObservedKdsRootKey,
  ResolvedPrincipal,
} from "./observed.ts";
import {
  BINARY_ATTRIBUTES,
  COMPUTER_ATTRIBUTES,
  computerFromEntry,
  GMSA_ATTRIBUTES,
  gmsaFromEntry,
  GROUP_ATTRIBUTES,
  groupFromEntry,
  KDS_ROOT_KEY_ATTRIBUTES,
  kdsRootKeyFromEntry,
  MEMBER_RANGE_SIZE,
  memberRange,
  MissingAttributeError,
  parseGeneralizedTime,
  PRINCIPAL_ATTRIBUTES,
  principalFromEntry,
  values,
} from "./observed.ts";
import { guidToString, MARKER_PREFIX } from "./ownership.ts";
import type { AttributeHistory } from "./replication.ts";
import { guidText, parseReplMetaDataXml, parseReplPropertyMetaData } from "./replication.ts";
import { encodeSid, parseSid } from "./sid.ts";

/** The LDAP operations reported to `onOperation` (StartTLS and modify-DN count as bind and modify). */
export type LdapOperationKind = "search" | "add" | "modify" | "delete" | "bind";

/** How to reach and authenticate to one DC. */
export interface DirectoryOptions {
  /** "ldaps://host:636" (default) or "ldap://host:389" with startTls. */
  url: string;
  /** PEM file of the CA(s) to trust instead of the system CAs. */
  caFile?: string;
  /** For ldap:// URLs: upgrade with StartTLS before binding, verifying like LDAPS. */
  startTls?: boolean;
  /** Lab only: allow a simple bind over plaintext ldap://. */
  allowInsecurePlaintext?: boolean;
  bindDn: string;
  bindPassword: string;
  /** Per-operation and connect timeout; default 30 s. */
  timeoutMs?: number;
  /** Page size for searches; at most 1000 (AD's default MaxPageSize), the default. */
  pageSize?: number;
  /** Called after every LDAP operation with its duration, e.g. for a latency histogram. */
  onOperation?: (op: LdapOperationKind, seconds: number, ok: boolean) => void;
}

/** The rootDSE fields the controller uses. */
export interface RootDse {
  defaultNamingContext: string;
  configurationNamingContext: string;
  /** DN of the DC's NTDS Settings object; changes when another DC answers. */
  dsServiceName: string;
  /** DN of the DC's server object in the configuration NC. */
  serverName: string;
  highestCommittedUSN: string;
  dnsHostName: string;
}

/** Where the domain's PDC emulator is, as read through any DC. */
export interface PdcEmulator {
  /** DN of its NTDS Settings object (the domain's fSMORoleOwner). */
  readonly ntdsSettingsDn: string;
  readonly dnsHostName: string;
  /** True when the connection that asked is to the PDC emulator itself. */
  readonly connected: boolean;
}

/** A tombstone found by {@link LdapDirectory.changedSince}: the object's SID and, when known, the DN it had. */
export interface DeletedObject {
  readonly sid: string;
  readonly dn: string | undefined;
}

/** What {@link LdapDirectory.changedSince} found changed after a USN, by kind; `entries` as the DC returned them. */
export interface Changes {
  readonly gmsas: ObservedGmsa[];
  readonly groups: ObservedGroup[];
  readonly computers: ObservedComputer[];
  readonly deleted: DeletedObject[];
  readonly entries: number;
}

/** The union of what the reads of each kind ask for, plus what tells tombstones and kinds apart. */
const CHANGED_ATTRIBUTES = [
  ...new Set([
    ...GMSA_ATTRIBUTES,
    ...GROUP_ATTRIBUTES,
    ...COMPUTER_ATTRIBUTES,
    "objectClass",
    "isDeleted",
    "name",
    "lastKnownParent",
  ]),
];

/** A DC's identity and its highest committed USN: where an incremental read may continue from. */
export interface Watermark {
  readonly dsServiceName: string;
  readonly invocationId: string;
  readonly usn: string;
}

/** One LDAP modification, independent of ldapts. */
export interface Modification {
  readonly operation: "add" | "delete" | "replace";
  readonly attribute: string;
  readonly values: ReadonlyArray<string | Buffer>;
}

/** Attribute values for add: one value or several, text or bytes. */
export type AttributeValues = string | Buffer | ReadonlyArray<string | Buffer>;

/** Which members a membership change touched and which were already as wanted. */
export interface MemberChangeResult {
  changed: string[];
  unchanged: string[];
}

/** Options for a new KDS root key. */
export interface CreateKdsRootKeyOptions {
  /** Lab use: backdate UseStartTime by 10 h 5 min so DCs use the key at once. */
  effectiveImmediately: boolean;
  now: Date;
  /** When not effectiveImmediately: when the key takes effect (default now + 10 days, as Add-KdsRootKey). */
  effectiveTime?: Date;
}

/** What the reconcile layer's apply step needs; LdapDirectory provides it through directoryWriter. */
export interface DirectoryWriter {
  add(dn: string, attributes: Readonly<Record<string, AttributeValues>>): Promise<void>;
  modify(dn: string, changes: readonly Modification[]): Promise<void>;
  move(dn: string, newDn: string): Promise<void>;
  delete(dn: string): Promise<void>;
  addMembers(groupDn: string, memberDns: readonly string[]): Promise<void>;
  removeMembers(groupDn: string, memberDns: readonly string[]): Promise<void>;
  readSid(dn: string): Promise<string>;
  /** objectGUID of one object, canonical text: what the ownership marker's MAC covers. */
  readGuid(dn: string): Promise<string>;
  createKdsRootKey(options: CreateKdsRootKeyOptions): Promise<string>;
}

/** Show Deleted: searches also return tombstones. */
const SHOW_DELETED_OID = "1.2.840.113556.1.4.417";

/** A filter clause for objects changed after `usn` (none when undefined). */
function changedAfter(usn: string | undefined): string {
  return usn === undefined ? "" : `(uSNChanged>=${(BigInt(usn) + 1n).toString()})`;
}

/** Permissive Modify: on Windows, turns "value exists"/"value missing" into success. */
const PERMISSIVE_MODIFY_OID = "1.2.840.113556.1.4.1413";
const MAX_PAGE_SIZE = 1000;
// AD's default MaxPageSize: the fewest round trips a default domain allows.
const DEFAULT_PAGE_SIZE = 1000;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Values per OR filter; keeps each request well under AD's MaxQueryDuration and size limits. */
const FILTER_CHUNK = 200;

/**
 * A bound connection to one DC. All methods map failures to DirectoryError; none of them ever
 * puts the bind password into an error. Not safe for use after close().
 */
export class LdapDirectory {
  readonly #client: Client;
  readonly #options: DirectoryOptions;
  readonly #pageSize: number;
  /** The invocation id of the DC this connection reached, read once (watermark). */
  #invocation: { readonly dsServiceName: string; readonly id: string } | undefined;

  /** Use connectDirectory(); this takes an already bound client. */
  constructor(client: Client, options: DirectoryOptions) {
    this.#client = client;
    this.#options = options;
    this.#pageSize = Math.min(options.pageSize ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
  }

  /** The URL this directory is connected to. */
  get url(): string {
    return this.#options.url;
  }

  /**
   * True while the connection is open and bound. False once the DC or the network closed it:
   * such a directory answers every operation with a transient ConnectionFailed error.
   */
  get bound(): boolean {
    return this.#client.isBound;
  }

  async #run<T>(
    kind: LdapOperationKind,
    operation: DirectoryOperation,
    dn: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    const started = performance.now();
    let ok = false;
    try {
      // ldapts reconnects a closed socket on the next operation, without binding: that would
      // read anonymously, or write as nobody. A closed connection fails instead.
      if (!this.#client.isBound) {
        throw new DirectoryError(`${operation} failed: the connection to ${this.#options.url} was closed`, {
          outcome: "transient",
          reason: "ConnectionFailed",
          operation,
          ...(dn === undefined ? {} : { dn }),
        });
      }
      const result = await fn();
      ok = true;
      return result;
    } catch (err) {
      const ctx = {
        operation,
        url: this.#options.url,
        bindDn: this.#options.bindDn,
        secrets: [this.#options.bindPassword],
      };
      throw toDirectoryError(err, dn === undefined ? ctx : { ...ctx, dn });
    } finally {
      this.#options.onOperation?.(kind, (performance.now() - started) / 1000, ok);
    }
  }

  /** One search, all pages, binary attributes as buffers. */
  async #search(
    base: string,
    options: { scope: "base" | "one" | "sub"; filter?: string | Filter; attributes: string[]; paged?: boolean },
  ): Promise<Entry[]> {
    return this.#run("search", "search", base, async () => {
      const result = await this.#client.search(base, {
        scope: options.scope,
        filter: options.filter ?? "(objectClass=*)",
        attributes: options.attributes,
        explicitBufferAttributes: BINARY_ATTRIBUTES,
        ...(options.paged === false ? {} : { paged: { pageSize: this.#pageSize } }),
      });
      return result.searchEntries;
    });
  }

  /** Reads the rootDSE: this DC's identity, naming contexts and current highestCommittedUSN. */
  async rootDse(): Promise<RootDse> {
    const [entry] = await this.#search("", {
      scope: "base",
      paged: false,
      attributes: [
        "defaultNamingContext",
        "configurationNamingContext",
        "dsServiceName",
        "serverName",
        "highestCommittedUSN",
        "dnsHostName",
      ],
    });
    const get = (name: string): string => {
      const v = entry ? values(entry, name)[0] : undefined;
      return v === undefined ? "" : v.toString();
    };
    return {
      defaultNamingContext: get("defaultNamingContext"),
      configurationNamingContext: get("configurationNamingContext"),
      dsServiceName: get("dsServiceName"),
      serverName: get("serverName"),
      highestCommittedUSN: get("highestCommittedUSN"),
      dnsHostName: get("dnsHostName"),
    };
  }

  /**
   * The PDC emulator of the domain `baseDn`: the domain object's `fSMORoleOwner` (the NTDS
   * Settings DN of the DC holding the role, readable through any DC) and that DC's server object's
   * `dNSHostName`. `connected` is true when this connection already talks to it (its rootDSE
   * `dsServiceName` is the role owner). Throws a stalled NoSuchObject error when the role owner
   * cannot be read.
   */
  async pdcEmulator(baseDn: string): Promise<PdcEmulator> {
    const [domain] = await this.#search(baseDn, { scope: "base", paged: false, attributes: ["fSMORoleOwner"] });
    const owner = domain ? values(domain, "fSMORoleOwner")[0]?.toString() : undefined;
    const missing = (what: string, dn: string): DirectoryError =>
      new DirectoryError(`search ${dn} failed: ${what} (the bind account may lack read access)`, {
        outcome: "stalled",
        reason: "NoSuchObject",
        operation: "search",
        dn,
      });
    if (!owner) throw missing("the domain object has no fSMORoleOwner", baseDn);
    // "CN=NTDS Settings,CN=<server>,CN=Servers,...": the server object is its parent.
    const serverDn = owner.replace(/^(?:[^,\\]|\\.)*,/, "");
    const [server] = await this.#search(serverDn, { scope: "base", paged: false, attributes: ["dNSHostName"] });
    const dnsHostName = server ? values(server, "dNSHostName")[0]?.toString() : undefined;
    if (!dnsHostName) throw missing("the PDC emulator's server object has no dNSHostName", serverDn);
    const dse = await this.rootDse();
    return {
      ntdsSettingsDn: owner,
      dnsHostName,
      connected: dse.dsServiceName.toLowerCase() === owner.toLowerCase(),
    };
  }

  /** Values of one attribute of one object, as text; undefined when the object does not exist. */
  async readText(dn: string, attribute: string): Promise<string[] | undefined> {
    try {
      const [entry] = await this.#search(dn, { scope: "base", paged: false, attributes: [attribute] });
      return entry ? values(entry, attribute).map((v) => v.toString()) : undefined;
    } catch (err) {
      if (hasResultCode(err, 32)) return undefined;
      throw err;
    }
  }

  /**
   * Compare-and-swap of an attribute's values: one modify that deletes exactly `oldValues` and adds
   * `newValue`, which the DC applies atomically. Returns false when one of `oldValues` is no longer
   * there (noSuchAttribute, 16: another writer changed it first) or, with no old values, when
   * `newValue` is there already (attributeOrValueExists, 20); other failures throw.
   */
  async swapValues(dn: string, attribute: string, oldValues: readonly string[], newValue: string): Promise<boolean> {
    try {
      await this.modify(dn, [
        ...(oldValues.length > 0 ? [{ operation: "delete" as const, attribute, values: [...oldValues] }] : []),
        { operation: "add", attribute, values: [newValue] },
      ]);
      return true;
    } catch (err) {
      if (hasResultCode(err, 16) || (oldValues.length === 0 && hasResultCode(err, 20))) return false;
      throw err;
    }
  }

  /**
   * Which DC answers and how far its changes go: its NTDS Settings DN, its invocation id (a new
   * one after a restore from backup) and its highestCommittedUSN, all as text; from `read`, a
   * rootDSE this connection answered earlier, when given.
   *
   * The invocation id is read once per connection (and DC): a restore, the one change of it that
   * takes USNs back, is made with the DC offline, and a reverted virtual DC's TCP state matches no
   * connection made since, so no connection outlives either. A kept connection's quiet cycle is
   * then one search, the rootDSE.
   */
  async watermark(read?: RootDse): Promise<Watermark> {
    // A rootDSE read earlier on this connection serves: an older USN only makes the next read
    // ask for more, never less.
    const dse = read ?? (await this.rootDse());
    let invocation = this.#invocation;
    if (invocation?.dsServiceName.toLowerCase() !== dse.dsServiceName.toLowerCase()) {
      const [ntds] = await this.#search(dse.dsServiceName, {
        scope: "base",
        paged: false,
        attributes: ["invocationId"],
      });
      const id = ntds ? values(ntds, "invocationId")[0] : undefined;
      invocation = {
        dsServiceName: dse.dsServiceName,
        id: Buffer.isBuffer(id) ? id.toString("hex") : (id?.toString() ?? ""),
      };
      this.#invocation = invocation;
    }
    return { dsServiceName: dse.dsServiceName, invocationId: invocation.id, usn: dse.highestCommittedUSN };
  }

  /**
   * Everything under baseDn changed after `sinceUsn` that an incremental read needs, in one paged
   * subtree search rather than four: gMSAs and sMSAs, groups, computer accounts, and tombstones of
   * any class. The show-deleted control (1.2.840.113556.1.4.417) adds the tombstones, which keep
   * objectSid, and deletion raises their uSNChanged; each entry is dispatched by isDeleted, then
   * objectClass (gMSAs and sMSAs are subclasses of computer). The DN a deleted object had is
   * rebuilt from the tombstone's name ("CN\nDEL:guid") and lastKnownParent, because deleting a
   * member does not raise its groups' uSNChanged (verified on Samba 4.22).
   */
  async changedSince(baseDn: string, sinceUsn: string): Promise<Changes> {
    const entries = await this.#run("search", "search", baseDn, async () => {
      const result = await this.#client.search(
        baseDn,
        {
          scope: "sub",
          filter:
            `(&${changedAfter(sinceUsn)}(|(isDeleted=TRUE)(objectClass=group)(objectClass=computer)` +
            "(objectClass=msDS-ManagedServiceAccount)))",
          attributes: CHANGED_ATTRIBUTES,
          explicitBufferAttributes: BINARY_ATTRIBUTES,
          paged: { pageSize: this.#pageSize },
        },
        [new Control(SHOW_DELETED_OID)],
      );
      return result.searchEntries;
    });
    const gmsas: Entry[] = [];
    const groups: Entry[] = [];
    const computers: Entry[] = [];
    const deleted: DeletedObject[] = [];
    for (const e of entries) {
      if (values(e, "isDeleted")[0]?.toString().toUpperCase() === "TRUE") {
        const sid = values(e, "objectSid")[0];
        if (!Buffer.isBuffer(sid)) continue;
        const name = values(e, "name")[0]?.toString().split("\nDEL:")[0];
        const parent = values(e, "lastKnownParent")[0]?.toString();
        deleted.push({ sid: parseSid(sid), dn: name && parent ? childDn("CN", name, parent) : undefined });
        continue;
      }
      const classes = values(e, "objectClass").map((c) => c.toString().toLowerCase());
      if (classes.includes("msds-groupmanagedserviceaccount") || classes.includes("msds-managedserviceaccount"))
        gmsas.push(e);
      else if (classes.includes("group")) groups.push(e);
      else if (classes.includes("computer")) computers.push(e);
    }
    return {
      gmsas: this.#convert(gmsas, gmsaFromEntry),
      groups: await this.#groups(groups),
      computers: this.#convert(computers, computerFromEntry),
      deleted,
      entries: entries.length,
    };
  }

  /** objectSid of one object, e.g. one just created. Throws a stalled NoSuchObject error if absent. */
  async readSid(dn: string): Promise<string> {
    return parseSid(await this.#readBinary(dn, "objectSid"));
  }

  /** objectGUID of one object (canonical text). Throws a stalled NoSuchObject error if absent. */
  async readGuid(dn: string): Promise<string> {
    return guidToString(await this.#readBinary(dn, "objectGUID"));
  }

  /** One binary attribute of one object; a stalled NoSuchObject error when the object has none. */
  async #readBinary(dn: string, attribute: "objectSid" | "objectGUID"): Promise<Buffer> {
    const [entry] = await this.#search(dn, { scope: "base", paged: false, attributes: [attribute] });
    const value = entry ? values(entry, attribute)[0] : undefined;
    if (!Buffer.isBuffer(value)) {
      throw new DirectoryError(`search ${dn} failed: the object has no ${attribute}`, {
        outcome: "stalled",
        reason: "NoSuchObject",
        operation: "search",
        dn,
      });
    }
    return value;
  }

  #convert<T>(entries: Entry[], convert: (e: Entry) => T): T[] {
    try {
      return entries.map(convert);
    } catch (err) {
      if (err instanceof MissingAttributeError) {
        throw new DirectoryError(`search ${err.dn} failed: ${err.message} (the bind account may lack read access)`, {
          outcome: "stalled",
          reason: "InsufficientAccess",
          operation: "search",
          dn: err.dn,
        });
      }
      throw toDirectoryError(err, { operation: "search" });
    }
  }

  /**
   * Every gMSA and sMSA (standalone managed service account) under baseDn, one paged subtree
   * search; with `sinceUsn`, only those changed after it.
   */
  async readGmsas(baseDn: string, sinceUsn?: string): Promise<ObservedGmsa[]> {
    const entries = await this.#search(baseDn, {
      scope: "sub",
      filter:
        "(&(|(objectClass=msDS-GroupManagedServiceAccount)(objectClass=msDS-ManagedServiceAccount))" +
        `${changedAfter(sinceUsn)})`,
      attributes: GMSA_ATTRIBUTES,
    });
    return this.#convert(entries, gmsaFromEntry);
  }

  /**
   * The groups named (by sAMAccountName) plus every group carrying the ownership marker, under
   * baseDn: one paged search (several when the names are many), members of large groups merged
   * across ranges. Names not found are simply absent from the result.
   */
  async readGroups(baseDn: string, samAccountNames: readonly string[]): Promise<ObservedGroup[]> {
    const byDn = new Map<string, ObservedGroup>();
    const chunks = chunk([...new Set(samAccountNames)], FILTER_CHUNK);
    if (chunks.length === 0) chunks.push([]);
    for (const [index, names] of chunks.entries()) {
      const alternatives = names.map((n) => `(sAMAccountName=${escapeFilterValue(n)})`);
      // The marker clause rides on the first chunk only; one search when names are few. Any
      // gmsa-gitops marker matches: whether it proves anything is decided by diff (ownership.ts).
      if (index === 0) alternatives.push(`(adminDescription=${escapeFilterValue(MARKER_PREFIX)}*)`);
      const entries = await this.#search(baseDn, {
        scope: "sub",
        filter: `(&(objectClass=group)(|${alternatives.join("")}))`,
        attributes: GROUP_ATTRIBUTES,
      });
      for (const group of await this.#groups(entries)) byDn.set(group.dn.toLowerCase(), group);
    }
    return [...byDn.values()];
  }

  /** Groups from entries, members of large groups merged across ranges. */
  async #groups(entries: Entry[]): Promise<ObservedGroup[]> {
    const out: ObservedGroup[] = [];
    for (const entry of entries) {
      const group = this.#convert([entry], groupFromEntry)[0];
      if (!group) continue;
      const range = memberRange(entry);
      if (range?.next !== undefined)
        group.members = [...range.values, ...(await this.#restOfMembers(entry.dn, range.next))];
      out.push(group);
    }
    return out;
  }

  /** Reads "member;range=<from>-<from+1499>" until the server says the range ends with "*". */
  async #restOfMembers(dn: string, from: number): Promise<string[]> {
    const out: string[] = [];
    let next: number | undefined = from;
    while (next !== undefined) {
      const [entry] = await this.#search(dn, {
        scope: "base",
        paged: false,
        attributes: [`member;range=${next}-${next + MEMBER_RANGE_SIZE - 1}`],
      });
      const range = entry ? memberRange(entry) : undefined;
      if (!range) break;
      out.push(...range.values);
      // Stop on a server that does not advance, rather than loop.
      if (range.next !== undefined && range.next <= next) break;
      next = range.next;
    }
    return out;
  }

  /**
   * Computer accounts by name ("SERVER1" or "SERVER1$"), excluding gMSAs and sMSAs (which are
   * subclasses of computer). Names not found are absent from the result.
   */
  async readComputers(baseDn: string, names: readonly string[]): Promise<ObservedComputer[]> {
    const out: ObservedComputer[] = [];
    const wanted = [...new Set(names.map((n) => (n.endsWith("$") ? n : `${n}$`)))];
    for (const part of chunk(wanted, FILTER_CHUNK)) {
      const alternatives = part.map((n) => `(sAMAccountName=${escapeFilterValue(n)})`).join("");
      const entries = await this.#search(baseDn, {
        scope: "sub",
        filter:
          "(&(objectClass=computer)(!(objectClass=msDS-GroupManagedServiceAccount))" +
          `(!(objectClass=msDS-ManagedServiceAccount))(|${alternatives}))`,
        attributes: COMPUTER_ATTRIBUTES,
      });
      out.push(...this.#convert(entries, computerFromEntry));
    }
    return out;
  }

  /**
   * Finds the objects with the given SIDs under baseDn, one OR search on binary objectSid values
   * (sent as bytes, never through a filter string). SIDs not found are absent from the map.
   */
  async resolvePrincipals(baseDn: string, sids: readonly string[]): Promise<Map<string, ResolvedPrincipal>> {
    const out = new Map<string, ResolvedPrincipal>();
    let encoded: Buffer[];
    try {
      encoded = [...new Set(sids)].map(encodeSid);
    } catch (err) {
      throw toDirectoryError(err, { operation: "search", dn: baseDn });
    }
    for (const part of chunk(encoded, FILTER_CHUNK)) {
      const filter = new OrFilter({
        filters: part.map((value) => new EqualityFilter({ attribute: "objectSid", value })),
      });
      const entries = await this.#search(baseDn, { scope: "sub", filter, attributes: PRINCIPAL_ATTRIBUTES });
      for (const p of this.#convert(entries, principalFromEntry)) out.set(p.sid, p);
    }
    return out;
  }

  /**
   * Finds principals of any kind (users, groups, computers, gMSAs, foreign security principals)
   * named by sAMAccountName, userPrincipalName, SID or DN, in one OR search per chunk of names rather than one
   * search per name. Values go in as filter objects (SIDs as bytes), never through a filter
   * string. Names not found are absent from the result.
   */
  async readPrincipals(
    baseDn: string,
    names: {
      readonly samAccountNames: readonly string[];
      readonly userPrincipalNames?: readonly string[];
      readonly sids: readonly string[];
      readonly dns: readonly string[];
    },
  ): Promise<ResolvedPrincipal[]> {
    let filters: Filter[];
    try {
      filters = [
        ...[...new Set(names.samAccountNames)].map(
          (value) => new EqualityFilter({ attribute: "sAMAccountName", value }),
        ),
        ...[...new Set(names.userPrincipalNames ?? [])].map(
          (value) => new EqualityFilter({ attribute: "userPrincipalName", value }),
        ),
        ...[...new Set(names.sids)].map((sid) => new EqualityFilter({ attribute: "objectSid", value: encodeSid(sid) })),
        ...[...new Set(names.dns)].map((value) => new EqualityFilter({ attribute: "distinguishedName", value })),
      ];
    } catch (err) {
      throw toDirectoryError(err, { operation: "search", dn: baseDn });
    }
    const out: ResolvedPrincipal[] = [];
    for (const part of chunk(filters, FILTER_CHUNK)) {
      const filter = new OrFilter({ filters: part });
      const entries = await this.#search(baseDn, { scope: "sub", filter, attributes: PRINCIPAL_ATTRIBUTES });
      out.push(...this.#convert(entries, principalFromEntry));
    }
    return out;
  }

  /** SID → sAMAccountName for the SIDs found under baseDn (see resolvePrincipals). */
  async resolveSids(baseDn: string, sids: readonly string[]): Promise<Map<string, string>> {
    const principals = await this.resolvePrincipals(baseDn, sids);
    return new Map([...principals].map(([sid, p]) => [sid, p.samAccountName]));
  }

  /**
   * The KDS root keys in the forest. An absent container (forest never prepared for gMSAs)
   * reads as no keys. msKds-* attributes are confidential: a bind account that may not read
   * them gets a stalled InsufficientAccess error rather than an empty list.
   */
  async readKdsRootKeys(configDn: string): Promise<ObservedKdsRootKey[]> {
    let entries: Entry[];
    try {
      entries = await this.#search(kdsRootKeyContainerDn(configDn), {
        scope: "one",
        // Not (objectClass=msKds-ProvRootKey): an account that may not read the keys' attributes
        // does not match that filter and would see "no keys" (Samba 4.22); with a presence filter
        // it gets the entries without attributes, which kdsRootKeyFromEntry reports.
        filter: "(objectClass=*)",
        attributes: KDS_ROOT_KEY_ATTRIBUTES,
      });
    } catch (err) {
      if (hasResultCode(err, 32)) return [];
      throw err;
    }
    return this.#convert(entries, kdsRootKeyFromEntry);
  }

  /**
   * Who last changed each reported attribute of one object: a second, targeted read, made only
   * for drifted objects. Reads Windows' msDS-ReplAttributeMetaData / msDS-ReplValueMetaData and
   * Samba's replPropertyMetaData in one base search; `member`, which Samba keeps no
   * per-attribute record of over LDAP, falls back to the object's whenChanged (objectLevel).
   * The originating DC is named by its DNS host name, from the DCs under CN=Sites (read once per
   * connection).
   */
  async readChangeHistory(dn: string, configDn: string): Promise<AttributeHistory[]> {
    const [entry] = await this.#search(dn, {
      scope: "base",
      paged: false,
      attributes: ["msDS-ReplAttributeMetaData", "msDS-ReplValueMetaData", "replPropertyMetaData", "whenChanged"],
    });
    if (!entry) return [];
    const xml = [...values(entry, "msDS-ReplAttributeMetaData"), ...values(entry, "msDS-ReplValueMetaData")].map((v) =>
      v.toString(),
    );
    const blob = values(entry, "replPropertyMetaData")[0];
    const found =
      xml.length > 0 ? parseReplMetaDataXml(xml) : Buffer.isBuffer(blob) ? parseReplPropertyMetaData(blob) : [];
    const history: AttributeHistory[] = [...found];
    const changed = values(entry, "whenChanged")[0]?.toString();
    const whenChanged = changed === undefined ? undefined : parseGeneralizedTime(changed);
    if (!history.some((h) => h.attribute === "member") && whenChanged)
      history.push({
        attribute: "member",
        time: whenChanged,
        version: undefined,
        invocationId: undefined,
        dsaDn: undefined,
        objectLevel: true,
      });
    const dcs = await this.#domainControllers(configDn);
    return history.map((h) => {
      const dc =
        (h.invocationId !== undefined ? dcs.byInvocation.get(h.invocationId) : undefined) ??
        (h.dsaDn !== undefined ? dcs.byDsa.get(h.dsaDn.toLowerCase()) : undefined);
      return dc === undefined ? h : { ...h, dc };
    });
  }

  #dcs: { byInvocation: Map<string, string>; byDsa: Map<string, string> } | undefined;

  /** invocationId and NTDS Settings DN → DNS host name, for every DC of the forest. */
  async #domainControllers(
    configDn: string,
  ): Promise<{ byInvocation: Map<string, string>; byDsa: Map<string, string> }> {
    if (this.#dcs) return this.#dcs;
    const sites = `CN=Sites,${configDn}`;
    const servers = await this.#search(sites, {
      scope: "sub",
      filter: "(objectClass=server)",
      attributes: ["dNSHostName", "cn"],
    });
    const hostOf = new Map(
      servers.map((e) => [e.dn.toLowerCase(), (values(e, "dNSHostName")[0] ?? values(e, "cn")[0] ?? "").toString()]),
    );
    const dsas = await this.#search(sites, {
      scope: "sub",
      filter: "(objectClass=nTDSDSA)",
      attributes: ["invocationId"],
    });
    const byInvocation = new Map<string, string>();
    const byDsa = new Map<string, string>();
    for (const e of dsas) {
      const host = hostOf.get(e.dn.slice(e.dn.indexOf(",") + 1).toLowerCase());
      if (host === undefined) continue;
      byDsa.set(e.dn.toLowerCase(), host);
      const id = values(e, "invocationId")[0];
      if (Buffer.isBuffer(id) && id.length === 16) byInvocation.set(guidText(id), host);
    }
    this.#dcs = { byInvocation, byDsa };
    return this.#dcs;
  }

  /** Adds an entry. Attribute values may be text or bytes. */
  async add(dn: string, attributes: Readonly<Record<string, AttributeValues>>): Promise<void> {
    const attrs = Object.entries(attributes).map(([type, v]) => toAttribute(type, v));
    await this.#run("add", "add", dn, () => this.#client.add(dn, attrs));
  }

  /** Applies modifications in one request (atomic on the server). Accepts ldapts Changes too. */
  async modify(
    dn: string,
    changes: Change | ReadonlyArray<Change | Modification>,
    controls?: Control[],
  ): Promise<void> {
    const list = (Array.isArray(changes) ? changes : [changes]) as ReadonlyArray<Change | Modification>;
    const ldapChanges = list.map((c) =>
      c instanceof Change
        ? c
        : new Change({ operation: c.operation, modification: toAttribute(c.attribute, c.values) }),
    );
    await this.#run("modify", "modify", dn, () => this.#client.modify(dn, ldapChanges, controls));
  }

  /** Renames or moves an entry (modify DN); `newDn` is the full new DN. */
  async move(dn: string, newDn: string): Promise<void> {
    await this.#run("modify", "modify", dn, () => this.#client.modifyDN(dn, newDn));
  }

  /** Deletes a leaf entry. */
  async delete(dn: string): Promise<void> {
    await this.#run("delete", "delete", dn, () => this.#client.del(dn));
  }

  /**
   * Adds members to a group. A member already present is success: AD answers 68 (Samba copies
   * Windows here) or 20 on other servers, and ignores Permissive Modify for `member` on Samba.
   * Tries one modify for all values; if that fails, one modify per value.
   */
  async addMembers(groupDn: string, memberDns: readonly string[]): Promise<MemberChangeResult> {
    return this.#changeMembers(groupDn, memberDns, "add", [68, 20]);
  }

  /**
   * Removes members from a group. A member already absent is success: AD answers 53
   * (ERROR_MEMBER_NOT_IN_ALIAS) or 16 on other servers. Same fallback as addMembers.
   */
  async removeMembers(groupDn: string, memberDns: readonly string[]): Promise<MemberChangeResult> {
    return this.#changeMembers(groupDn, memberDns, "delete", [53, 16]);
  }

  async #changeMembers(
    groupDn: string,
    memberDns: readonly string[],
    operation: "add" | "delete",
    idempotentCodes: number[],
  ): Promise<MemberChangeResult> {
    const members = [...new Set(memberDns)];
    const result: MemberChangeResult = { changed: [], unchanged: [] };
    if (members.length === 0) return result;
    const permissive = [new Control(PERMISSIVE_MODIFY_OID)];
    const once = (values: string[]): Promise<void> =>
      this.modify(groupDn, [{ operation, attribute: "member", values }], permissive);
    try {
      await once(members);
      result.changed.push(...members);
      return result;
    } catch (err) {
      // A multi-value modify is atomic: one present (or absent) value fails all of them.
      if (!(err instanceof DirectoryError) || err.resultCode === undefined) throw err;
      if (members.length === 1) {
        if (hasResultCode(err, ...idempotentCodes)) result.unchanged.push(...members);
        else throw err;
        return result;
      }
    }
    for (const member of members) {
      try {
        await once([member]);
        result.changed.push(member);
      } catch (err) {
        if (!hasResultCode(err, ...idempotentCodes)) throw err;
        result.unchanged.push(member);
      }
    }
    return result;
  }

  /**
   * Creates a KDS root key the way Add-KdsRootKey does (kds.ts has the attribute values), with
   * msKds-DomainID = the DC computer object (rootDSE serverName → serverReference). Returns its DN.
   */
  async createKdsRootKey(options: CreateKdsRootKeyOptions): Promise<string> {
    const dse = await this.rootDse();
    const [server] = await this.#search(dse.serverName, {
      scope: "base",
      paged: false,
      attributes: ["serverReference"],
    });
    const domainId = server ? values(server, "serverReference")[0]?.toString() : undefined;
    if (!domainId) {
      throw new DirectoryError(`search ${dse.serverName} failed: the server object has no serverReference`, {
        outcome: "stalled",
        reason: "NoSuchObject",
        operation: "search",
        dn: dse.serverName,
      });
    }
    const id = randomUUID();
    const dn = childDn("CN", id, kdsRootKeyContainerDn(dse.configurationNamingContext));
    const attributes = kdsRootKeyAttributes({
      id,
      rootKeyData: randomBytes(64),
      createTime: options.now,
      useStartTime: kdsUseStartTime(options),
      domainId,
    });
    await this.add(dn, attributes);
    return dn;
  }

  /** Unbinds and closes the connection; safe to call twice. */
  async close(): Promise<void> {
    try {
      await this.#client.unbind();
    } catch {
      // Closing a connection that already failed is not an error worth reporting.
    }
  }
}

function toAttribute(type: string, v: AttributeValues): Attribute {
  const list = typeof v === "string" || Buffer.isBuffer(v) ? [v] : [...v];
  const texts = list.filter((x) => typeof x === "string");
  // ldapts takes all-text or all-bytes values; mixed lists are sent as bytes.
  if (texts.length === list.length) return new Attribute({ type, values: texts });
  return new Attribute({ type, values: list.map((x) => (typeof x === "string" ? Buffer.from(x, "utf8") : x)) });
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function plaintextRefused(url: string): DirectoryError {
  return new DirectoryError(
    `refusing a plaintext bind to ${url}: use ldaps://, or set startTls: true, or (lab only) allowInsecurePlaintext: true`,
    { outcome: "stalled", reason: "PlaintextRefused", operation: "connect" },
  );
}

/**
 * Connects to a DC and binds. ldaps:// verifies the server certificate against caFile (or the
 * system CAs when there is none); ldap:// requires startTls (verified the same way) unless
 * allowInsecurePlaintext is set, and is refused otherwise. `signal` cancels the attempt.
 * Rejects with a DirectoryError that never contains the bind password.
 */
export async function connectDirectory(options: DirectoryOptions, signal?: AbortSignal): Promise<LdapDirectory> {
  signal?.throwIfAborted();
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new DirectoryError(`not an LDAP URL: ${JSON.stringify(options.url)}`, {
      outcome: "stalled",
      reason: "InvalidConfiguration",
      operation: "connect",
    });
  }
  const secure = url.protocol === "ldaps:";
  if (!secure && url.protocol !== "ldap:") {
    throw new DirectoryError(`not an LDAP URL (ldaps:// or ldap://): ${options.url}`, {
      outcome: "stalled",
      reason: "InvalidConfiguration",
      operation: "connect",
    });
  }
  if (!secure && !options.startTls && !options.allowInsecurePlaintext) throw plaintextRefused(options.url);
  if (options.bindPassword === "") {
    // An empty password makes a simple bind anonymous (RFC 4513 5.1.2): refuse it.
    throw new DirectoryError(`bind as ${options.bindDn} refused: the bind password is empty`, {
      outcome: "stalled",
      reason: "InvalidConfiguration",
      operation: "bind",
    });
  }

  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const tlsOptions: ConnectionOptions = { rejectUnauthorized: true, minVersion: "TLSv1.2", host };
  if (isIP(host) === 0) tlsOptions.servername = host;
  if (options.caFile !== undefined) {
    try {
      tlsOptions.ca = [await readFile(options.caFile)];
    } catch (err) {
      throw new DirectoryError(
        `cannot read caFile ${options.caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        {
          outcome: "stalled",
          reason: "InvalidConfiguration",
          operation: "connect",
        },
      );
    }
  }

  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const client = new Client({
    url: options.url,
    timeout,
    connectTimeout: timeout,
    ...(secure ? { tlsOptions } : {}),
  });
  const ctx = { url: options.url, bindDn: options.bindDn, secrets: [options.bindPassword] };
  // Cancelling mid-connect destroys the socket, and ldapts then settles neither the connect nor
  // the bind (it drops the socket's listeners and the connect timer): without this race, a
  // cycle cancelled during a TLS handshake to an unresponsive DC would hang for ever.
  let cancelled: (reason: unknown) => void = () => undefined;
  const whenCancelled = new Promise<never>((_, reject) => (cancelled = reject));
  whenCancelled.catch(() => undefined);
  const onAbort = (): void => {
    cancelled(signal?.reason);
    void client.unbind().catch(() => undefined);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const timed = async (
    kind: LdapOperationKind,
    operation: DirectoryOperation,
    fn: () => Promise<void>,
  ): Promise<void> => {
    const started = performance.now();
    let ok = false;
    try {
      await Promise.race([fn(), whenCancelled]);
      ok = true;
    } catch (err) {
      signal?.throwIfAborted();
      throw toDirectoryError(err, { ...ctx, operation });
    } finally {
      options.onOperation?.(kind, (performance.now() - started) / 1000, ok);
    }
  };
  try {
    if (!secure && options.startTls) await timed("bind", "starttls", () => client.startTLS({ ...tlsOptions }));
    await timed("bind", "bind", () => client.bind(options.bindDn, options.bindPassword));
    signal?.throwIfAborted();
  } catch (err) {
    await client.unbind().catch(() => undefined);
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return new LdapDirectory(client, options);
}

/** Adapts an LdapDirectory to the DirectoryWriter port the apply step calls. */
export function directoryWriter(dir: LdapDirectory): DirectoryWriter {
  return {
    add: (dn, attributes) => dir.add(dn, attributes),
    modify: (dn, changes) => dir.modify(dn, changes),
    move: (dn, newDn) => dir.move(dn, newDn),
    delete: (dn) => dir.delete(dn),
    addMembers: async (groupDn, memberDns) => void (await dir.addMembers(groupDn, memberDns)),
    removeMembers: async (groupDn, memberDns) => void (await dir.removeMembers(groupDn, memberDns)),
    readSid: (dn) => dir.readSid(dn),
    readGuid: (dn) => dir.readGuid(dn),
    createKdsRootKey: (options) => dir.createKdsRootKey(options),
  };
}
