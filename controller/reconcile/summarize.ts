/**
 * The rules that derive a resource's status from one cycle (its plan entry, what its writes came
 * to) and its previous status: pure, the same for AD resources and host bindings. The status
 * shape and the store that keeps it across cycles are status.ts's.
 */
import type { ConditionReason } from "../vocabulary.ts";
import { NO_CORRECTIONS } from "./intern.ts";
import type { ResourcePlan } from "./model.ts";
import type { Cycle, Draft, LastDrift, ResourceStatus, Summary } from "./status.ts";

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
