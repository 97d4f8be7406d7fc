/**
 * How a cycle's outcome is counted: the metric type of an applied action, whether the cycle
 * was healthy (every write applied, every host answered, nothing stalled or failing), and whether
 * the controller is ready after it.
 */
import type { ActionType } from "../metrics/index.ts";
import type { Action } from "./model.ts";
import type { PassResult } from "./pass.ts";
import type { StatusStore } from "./status.ts";

/** The action's type in `gmsa_gitops_actions_total`. */
export function metricAction(action: Action): ActionType {
  switch (action.type) {
    case "create-gmsa":
    case "create-smsa":
    case "create-group":
    case "create-kds-root-key":
      return "create";
    case "add-members":
      return "add-member";
    case "remove-members":
      return "remove-member";
    case "delete":
      return "delete";
    default:
      return "update";
  }
}

/**
 * True when every action applied, every host answered and no resource is stalled or failing:
 * a cycle that leaves a resource Stalled or ApplyFailed counts as `partial`, not `success`.
 */
export function cycleHealthy(pass: PassResult, statuses: StatusStore): boolean {
  if (pass.aborted || pass.afterApply) return false;
  if (pass.results.some((r) => r.status !== "applied")) return false;
  if (pass.hosts?.hosts.some((h) => !h.reachable)) return false;
  return statuses
    .all()
    .every((s) => !s.conditions.some((c) => (c.type === "Stalled" || c.type === "ApplyFailed") && c.status === "True"));
}

/**
 * Failed cycles in a row after which `/readyz` says not ready, whatever failed. A cycle that
 * cannot observe AD makes it not ready at once (its conditions are Unknown); this catches the
 * rest (a fault after observing), without flapping on one bad cycle.
 */
export const READY_FAILURE_LIMIT = 3;

/**
 * Why `/readyz` says not ready, with the last cycle's error as `/api/status` shows it; undefined
 * when ready: once one reconcile has run to the end (success or partial), and not again while AD
 * cannot be observed (the conditions are Unknown) or after {@link READY_FAILURE_LIMIT} failed
 * cycles in a row, until a cycle completes.
 */
export function notReadyReason(state: {
  readonly completed: boolean;
  readonly unobserved: boolean;
  readonly failedInARow: number;
  readonly error: string | null;
}): string | undefined {
  const last = state.error !== null ? `: ${state.error}` : "";
  if (!state.completed) return `no reconcile has completed yet${last ? `; the last one failed${last}` : ""}`;
  if (state.unobserved) return `Active Directory could not be observed${last}`;
  if (state.failedInARow >= READY_FAILURE_LIMIT) return `${state.failedInARow} reconciles failed in a row${last}`;
  return undefined;
}
