/**
 * The leader lease as data (docs/decisions/leader-lease.md): where it is kept, what one value
 * holds, how long a leader may write after a renew, and the fence every directory write of a
 * leader passes through.
 */
import type { OpenDirectory } from "./pass.ts";

/** The lease object as the elector uses it; clients.ts provides it over LDAP, on the PDC emulator. */
export interface LeaseStore {
  /** The DNS name of the DC holding the lease (the PDC emulator), for status. */
  readonly server: string;
  /**
   * The lease attribute's values: one in normal operation, none or several when someone edited
   * the object by hand; undefined when the lease object does not exist yet.
   */
  read(): Promise<readonly string[] | undefined>;
  /** Creates the lease object with `value`; false when another replica created it first. */
  create(value: string): Promise<boolean>;
  /**
   * Replaces exactly `oldValues` with `newValue` in one atomic modify; false when one of them is
   * gone, or, for no old values, when `newValue` is there already.
   */
  swap(oldValues: readonly string[], newValue: string): Promise<boolean>;
  close(): Promise<void>;
}

/** What a lease value holds. */
export interface Lease {
  /** The replica holding it; "" when released or never taken. */
  readonly holder: string;
  /** When the holder last renewed it, by the holder's clock (informational). */
  readonly renewTime: string;
  readonly durationSeconds: number;
  /** Times the lease changed hands. */
  readonly transitions: number;
}

/** What /api/status says about leadership. */
export interface LeadershipStatus {
  readonly replicaId: string;
  /** True while this replica holds the lease and may write. */
  readonly leader: boolean;
  /** Who holds the lease as last read ("" none); null when it could not be read. */
  readonly holder: string | null;
  /** The DC holding the lease (the PDC emulator); null while it cannot be reached. */
  readonly server: string | null;
  readonly leaseDurationSeconds: number;
  /** Why nobody leads, or the last failure to reach the lease; null when all is well. */
  readonly message: string | null;
}

/** The lease as a decision needs it: who may write, and when that ends. */
export interface Leadership {
  /** True while this replica may write: it holds the lease and its fencing deadline has not passed. */
  canWrite(): boolean;
  /** Aborted as soon as this replica stops leading; a fresh one each time it starts leading. */
  readonly fence: AbortSignal;
  status(): LeadershipStatus;
}

/** Prefix of every lease value, so a value someone else wrote into the attribute is recognised. */
const LEASE_PREFIX = "gmsa-gitops-lease ";

/** Encodes a lease into the one attribute value that is swapped. */
export function encodeLease(lease: Lease): string {
  return LEASE_PREFIX + JSON.stringify(lease);
}

/**
 * The value a new lease object holds, and what an attribute emptied by hand is given back: a lease
 * nobody holds that was never released, so it must stand a whole lease duration before anyone
 * takes it. Always the same text, so two replicas putting it back at once leave one value.
 */
export const NEW_LEASE = encodeLease({
  holder: "",
  renewTime: new Date(0).toISOString(),
  durationSeconds: 0,
  transitions: 0,
});

/** Decodes a lease value; a value that is not one reads as a free lease with no holder. */
export function decodeLease(value: string | undefined): Lease {
  const free: Lease = { holder: "", renewTime: new Date(0).toISOString(), durationSeconds: 0, transitions: 0 };
  if (value === undefined || !value.startsWith(LEASE_PREFIX)) return free;
  try {
    const parsed = JSON.parse(value.slice(LEASE_PREFIX.length)) as Partial<Lease>;
    return {
      holder: typeof parsed.holder === "string" ? parsed.holder : "",
      renewTime: typeof parsed.renewTime === "string" ? parsed.renewTime : free.renewTime,
      durationSeconds: typeof parsed.durationSeconds === "number" ? parsed.durationSeconds : 0,
      transitions: typeof parsed.transitions === "number" ? parsed.transitions : 0,
    };
  } catch {
    return free;
  }
}

/**
 * True when `value` is a lease its holder gave up on a clean stop (the holder emptied, the
 * duration kept), which a follower may take at once. A new lease object (duration 0), a value
 * that is not a lease and a lease naming a holder are not: a lease object deleted or overwritten
 * by hand says nothing about whether the leader has stopped writing, so such a value must stand
 * unchanged for a whole lease duration first.
 */
export function isReleased(value: string | undefined): boolean {
  if (value === undefined || !value.startsWith(LEASE_PREFIX)) return false;
  const lease = decodeLease(value);
  return lease.holder === "" && lease.durationSeconds > 0;
}

/**
 * The part of the lease a leader gives up to clock-rate differences between replicas and to a
 * write already on the wire when its deadline passes: it stops writing this long before a
 * follower may take over. A fifth of the lease, at least 1 s.
 */
export function fencingMargin(durationMs: number): number {
  return Math.max(1_000, durationMs / 5);
}

/**
 * Wraps a directory opener so that every write first checks that this replica still leads: the
 * last line of the fence, for a deadline that passes while apply is under way.
 */
export function fenced(open: OpenDirectory, leadership: Leadership): OpenDirectory {
  return async (signal) => {
    const session = await open(signal);
    const check = (): void => {
      if (!leadership.canWrite())
        throw Object.assign(new Error("not written: this replica no longer holds the leader lease"), {
          outcome: "transient" as const,
        });
    };
    const w = session.writer;
    const writer: typeof w = {
      add: async (dn, attributes) => (check(), w.add(dn, attributes)),
      modify: async (dn, changes) => (check(), w.modify(dn, changes)),
      move: async (dn, newDn) => (check(), w.move(dn, newDn)),
      delete: async (dn) => (check(), w.delete(dn)),
      addMembers: async (groupDn, members) => (check(), w.addMembers(groupDn, members)),
      removeMembers: async (groupDn, members) => (check(), w.removeMembers(groupDn, members)),
      readSid: (dn) => w.readSid(dn),
      readGuid: (dn) => w.readGuid(dn),
      createKdsRootKey: async (options) => (check(), w.createKdsRootKey(options)),
    };
    return { ...session, rootDse: () => session.rootDse(), close: () => session.close(), writer };
  };
}
