/**
 * Status per resource: a closed set of conditions (Ready, Reconciling, Stalled, plus
 * DriftDetected and ApplyFailed only while true), each with a CamelCase reason, a message and
 * the time it last changed, and the last drift seen with when it was corrected. One pure
 * `summarize` derives it for AD resources and host bindings alike, once per cycle.
 */
import type { ConditionReason, ConditionType, Kind, Outcome } from "../vocabulary.ts";
import { Interner, NO_CORRECTIONS } from "./intern.ts";
import type { AttributeChange, DriftType, ResourcePlan } from "./model.ts";

export type { ConditionReason, ConditionType } from "../vocabulary.ts";

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

function positive(reason: ConditionReason, ready: boolean, reconciling: boolean, stalled: boolean, message: string) {
  return [
    { type: "Ready", status: ready, reason, message },
    { type: "Stalled", status: stalled, reason, message: stalled ? message : "" },
    { type: "Reconciling", status: reconciling, reason, message: reconciling ? message : "" },
  ] satisfies Draft[];
}

/**
 * Derives a resource's status from its plan entry, what apply did with it, and its previous
 * status (for the last applied revision and the last drift). Pure. The rules, in order:
 * stalled (by the plan, the gate or a write) → Stalled; a transient failure or back-off →
 * Reconciling with RetryingAfterFailure; waiting for a known time → Reconciling with the
 * blocker's reason; drift not corrected → Ready=False saying why; otherwise Ready.
 */
export function summarize(cycle: Cycle, previous: ResourceStatus | undefined): Summary {
  const { entry, attempts, executed, now } = cycle;
  const failed = attempts.find((a) => a.status === "failed");
  const skipped = attempts.find((a) => a.status === "skipped");
  const blocker = entry.blocker;
  const drifted = entry.drift.size > 0;
  const driftSummary = [...entry.drift].sort().join(", ");
  const corrected =
    drifted &&
    executed &&
    !entry.observeOnly &&
    !blocker &&
    attempts.length > 0 &&
    attempts.every((a) => a.status === "applied");
  // An object that was never there, created now, is Git getting ahead of AD, not drift undone:
  // no DriftCorrected, no correction counted. One deleted by hand after it was applied is drift.
  const created =
    corrected && entry.drift.size === 1 && entry.drift.has("missing") && previous?.lastAppliedRevision == null;
  const when = blocker?.until ? ` (next attempt at ${blocker.until.toISOString()})` : "";
  let conditions: Draft[];
  if (blocker?.outcome === "stalled" || failed?.outcome === "stalled") {
    const reason = blocker?.reason ?? "ApplyFailed";
    conditions = positive(reason, false, false, true, blocker?.message ?? failed?.message ?? "");
  } else if (failed || skipped || blocker?.outcome === "backing-off") {
    const message = (failed?.message ?? skipped?.message ?? blocker?.message ?? "") + when;
    conditions = positive("RetryingAfterFailure", false, true, false, message);
  } else if (blocker?.outcome === "waiting") {
    conditions = positive(blocker.reason, false, true, false, blocker.message + when);
  } else if (drifted && !corrected) {
    const prunable = entry.drift.has("unexpected") && entry.actions.length === 0;
    const why = entry.observeOnly ? "observe mode" : executed ? (entry.notes[0] ?? "no action planned") : "plan only";
    conditions = positive(
      prunable ? "PruneDisabled" : "DriftReported",
      false,
      false,
      false,
      `drift reported, not corrected (${why}): ${driftSummary}`,
    );
  } else if (created) {
    conditions = positive("Created", true, false, false, "created from Git");
  } else {
    conditions = positive(
      corrected ? "DriftCorrected" : "Reconciled",
      true,
      false,
      false,
      corrected ? `drift corrected: ${driftSummary}` : "in sync with Git",
    );
  }
  if (drifted && !created)
    conditions.push({
      type: "DriftDetected",
      status: true,
      reason: corrected ? "DriftCorrected" : "DriftReported",
      // The notes say where (a host binding's folder and the rights it lacks), not only what kind.
      message: entry.notes.length > 0 ? `${driftSummary}: ${entry.notes.join("; ")}` : driftSummary,
    });
  const failure = failed?.message ?? blocker?.failure;
  if (failure !== undefined)
    conditions.push({ type: "ApplyFailed", status: true, reason: "ApplyFailed", message: failure });

  const clean = !blocker && !failed && !skipped && (!drifted || corrected);
  const at = now.toISOString();
  return {
    conditions,
    drift: [...entry.drift].sort(),
    changes: entry.changes,
    observeOnly: entry.observeOnly,
    lastAppliedRevision: clean && executed ? cycle.revision : (previous?.lastAppliedRevision ?? null),
    lastObservedAt: at,
    lastDrift: created
      ? previous?.lastDrift?.correctedAt
        ? previous.lastDrift
        : null
      : drifted
        ? lastDrift(entry, previous?.lastDrift ?? null, at, corrected)
        : (previous?.lastDrift ?? null),
    corrections:
      corrected && !created
        ? { count: (previous?.corrections.count ?? 0) + 1, since: previous?.corrections.since ?? at }
        : (previous?.corrections ?? NO_CORRECTIONS),
    nextAttemptAt: (blocker?.until ?? cycle.retryAt)?.toISOString() ?? null,
  };
}

/** The drift of this cycle; still the same uncorrected drift as before keeps its first observation time. */
function lastDrift(entry: ResourcePlan, before: LastDrift | null, at: string, corrected: boolean): LastDrift {
  const drift = [...entry.drift].sort();
  const same = before !== null && before.correctedAt === null && before.drift.join() === drift.join();
  return {
    drift,
    changes: entry.changes,
    observedAt: same ? before.observedAt : at,
    correctedAt: corrected ? at : null,
  };
}

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
