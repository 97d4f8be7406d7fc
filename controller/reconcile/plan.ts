/**
 * plan: drift + policy → the actions apply will execute. Pure. This is where the safety
 * rules live: observe mode, opt-in prune, the per-run deletion budget, and the refusal to
 * prune on a revision with no manifests.
 */
import { kdsState } from "../directory/index.ts";
import type { OwnershipKey } from "../directory/index.ts";
import type { DesiredState } from "../manifests/index.ts";
import { diffDirectory } from "./diff/index.ts";
import type { DiffMemo, ResourceDiff } from "./diff/index.ts";
import type { Action, Blocker, ObservedDirectory, Plan, ResourcePlan } from "./model.ts";

/** How the controller may act. */
export interface Policy {
  /** Global mode; a resource's `spec.mode` overrides it. */
  readonly mode: "enforce" | "observe";
  /** Delete marked objects that left the repository. Off unless asked for. */
  readonly prune: boolean;
  /** At most this many deletions per run (replacements included). */
  readonly deletionBudget: number;
  /** Take over unmarked objects with a managed name instead of reporting a conflict. */
  readonly adopt: boolean;
  /** Makes and checks the ownership marker in adminDescription (owner id + key). */
  readonly owner: OwnershipKey;
}

function resourceCount(desired: DesiredState): number {
  return (
    desired.gmsas.size + desired.smsas.size + desired.groups.size + desired.bindings.size + desired.kdsRootKeys.size
  );
}

/** Applies policy to a diff. */
function planFromDiff(
  diffs: readonly ResourceDiff[],
  desired: DesiredState,
  observed: ObservedDirectory,
  policy: Policy,
  now: Date,
  memo: DiffMemo | undefined,
): Plan {
  const notes: string[] = [];
  const emptyRevision = resourceCount(desired) === 0;
  if (emptyRevision && diffs.some((d) => d.prunable))
    notes.push("the revision has no manifests: prune is refused, nothing is deleted");
  let budget = policy.deletionBudget;
  const resources: ResourcePlan[] = [];
  // The memo's entries: a diff reused from the last plan, under the same policy and with no
  // deletion (the budget is shared), gives the very same plan entry, so later steps can tell.
  const shape = `${policy.mode}\0${policy.prune}\0${emptyRevision}`;
  for (const d of diffs) {
    const same = memo?.planned.get(d);
    if (same?.shape === shape) {
      resources.push(same.entry);
      continue;
    }
    const observeOnly = (d.mode ?? (policy.mode === "observe" ? "Observe" : "Enforce")) === "Observe";
    const resourceNotes = [...d.notes];
    let blocker: Blocker | undefined = d.blocker;
    // Blocked means no write: a resource the diff blocks (a missing principal, a conflict) gets
    // none of its actions, not even the ones that could go through.
    let actions: readonly Action[] = blocker ? [] : d.fixes;
    if (d.prunable) {
      if (!policy.prune) {
        resourceNotes.push("marked as created by gmsa-gitops but no longer in Git: deleted only with --prune");
        actions = [];
      } else if (emptyRevision) {
        blocker = {
          outcome: "stalled",
          reason: "PruneRefused",
          message: "the revision has no manifests: prune is refused, nothing is deleted",
        };
        actions = [];
      }
    }
    const deletions = actions.filter((a) => a.type === "delete").length;
    if (deletions > 0 && !observeOnly) {
      if (deletions > budget) {
        // A replacement is all or nothing: without its delete, its create would collide.
        blocker = {
          outcome: "waiting",
          reason: "DeletionBudgetExhausted",
          message: `deferred: the deletion budget of ${policy.deletionBudget} per run is used up`,
        };
        actions = [];
      } else {
        budget -= deletions;
      }
    }
    // The diff's entry becomes the plan's: fixes give way to the actions policy allows.
    const { fixes: _fixes, prunable: _prunable, mode: _mode, blocker: _blocker, ...found } = d;
    const entry: ResourcePlan = {
      ...found,
      actions,
      observeOnly,
      ...(blocker ? { blocker } : {}),
      notes: resourceNotes,
    };
    resources.push(entry);
    if (memo && !d.fixes.some((a) => a.type === "delete")) memo.planned.set(d, { shape, entry });
  }
  return { resources, kds: kdsState(observed.kdsRootKeys, now), notes };
}

/**
 * diff + plan in one call: what `gmsa-gitops plan` prints and `apply` executes. `memo` (the
 * loop's) reuses the last plan's diff of each resource whose inputs did not change: the same plan.
 */
export function planDirectory(
  desired: DesiredState,
  observed: ObservedDirectory,
  policy: Policy,
  now: Date,
  memo?: DiffMemo,
): Plan {
  const diffs = diffDirectory(desired, observed, { now, adopt: policy.adopt, owner: policy.owner }, memo);
  return planFromDiff(diffs, desired, observed, policy, now, memo);
}
