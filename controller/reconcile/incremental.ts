/**
 * Incremental observe: between full reads, ask AD only for the objects that changed since the
 * last read (uSNChanged above the DC's watermark) and merge them into the picture kept from the
 * previous cycle. A full read runs on the first cycle, when another DC answers (or the same DC
 * restored from backup: a new invocation id), when what the repository references changes, and
 * every `fullResyncMs` as the level-based safety net. Deletions come from tombstones (show-deleted
 * control) of the same USN range, so a deleted managed object is recreated at the next cycle, not
 * an hour later. A DC whose USN has not moved since the last read is asked nothing more.
 */
import type {
  Changes,
  ObservedComputer,
  ObservedGmsa,
  ObservedGroup,
  ObservedKdsRootKey,
  ResolvedPrincipal,
  RootDse,
  Watermark,
} from "../directory/index.ts";
import { allowedReaders, MARKER_PREFIX } from "../directory/index.ts";
import type { DesiredState } from "../manifests/index.ts";
import type { MetricsRecorder } from "../metrics/index.ts";
import type { ObservedDirectory } from "./model.ts";
import type { DirectoryReader } from "./observe.ts";
import { observeDirectory, referencedNames } from "./observe.ts";
import type { DirectorySession } from "./pass.ts";
import type { Logger } from "./revision.ts";

/** The reads an incremental observe needs beyond a full one (the LDAP client provides them). */
export interface ChangeReader extends DirectoryReader {
  /** The DC's watermark; from `read`, a rootDSE read earlier on the same connection, when given. */
  watermark(read?: RootDse): Promise<Watermark>;
  /**
   * Every gMSA, group (named by the repository or not) and computer account changed after the
   * USN, and the tombstones of objects deleted after it: one search.
   */
  changedSince(baseDn: string, sinceUsn: string): Promise<Changes>;
}

/** How one observe read AD, and how many entries it returned. */
export interface ObserveRead {
  readonly observed: ObservedDirectory;
  readonly mode: "full" | "incremental";
  readonly entries: number;
  /** Why a full read ran (first, another DC, references changed, resync due). */
  readonly reason?: string;
}

interface Kept {
  readonly watermark: Watermark;
  readonly observed: ObservedDirectory;
  readonly references: string;
  readonly fullAt: number;
}

/** Entries a full read returned: every object of the observed picture. */
export const countEntries = (o: ObservedDirectory): number =>
  o.gmsas.length + o.groups.length + o.computers.length + o.kdsRootKeys.length + o.principals.length;

/**
 * Replaces the objects in `kept` that appear in `changed` (matched by SID, which a move or rename
 * keeps), drops the deleted ones and the changed ones that no longer match what a full read asks
 * for (a group whose marker was removed, a computer renamed away from a referenced name).
 */
function merge<T extends { sid: string }>(
  kept: readonly T[],
  changed: readonly T[],
  deleted: ReadonlySet<string>,
  wanted: (o: T) => boolean = () => true,
): T[] {
  const bySid = new Map(kept.map((o) => [o.sid, o]));
  for (const sid of deleted) bySid.delete(sid);
  for (const o of changed) {
    if (wanted(o)) bySid.set(o.sid, o);
    else bySid.delete(o.sid);
  }
  return [...bySid.values()];
}

/** Same length and pairwise equal, in order: what comparing the two lists' JSON told, without the text. */
function sameList<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!same(a[i] as T, b[i] as T)) return false;
  return true;
}

/** Every field a KDS root key is read with (observed.ts), times compared by instant. */
const sameKdsRootKey = (x: ObservedKdsRootKey, y: ObservedKdsRootKey): boolean =>
  x.dn === y.dn &&
  x.id === y.id &&
  x.useStartTime.getTime() === y.useStartTime.getTime() &&
  x.createTime.getTime() === y.createTime.getTime() &&
  x.guid === y.guid &&
  x.adminDescription === y.adminDescription &&
  x.adminDisplayName === y.adminDisplayName;

/** Every field a principal is read with (observed.ts). */
const samePrincipal = (x: ResolvedPrincipal, y: ResolvedPrincipal): boolean =>
  x.sid === y.sid &&
  x.dn === y.dn &&
  x.samAccountName === y.samAccountName &&
  x.objectClass === y.objectClass &&
  x.userPrincipalName === y.userPrincipalName;

