/**
 * The loop's memory of failed writes, between cycles: a resource whose write the DC refused as
 * stalled is not written again until Git or the object in AD changes (other actions are
 * planned), or {@link STALLED_RETRY_MS} later, since what fixes a refusal may be elsewhere in AD
 * (a right granted, a parent OU created) where the plan cannot see it; one whose write failed
 * transiently backs off. Either gets a blocker saying so, carrying the failure, so its
 * conditions stay what they were.
 */
import { resourceKey } from "../vocabulary.ts";
import type { Action, Plan, ResourcePlan } from "./model.ts";
import type { Backoff } from "./schedule.ts";
import type { Attempt } from "./status.ts";

/** How long a write refused as stalled waits, at most, before it is tried again on an unchanged revision and object. */
export const STALLED_RETRY_MS = 3_600_000;

/** The planned writes of a resource, compared to tell "the same refused writes" from "AD changed". */
const fingerprint = (actions: readonly Action[]): string => JSON.stringify(actions);

/** Stalled and backing-off resources, and the gate that holds back their writes. */
export class FailureGate {
  readonly #backoff: Backoff;
  readonly #stalledAt = new Map<
    string,
    { readonly revision: string; readonly message: string; readonly actions: string; readonly at: number }
  >();

  constructor(backoff: Backoff) {
    this.#backoff = backoff;
  }

  /** A new revision releases every resource stalled at the old one. */
  newRevision(): void {
    this.#stalledAt.clear();
  }

  /** Forgets resources that left Git and AD. */
  retain(keep: ReadonlySet<string>): void {
    this.#backoff.retain(keep);
    for (const key of this.#stalledAt.keys()) if (!keep.has(key)) this.#stalledAt.delete(key);
  }

  /** When the earliest back-off is due, if any. */
  nextDue(now: number): number | undefined {
    return this.#backoff.nextDue(now);
  }

  /**
   * Holds back the actions of a resource whose write failed: as stalled until Git or the object changes, or
   * backing off until its back-off is due. The resource gets a blocker saying so (and carrying
   * the failure), so its conditions stay what they were, not "drifted, no actions".
   */
  hold(plan: Plan, now: number, revision: string | undefined): Plan {
    return {
      ...plan,
      resources: plan.resources.map((r): ResourcePlan => {
        if (r.actions.length === 0 || r.observeOnly) return r;
        const key = resourceKey(r.resource);
        const stalled = this.#stalledAt.get(key);
        const retryAt = (stalled?.at ?? 0) + STALLED_RETRY_MS;
        if (
          stalled !== undefined &&
          stalled.revision === revision &&
          stalled.actions === fingerprint(r.actions) &&
          now < retryAt
        )
          return {
            ...r,
            actions: [],
            blocker: {
              outcome: "stalled",
              reason: "ApplyFailed",
              message: `${stalled.message}; tried again when Git or this object in AD changes, or at the latest at ${new Date(retryAt).toISOString()}`,
              until: new Date(retryAt),
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

  /**
   * Remembers a resource's failed writes for the gate; returns when it is due again, if backing
   * off. A resource whose writes all went through, or that is in sync again without any (a person
   * fixed AD by hand), is forgotten: a later drift at the same revision is corrected at once.
   */
  remember(
    entry: ResourcePlan,
    attempts: readonly Attempt[],
    now: number,
    revision: string | undefined,
  ): number | undefined {
    const key = resourceKey(entry.resource);
    const stalled = attempts.find((r) => r.status === "failed" && r.outcome === "stalled");
    const failed = attempts.find((r) => r.status === "failed");
    if (stalled && revision !== undefined) {
      this.#stalledAt.set(key, {
        revision,
        message: stalled.message ?? "write refused",
        actions: fingerprint(entry.actions),
        at: now,
      });
      return undefined;
    }
    if (failed) return this.#backoff.failed(key, now, failed.message ?? "write failed");
    const inSync = attempts.length === 0 && entry.drift.size === 0 && entry.blocker === undefined;
    if (inSync || (attempts.length > 0 && attempts.every((r) => r.status === "applied"))) {
      this.#backoff.succeeded(key);
      this.#stalledAt.delete(key);
    }
    return undefined;
  }
}
