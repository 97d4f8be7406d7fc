/**
 * Status per resource: a closed set of conditions (Ready, Reconciling, Stalled, plus
 * DriftDetected and ApplyFailed only while true), each with a CamelCase reason, a message and
 * the time it last changed, and the last drift seen with when it was corrected. One pure
 * `summarize` derives it for AD resources and host bindings alike, once per cycle.
 */
import type { ConditionReason, ConditionType, Kind, Outcome } from "../vocabulary.ts";
import { Interner } from "./intern.ts";
import type { AttributeChange, DriftType, ResourcePlan } from "./model.ts";

export type { ConditionReason, ConditionType } from "../vocabulary.ts";
export { summarize } from "./summarize.ts";

/**
 * One condition as /api/status shows it. `Unknown` means the controller could not observe the
 * resource in its last cycle (as Kubernetes marks a node that stopped reporting).
 */
export interface Condition {
  readonly type: ConditionType;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: ConditionReason;
  readonly message: string;
  readonly lastTransitionTime: string;
}

/** The last drift found on a resource: kept after it is corrected, as evidence. */
export interface LastDrift {
  readonly drift: readonly DriftType[];
  readonly changes: readonly AttributeChange[];
  readonly observedAt: string;
  /** When the controller wrote the fix; null while it is not (yet) corrected. */
  readonly correctedAt: string | null;
}

/** Everything /api/status says about one resource. */
export interface ResourceStatus {
  readonly kind: Kind;
  readonly name: string;
  readonly dn: string | null;
  readonly source: { readonly file: string; readonly line: number } | null;
  readonly conditions: readonly Condition[];
  /** Drift found at the last observation, before any fix. */
  readonly drift: readonly DriftType[];
  readonly changes: readonly AttributeChange[];
  readonly observeOnly: boolean;
  readonly lastAppliedRevision: string | null;
  /** Null for what this controller never observes (a HostBinding without a host transport). */
  readonly lastObservedAt: string | null;
  readonly lastDrift: LastDrift | null;
  /** How often this controller corrected the resource's drift since it started, and since when. */
  readonly corrections: { readonly count: number; readonly since: string | null };
  /** When the next attempt is due (back-off or a known waiting time), if it is not the next cycle. */
  readonly nextAttemptAt: string | null;
  /** HostBindings: the host, whether it answered, and whether it can retrieve the password. */
  readonly host?: {
    readonly name: string;
    /** null when the host was not contacted this cycle (its gMSA or computer is not in AD yet). */
    readonly reachable: boolean | null;
    readonly retrievable: "yes" | "no" | "pending" | null;
  };
}

/** A condition before its transition time is known. */
export interface Draft {
  readonly type: ConditionType;
  readonly status: boolean | "Unknown";
  readonly reason: ConditionReason;
  readonly message: string;
}

/** What one write (an LDAP action, or a host's item) came to; ActionResult has this shape. */
export interface Attempt {
  readonly status: "applied" | "failed" | "skipped";
  readonly outcome?: Outcome;
  readonly message?: string;
}

/** A resource's cycle, as `summarize` needs it. */
export interface Cycle {
  /** The resource's plan entry: drift, actions, blocker, notes (a host binding's too). */
  readonly entry: ResourcePlan;
  /** What its writes came to (none in a plan or dry run, or when it was blocked). */
  readonly attempts: readonly Attempt[];
  /** True when its actions were executed (apply, enforce mode); false for plan and observe. */
  readonly executed: boolean;
  readonly revision: string | null;
  readonly now: Date;
  /**
   * When the loop tries this resource's failed writes again (its back-off), when that is known in
   * the cycle they failed; later cycles carry it as the gate's blocker `until`.
   */
  readonly retryAt?: Date;
}

/** The status fields `summarize` decides; the caller adds identity (kind, name, dn, source). */
export type Summary = Pick<
  ResourceStatus,
  | "drift"
  | "changes"
  | "observeOnly"
  | "lastAppliedRevision"
  | "lastObservedAt"
  | "lastDrift"
  | "corrections"
  | "nextAttemptAt"
