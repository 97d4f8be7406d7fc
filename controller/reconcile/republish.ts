/**
 * What a cycle's publication keeps from the last one: a resource whose plan entry is the very
 * same object as when its status was last summarised (the diff memo hands out the same entry
 * while nothing the resource reads changed), with no write this cycle, summarises to the same
 * status again but for when it was observed and, when clean, the revision last applied. So
 * such a resource is not summarised again, and its per-resource series are not set again (they
 * would get the same values). Likewise each gMSA's password series, while its object in AD is
 * the same. docs/decisions/incremental-observe.md says why this is exact.
 */
import type { DesiredState } from "../manifests/index.ts";
import type { MetricsRecorder } from "../metrics/index.ts";
import type { ObservedGmsa } from "../directory/index.ts";
import type { ObservedDirectory, ResourcePlan } from "./model.ts";
import { passwordSchedule } from "./rotation.ts";
import type { ResourceStatus, StatusStore } from "./status.ts";

interface Last {
  readonly entry: ResourcePlan;
  readonly executed: boolean;
  readonly status: ResourceStatus;
}

/** The entries each resource's status was last summarised from, without a write; one per publisher. */
export class UnchangedResources {
  #last = new Map<string, Last>();

  /**
   * The resource's status, kept, when `entry` is the one its stored status was summarised from
   * with nothing written, under the same `executed` and from the same place in Git: only its
   * last applied revision can move (to `revision`, when in sync and executed). Undefined when it
   * must be summarised.
   */
  reuse(
    key: string,
    cycle: { entry: ResourcePlan; executed: boolean; source: ResourceStatus["source"]; revision: string | null },
    statuses: StatusStore,
  ): ResourceStatus | undefined {
    const last = this.#last.get(key);
    if (last?.entry !== cycle.entry || last.executed !== cycle.executed) return undefined;
    const before = last.status.source;
    if (before?.file !== cycle.source?.file || before?.line !== cycle.source?.line) return undefined;
    const clean = cycle.entry.blocker === undefined && cycle.entry.drift.size === 0;
    const kept = statuses.kept(last.status, clean && cycle.executed ? cycle.revision : last.status.lastAppliedRevision);
    if (kept) this.#last.set(key, { ...last, status: kept });
    else this.#last.delete(key);
    return kept;
  }

  /**
   * Remembers what a status was summarised from; only a cycle with no write and no retry time
   * summarises to itself again (summarize's fixed point: status.ts).
   */
  summarised(key: string, last: Last, writes: number, retryAt: number | undefined): void {
    if (writes === 0 && retryAt === undefined) this.#last.set(key, last);
    else this.#last.delete(key);
  }

  /** Forgets resources not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.#last.keys()) if (!keep.has(key)) this.#last.delete(key);
  }
}

/** Each gMSA's password countdown and its last and next change, as metrics, set again only when its object changed. */
export class PasswordSeries {
  #last = new Map<string, ObservedGmsa | undefined>();

  /** Its series were removed (the resource left the status): set them again next time. */
  forget(name: string): void {
    this.#last.delete(name);
  }

  publish(metrics: MetricsRecorder, desired: DesiredState, observed: ObservedDirectory): void {
    const observedBySam = new Map(observed.gmsas.map((g) => [g.samAccountName.toLowerCase(), g]));
    const next = new Map<string, ObservedGmsa | undefined>();
    for (const g of desired.gmsas.values()) {
      const object = observedBySam.get(g.spec.accountName.toLowerCase());
      next.set(g.name, object);
      if (this.#last.has(g.name) && this.#last.get(g.name) === object) continue;
      const schedule = passwordSchedule(object);
      metrics.setPasswordChangeAt(g.name, schedule?.next);
      metrics.setPasswordTimes(g.name, schedule);
    }
    this.#last = next;
  }
}
