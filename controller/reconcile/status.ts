/**
 * Status per resource: a closed set of conditions (Ready, Reconciling, Stalled, plus
 * DriftDetected and ApplyFailed only while true), each with a CamelCase reason, a message and
 * the time it last changed. Summarised once per reconcile, in one place.
 */
import type { AttributeChange, DriftType, Kind, ResourcePlan } from "./model.ts";
import type { ActionResult } from "./apply.ts";

export type ConditionType = "Ready" | "Reconciling" | "Stalled" | "DriftDetected" | "ApplyFailed";

/** Reasons are members of a closed union, so dashboards and alerts can match them. */
export type ConditionReason =
  | "Reconciled"
  | "Progressing"
  | "DriftReported"
  | "DriftCorrected"
  | "ApplyFailed"
  | "RetryingAfterFailure"
  | "Suspended"
  | "DeletionPending"
  | "KdsRootKeyNotEffective"
  | "PrincipalNotFound"
  | "NotOwned"
  | "ImmutableFieldChanged"
  | "DependencyNotReady";

/** One condition as /api/status shows it. */
export interface Condition {
  readonly type: ConditionType;
  readonly status: "True" | "False";
  readonly reason: ConditionReason;
  readonly message: string;
  readonly lastTransitionTime: string;
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
  readonly lastObservedAt: string;
}

/** A condition before its transition time is known. */
export interface Draft {
  readonly type: ConditionType;
  readonly status: boolean;
  readonly reason: ConditionReason;
  readonly message: string;
}

/** Derives a resource's conditions from its plan entry and what apply did with it. */
export function conditionsFor(plan: ResourcePlan, results: readonly ActionResult[], executed: boolean): Draft[] {
  const failed = results.find((r) => r.status === "failed");
  const skipped = results.find((r) => r.status === "skipped");
  const drifted = plan.drift.size > 0;
  const drafts: Draft[] = [];
  const driftSummary = [...plan.drift].sort().join(", ");

  if (plan.blocker?.outcome === "stalled" || failed?.outcome === "stalled") {
    const reason = (plan.blocker?.reason ?? "ApplyFailed") as ConditionReason;
    const message = plan.blocker?.message ?? failed?.message ?? "";
    drafts.push({ type: "Ready", status: false, reason, message });
    drafts.push({ type: "Stalled", status: true, reason, message });
    drafts.push({ type: "Reconciling", status: false, reason, message: "waits for a change in Git" });
  } else if (failed || skipped) {
    const message = failed?.message ?? skipped?.message ?? "";
    drafts.push({ type: "Ready", status: false, reason: "RetryingAfterFailure", message });
    drafts.push({ type: "Stalled", status: false, reason: "RetryingAfterFailure", message: "" });
    drafts.push({ type: "Reconciling", status: true, reason: "RetryingAfterFailure", message });
  } else if (plan.blocker?.outcome === "waiting") {
    const reason = plan.blocker.reason as ConditionReason;
    drafts.push({ type: "Ready", status: false, reason, message: plan.blocker.message });
    drafts.push({ type: "Stalled", status: false, reason, message: "" });
    drafts.push({ type: "Reconciling", status: true, reason, message: plan.blocker.message });
  } else if (drifted && plan.observeOnly) {
    const message = `drift reported, not corrected (observe mode): ${driftSummary}`;
    drafts.push({ type: "Ready", status: false, reason: "DriftReported", message });
    drafts.push({ type: "Stalled", status: false, reason: "DriftReported", message: "" });
    drafts.push({ type: "Reconciling", status: false, reason: "DriftReported", message: "" });
  } else if (drifted && (!executed || plan.actions.length === 0)) {
    const note = plan.notes[0] ?? "drift not corrected in this run";
    drafts.push({ type: "Ready", status: false, reason: "DeletionPending", message: note });
    drafts.push({ type: "Stalled", status: false, reason: "DeletionPending", message: "" });
    drafts.push({ type: "Reconciling", status: true, reason: "DeletionPending", message: note });
  } else {
    const message = drifted ? `drift corrected: ${driftSummary}` : "in sync with Git";
    const reason: ConditionReason = drifted ? "DriftCorrected" : "Reconciled";
    drafts.push({ type: "Ready", status: true, reason, message });
    drafts.push({ type: "Stalled", status: false, reason, message: "" });
    drafts.push({ type: "Reconciling", status: false, reason, message: "" });
  }
  if (drifted)
    drafts.push({
      type: "DriftDetected",
      status: true,
      reason: plan.observeOnly ? "DriftReported" : "DriftCorrected",
      message: driftSummary,
    });
  if (failed) drafts.push({ type: "ApplyFailed", status: true, reason: "ApplyFailed", message: failed.message ?? "" });
  return drafts;
}

/**
 * Keeps conditions across reconciles so `lastTransitionTime` moves only when a condition's
 * status changes (as Kubernetes conditions do).
 */
export class StatusStore {
  readonly #resources = new Map<string, ResourceStatus>();

  /** Records a resource's new state; returns the stored status. */
  update(
    next: Omit<ResourceStatus, "conditions"> & { readonly conditions: readonly Draft[] },
    now: Date,
  ): ResourceStatus {
    const key = `${next.kind}/${next.name}`;
    const previous = this.#resources.get(key);
    const conditions = next.conditions.map((d): Condition => {
      const before = previous?.conditions.find((c) => c.type === d.type);
      const status = d.status ? "True" : "False";
      return {
        type: d.type,
        status,
        reason: d.reason,
        message: d.message,
        lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now.toISOString(),
      };
    });
    const stored: ResourceStatus = { ...next, conditions };
    this.#resources.set(key, stored);
    return stored;
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
    return this.#resources.get(`${kind}/${name}`);
  }

  /** Every resource, sorted by kind and name. */
  all(): ResourceStatus[] {
    return [...this.#resources.values()].sort((a, b) =>
      a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind),
    );
  }
}