/** Keeps the picture of AD between cycles; one per controller. */
export class IncrementalObserver {
  readonly #fullResyncMs: number;
  #kept: Kept | undefined;
  #references:
    | {
        readonly desired: DesiredState;
        readonly baseDn: string;
        readonly configDn: string;
        readonly names: ReturnType<typeof referencedNames>;
        readonly references: string;
      }
    | undefined;

  constructor(fullResyncMs: number) {
    this.#fullResyncMs = fullResyncMs;
  }

  /**
   * What `desired` references, computed once per revision: a cycle without a new revision passes
   * the very same object, and walking thousands of resources (and the garbage it leaves) was most
   * of a quiet cycle's own CPU at 5,000 resources.
   */
  #referencesOf(
    desired: DesiredState,
    scope: { baseDn: string; configDn: string },
  ): { names: ReturnType<typeof referencedNames>; references: string } {
    const cached = this.#references;
    if (cached?.desired === desired && cached.baseDn === scope.baseDn && cached.configDn === scope.configDn)
      return cached;
    const names = referencedNames(desired);
    const references = JSON.stringify([scope, names]);
    this.#references = { desired, baseDn: scope.baseDn, configDn: scope.configDn, names, references };
    return this.#references;
  }

  /** What `desired` references in `scope`, as one string: equal strings, the same reads. */
  references(desired: DesiredState, scope: { baseDn: string; configDn: string }): string {
    return this.#referencesOf(desired, scope).references;
  }

  /** Forgets the picture: the next observe is a full read (e.g. after a failed cycle). */
  reset(): void {
    this.#kept = undefined;
  }

  /**
   * Reads AD for `desired`: incrementally when the kept picture is still valid, else in full.
   * When the incremental read found nothing changed, the picture returned is the kept object itself.
   */
  async observe(
    desired: DesiredState,
    reader: ChangeReader,
    scope: { baseDn: string; configDn: string },
    now: number,
  ): Promise<ObserveRead> {
    // The watermark first: whatever changes during the reads is above it and is read again next time.
    const watermark = await reader.watermark();
    const { names, references } = this.#referencesOf(desired, scope);
    const kept = this.#kept;
    const reason =
      kept === undefined
        ? "first read"
        : kept.watermark.dsServiceName !== watermark.dsServiceName ||
            kept.watermark.invocationId !== watermark.invocationId
          ? "another DC answers"
          : kept.references !== references
            ? "the repository references other objects"
            : now - kept.fullAt >= this.#fullResyncMs
              ? "full resync due"
              : undefined;
    if (reason !== undefined || kept === undefined) {
      const observed = await observeDirectory(desired, reader, scope);
      this.#kept = { watermark, observed, references, fullAt: now };
      return { observed, mode: "full", entries: countEntries(observed), reason: reason ?? "first read" };
    }
    const since = kept.watermark.usn;
    // The same DC (same invocation id) at the same highestCommittedUSN has committed nothing
    // since the last read, in any naming context and replicated writes included: no object,
    // KDS key or principal can have changed, so there is nothing more to ask.
    if (watermark.usn === since) return { observed: kept.observed, mode: "incremental", entries: 0 };
    const p = names.principals;
    const named = p.samAccountNames.length + p.userPrincipalNames.length + p.sids.length + p.dns.length > 0;
    const [changes, kdsRootKeys, principals] = await Promise.all([
      reader.changedSince(scope.baseDn, since),
      // KDS root keys are a handful forest-wide and decide whether gMSAs can be created: always read.
      reader.readKdsRootKeys(scope.configDn),
      // Principals named by user name, SID or DN: as many as the repository names, and a user
      // created, renamed or deleted by hand changes no managed object's uSNChanged: always read.
      named ? reader.readPrincipals(scope.baseDn, names.principals) : Promise.resolve([]),
    ]);
    const { gmsas, groups, computers, deleted } = changes;
    const before = kept.observed;
    const entries = changes.entries + kdsRootKeys.length + principals.length;
    if (
      changes.entries === 0 &&
      sameList(kdsRootKeys, before.kdsRootKeys, sameKdsRootKey) &&
      sameList(principals, before.principals, samePrincipal)
    ) {
      // Nothing changed: the same picture, the very same object, so the loop can tell (quiet.ts).
      this.#kept = { ...kept, watermark };
      return { observed: before, mode: "incremental", entries };
    }
    const gone = new Set(deleted.map((d) => d.sid));
    // A deleted member leaves its groups without raising their uSNChanged: drop its DN here.
    const goneDns = new Set(deleted.flatMap((d) => (d.dn ? [d.dn.toLowerCase()] : [])));
    for (const o of [...before.gmsas, ...before.groups, ...before.computers])
      if (gone.has(o.sid)) goneDns.add(o.dn.toLowerCase());
    let sidNames = before.sidNames;
    const groupNames = new Set(names.groups.map((n) => n.toLowerCase()));
    const computerNames = new Set(names.computers.map((n) => n.toLowerCase().replace(/\$$/, "")));

    const merged = {
      gmsas: merge(before.gmsas, gmsas, gone),
      groups: merge(
        goneDns.size === 0
          ? before.groups
          : before.groups.map((g) => ({ ...g, members: g.members.filter((m) => !goneDns.has(m.toLowerCase())) })),
        groups,
        gone,
        (g) => groupNames.has(g.samAccountName.toLowerCase()) || g.adminDescription?.startsWith(MARKER_PREFIX) === true,
      ),
      computers: merge(before.computers, computers, gone, (c) => computerNames.has(c.samAccountName.toLowerCase())),
    };
    if (gmsas.length > 0) {
      // Names for SIDs newly seen in changed descriptors: the same rule as a full read.
      const fresh = await observeSidNames(reader, scope.baseDn, merged, gmsas, sidNames);
      sidNames = fresh;
    }
    const observed: ObservedDirectory = { ...before, ...merged, kdsRootKeys, principals, sidNames };
    this.#kept = { ...kept, watermark, observed };
    return { observed, mode: "incremental", entries };
  }
}

