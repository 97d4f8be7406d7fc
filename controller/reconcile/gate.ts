/**
 * The loop's gate in front of apply: resources whose last write failed get no actions until
 * they may be tried again, as stalled (until the revision in Git changes) or backing off (until
 * their back-off is due). The resource gets a blocker saying so and carrying the failure, so its
 * conditions stay what they were, not "drifted, no actions".
 */
import { resourceKey } from "../vocabulary.ts";
import type { ActionResult } from "./apply.ts";
import type { Plan, ResourcePlan } from "./model.ts";
import { Backoff } from "./schedule.ts";

/** Remembers failed writes per resource and holds their next actions back. */
export class WriteGate {
  readonly #backoff: Backoff;
  /** Resources whose write failed as stalled, with the revision it failed at: no retry before Git changes. */
  readonly #stalledAt = new Map<string, { readonly revision: string; readonly message: string }>();

  constructor(random: () => number) {
    this.#backoff = new Backoff(random);
  }

  /** A new revision releases every resource stalled at the old one. */
  newRevision(): void {
    this.#stalledAt.clear();
  }

  /** Forgets the resources that left Git and AD. */
  retain(keep: ReadonlySet<string>): void {
    this.#backoff.retain(keep);
    for (const key of this.#stalledAt.keys()) if (!keep.has(key)) this.#stalledAt.delete(key);
  }

  /** The earliest time a backing-off resource is due again. */
  nextDue(now: number): number | undefined {
    return this.#backoff.nextDue(now);
  }

  /** The plan with the actions of stalled and backing-off resources held back. */
  gate(plan: Plan, revision: string | undefined, now: number): Plan {
    return {
      ...plan,
      resources: plan.resources.map((r): ResourcePlan => {
        if (r.actions.length === 0 || r.observeOnly) return r;
        const key = resourceKey(r.resource);
        const stalled = this.#stalledAt.get(key);
        if (stalled !== undefined && stalled.revision === revision)
          return {
            ...r,
            actions: [],
            blocker: {
              outcome: "stalled",
              reason: "ApplyFailed",
              message: `${stalled.message}; not retried until the revision in Git changes`,
              failure: stalled.message,
            },
          };
        const backoff = this.#backoff.pending(key, now);
        if (backoff !== undefined)
          return {
            ...r,
            actions: [],
            blocker: {
              outcome: "backing-off",
              reason: "RetryingAfterFailure",
              message: backoff.message,
              until: new Date(backoff.dueAt),
              failure: backoff.message,
            },
          };
        return r;
      }),
    };
  }

  /** Remembers a resource's failed writes; returns when it is due again, if backing off. */
  remember(
    key: string,
    results: readonly ActionResult[],
    revision: string | undefined,
    now: number,
  ): number | undefined {
    const stalled = results.find((r) => r.status === "failed" && r.outcome === "stalled");
    const failed = results.find((r) => r.status === "failed");
    if (stalled && revision !== undefined) {
      this.#stalledAt.set(key, { revision, message: stalled.message ?? "write refused" });
      return undefined;
    }
    if (failed) return this.#backoff.failed(key, now, failed.message ?? "write failed");
    if (results.length > 0 && results.every((r) => r.status === "applied")) {
      this.#backoff.succeeded(key);
      this.#stalledAt.delete(key);
    }
    return undefined;
  }
}
