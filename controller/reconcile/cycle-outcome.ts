/**
 * How a cycle's outcome is counted: the metric type of an applied action, and whether the cycle
 * was healthy (every write applied, every host answered, nothing stalled or failing).
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