async function observeSidNames(
  reader: DirectoryReader,
  baseDn: string,
  merged: { gmsas: readonly ObservedGmsa[]; groups: readonly ObservedGroup[]; computers: readonly ObservedComputer[] },
  changed: readonly ObservedGmsa[],
  known: ReadonlyMap<string, string>,
): Promise<ReadonlyMap<string, string>> {
  const seen = new Set<string>([...merged.groups, ...merged.computers, ...merged.gmsas].map((o) => o.sid));
  const unknown = new Set<string>();
  for (const g of changed)
    if (g.groupMsaMembership)
      for (const sid of allowedReaders(g.groupMsaMembership)) if (!seen.has(sid) && !known.has(sid)) unknown.add(sid);
  if (unknown.size === 0) return known;
  const found = await reader.resolveSids(baseDn, [...unknown]);
  return new Map([...known, ...found]);
}

/**
 * The pass's observe step for the loop: incremental through `observer` when the session can read
 * changes, a full read otherwise; each read counted in `ldap_entries_read_total{mode}`, and its
 * time, when `now` is given, set as when AD was last observed. That is when AD is read, before the
 * writes: a long apply (a first one creating thousands of gMSAs) is not a stale observation.
 */
export function observerFor(
  observer: IncrementalObserver | undefined,
  metrics: MetricsRecorder,
  logger: Logger,
  now?: () => Date,
): (
  desired: DesiredState,
  session: DirectorySession,
  scope: { baseDn: string; configDn: string },
) => Promise<ObservedDirectory> {
  const read = async (
    desired: DesiredState,
    session: DirectorySession,
    scope: { baseDn: string; configDn: string },
  ): Promise<ObservedDirectory> => {
    if (!observer || !session.watermark || !session.changedSince) {
      const observed = await observeDirectory(desired, session, scope);
      metrics.ldapEntriesRead("full", countEntries(observed));
      return observed;
    }
    const read = await observer.observe(desired, session as ChangeReader, scope, performance.now());
    metrics.ldapEntriesRead(read.mode, read.entries);
    if (read.mode === "full") logger.info({ reason: read.reason, entries: read.entries }, "full read of AD");
    return read.observed;
  };
  return async (desired, session, scope) => {
    const observed = await read(desired, session, scope);
    if (now) metrics.observedAt(now());
    return observed;
  };
}
