/**
 * apply: the only writer. Executes a plan's actions in order through a narrow directory port,
 * continuing past a failed resource to those that do not depend on it.
 */
import type { DirectoryWriter, OwnershipKey } from "../directory/index.ts";
import { execute } from "./execute.ts";
import type { Action, Outcome, Plan, PrincipalTarget, ResourceRef } from "./model.ts";

/** The result of one action. */
export interface ActionResult {
  readonly action: Action;
  readonly status: "applied" | "failed" | "skipped";
  /** For failures: the typed outcome, decided by the writer's error type. */
  readonly outcome?: Outcome;
  readonly message?: string;
  /** How long the action's writes took, in seconds (absent when it was skipped unsent). */
  readonly seconds?: number;
}

/** Everything apply did. */
export interface ApplyResult {
  readonly results: readonly ActionResult[];
  /** True when the signal stopped apply between two actions. */
  readonly aborted: boolean;
}

/** Options: clock, ownership key, cancellation, and a hook called after each action (metrics, logs). */
export interface ApplyOptions {
  readonly now: Date;
  /** Marks what apply creates (the marker is bound to the new object's objectGUID). */
  readonly owner: OwnershipKey;
  readonly signal?: AbortSignal;
  readonly onResult?: (result: ActionResult) => void;
}

/** Classifies an error thrown by the writer; the directory's errors carry `outcome`. */
function outcomeOf(error: unknown): Outcome {
  if (typeof error === "object" && error !== null && "outcome" in error) {
    const o = error.outcome;
    if (o === "stalled" || o === "waiting" || o === "transient") return o;
  }
  return "transient";
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const key = (r: ResourceRef): string => `${r.kind}/${r.name}`;

/**
 * Executes the plan. Observe-only resources are never written. A failed action marks its
 * resource failed: its later actions, and actions of resources that name it as a principal
 * or member, are skipped (reported as such); everything else goes on. The signal is checked
 * between actions, so the action in flight always completes.
 */
export async function applyPlan(plan: Plan, writer: DirectoryWriter, options: ApplyOptions): Promise<ApplyResult> {
  const { owner } = options;
  const results: ActionResult[] = [];
  const failed = new Set<string>();
  /** Repo groups created in this run: name → DN and SID. */
  const created = new Map<string, { dn: string; sid: string }>();
  let aborted = false;

  const record = (r: ActionResult): void => {
    results.push(r);
    options.onResult?.(r);
  };

  const resolve = (targets: readonly PrincipalTarget[]): { dn: string | undefined; sid: string }[] =>
    targets.map((t) => {
      if (t.type === "object") return { dn: t.dn, sid: t.sid };
      if (t.type === "sid") return { dn: undefined, sid: t.sid };
      const c = created.get(t.name);
      if (!c) throw new DependencyError(t.name);
      return c;
    });

  for (const resourcePlan of plan.resources) {
    if (resourcePlan.observeOnly) continue;
    for (const action of resourcePlan.actions) {
      if (options.signal?.aborted) {
        aborted = true;
        break;
      }
      const k = key(action.resource);
      const deps = dependencies(action);
      const blockedBy = failed.has(k) ? k : deps.find((d) => failed.has(`ADGroup/${d}`));
      if (blockedBy !== undefined) {
        record({ action, status: "skipped", message: `skipped: ${blockedBy} failed earlier in this run` });
        failed.add(k);
        continue;
      }
      const started = performance.now();
      const seconds = (): number => (performance.now() - started) / 1000;
      try {
        await execute(action, writer, { owner, now: options.now, resolve, created });
        record({ action, status: "applied", seconds: seconds() });
      } catch (error) {
        failed.add(k);
        if (error instanceof DependencyError) {
          record({ action, status: "skipped", message: error.message });
        } else {
          record({
            action,
            status: "failed",
            outcome: outcomeOf(error),
            message: messageOf(error),
            seconds: seconds(),
          });
        }
      }
    }
    if (aborted) break;
  }
  return { results, aborted };
}

class DependencyError extends Error {
  constructor(group: string) {
    super(`skipped: ADGroup/${group} does not exist yet`);
  }
}

/** Repo groups an action needs to exist. */
function dependencies(action: Action): string[] {
  const targets: readonly PrincipalTarget[] =
    action.type === "create-gmsa" || action.type === "update-gmsa"
      ? [...(action.principals ?? []), ...(action.delegators ?? [])]
      : action.type === "add-members"
        ? action.members
        : action.type === "create-group" || action.type === "update-group"
          ? action.managedBy
            ? [action.managedBy]
            : []
          : [];
  return targets.flatMap((t) => (t.type === "repo-group" ? [t.name] : []));
}