> & { readonly conditions: readonly Draft[] };

/**
 * Keeps conditions across reconciles so `lastTransitionTime` moves only when a condition's
 * status changes (as Kubernetes conditions do).
 */
export class StatusStore {
  readonly #resources = new Map<string, ResourceStatus>();
  readonly #intern = new Interner();
  /** When a quiet cycle last observed every resource unchanged (ISO time), without updating each. */
  #observedAll = "";
  /** A cycle observed every resource and found none changed: each was observed at `now`. */
  observedAll(now: Date): void {
    this.#observedAll = now.toISOString();
  }

  /** A status as of the last quiet cycle; what was never observed (null) stays so. */
  #current = (s: ResourceStatus): ResourceStatus =>
    s.lastObservedAt !== null && s.lastObservedAt < this.#observedAll ? { ...s, lastObservedAt: this.#observedAll } : s;

  /** Records a resource's new state; returns the stored status. */
  update(
    next: Omit<ResourceStatus, "conditions"> & { readonly conditions: readonly Draft[] },
    now: Date,
  ): ResourceStatus {
    const key = `${next.kind}/${next.name}`;
    const previous = this.#resources.get(key);
    const conditions = next.conditions.map((d): Condition => {
      const before = previous?.conditions.find((c) => c.type === d.type);
      const status = d.status === "Unknown" ? "Unknown" : d.status ? "True" : "False";
      const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : now.toISOString();
      return { ...d, status, lastTransitionTime };
    });
    const stored = this.#intern.status({ ...next, conditions }, previous);
    this.#resources.set(key, stored);
    return stored;
  }

  /**
   * Marks every known resource's Ready, Reconciling and Stalled `Unknown` with this reason: the
   * cycle could not observe them, so their last state is no longer current. The next cycle that
   * observes them sets them again.
   */
  markUnknown(reason: ConditionReason, message: string, now: Date): ResourceStatus[] {
    const changed: ResourceStatus[] = [];
    for (const [key, status] of this.#resources) {
      const conditions = status.conditions.map((c): Condition => {
        if (c.type !== "Ready" && c.type !== "Reconciling" && c.type !== "Stalled") return c;
        const lastTransitionTime = c.status === "Unknown" ? c.lastTransitionTime : now.toISOString();
        return { type: c.type, status: "Unknown", reason, message, lastTransitionTime };
      });
      const stored = { ...status, conditions };
      this.#resources.set(key, stored);
      changed.push(stored);
    }
    return changed;
  }

  /** Forgets resources not in `keep` (they left Git and AD); returns what was removed. */
  retain(keep: ReadonlySet<string>): ResourceStatus[] {
    const removed: ResourceStatus[] = [];
    for (const [key, status] of this.#resources)
      if (!keep.has(key)) {
        this.#resources.delete(key);
        removed.push(status);
      }
    return removed;
  }

  /**
   * For a resource whose cycle summarises to its stored status again (publish.ts): when `expected`
   * is still the stored object, stores it with `revision` as its last applied one and returns it;
   * otherwise (something updated it since) undefined.
   */
  kept(expected: ResourceStatus, revision: string | null): ResourceStatus | undefined {
    const key = `${expected.kind}/${expected.name}`;
    if (this.#resources.get(key) !== expected) return undefined;
    if (expected.lastAppliedRevision === revision) return expected;
    const stored = { ...expected, lastAppliedRevision: revision };
    this.#resources.set(key, stored);
    return stored;
  }

  /**
   * The status as last summarised: its lastObservedAt is when that was, not the last cycle that
   * found it unchanged. What a new summary is compared with (notifications fire once per observation).
   */
  stored(kind: Kind, name: string): ResourceStatus | undefined {
    return this.#resources.get(`${kind}/${name}`);
  }

  get(kind: Kind, name: string): ResourceStatus | undefined {
    const s = this.#resources.get(`${kind}/${name}`);
    return s && this.#current(s);
  }

  /** Every resource, sorted by kind and name. */
  all(): ResourceStatus[] {
    return [...this.#resources.values()]
      .map(this.#current)
      .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind)));
  }
}
