/**
 * Quiet cycles: a cycle whose every input is what the last planned cycle had (the same desired
 * state, the very same observed picture, the same write permission) and in which nothing the
 * plan reads from the clock has come due, would plan and summarise every resource to exactly
 * what it did last time. Such a cycle reuses that pass instead, so it costs what changed: the
 * fetch, the incremental read, the cycle's own metrics. docs/decisions/incremental-observe.md
 * says why this is exact.
 */
import { kdsState } from "../directory/index.ts";
import type { DesiredState } from "../manifests/index.ts";
import type { ObservedDirectory } from "./model.ts";
import type { PassResult } from "./pass.ts";
import type { Published } from "./publish.ts";

/** The last planned cycle, as far as a quiet one may reuse it. */
interface Memo {
  readonly desired: DesiredState;
  readonly observed: ObservedDirectory;
  readonly write: boolean;
  readonly pass: PassResult;
  readonly published: Published;
  readonly healthy: boolean;
  /** The first time the clock changes what plan, gate or status would say (ms); Infinity when never. */
  readonly until: number;
}

/** What a reused cycle publishes instead of summarising its resources. */
export interface QuietCycle {
  readonly nextAt: number | undefined;
  readonly healthy: boolean;
}

/** The memory of the last planned cycle; one per controller. */
export class QuietCycles {
  #last: Memo | undefined;

  /**
   * The last pass, when this cycle's inputs are the same objects and nothing is due by `now`;
   * otherwise undefined, and the memory is dropped (this cycle plans and publishes afresh).
   */
  reusable(desired: DesiredState, observed: ObservedDirectory, write: boolean, now: number): PassResult | undefined {
    const last = this.#last;
    if (last && last.desired === desired && last.observed === observed && last.write === write && now < last.until)
      return last.pass;
    this.#last = undefined;
    return undefined;
  }

  /** The cycle's publication when its pass was reused (quiet), else undefined. */
  reused(pass: PassResult): QuietCycle | undefined {
    const last = this.#last;
    return last?.pass === pass ? { nextAt: last.published.nextAt, healthy: last.healthy } : undefined;
  }

  /** Forgets the last cycle: the next one plans (a failed cycle may have left anything half done). */
  forget(): void {
    this.#last = undefined;
  }

  /**
   * Remembers a planned and published cycle for reuse, when reusing it is exact: it wrote nothing
   * (a write changes AD, and the gate's memory of failures), ran no host side (hosts are observed
   * every cycle) and planned no new KDS root key (its start time is the clock's). `gateDue` is the
   * gate's earliest back-off end.
   */
  remember(
    cycle: { desired: DesiredState; write: boolean; pass: PassResult; published: Published; healthy: boolean },
    now: number,
    gateDue: number | undefined,
  ): void {
    const { pass, published } = cycle;
    const observed = pass.observed;
    this.#last = undefined;
    if (!observed || pass.results.length > 0 || pass.aborted || pass.afterApply || pass.hosts) return;
    if (pass.plan.resources.some((r) => r.actions.some((a) => a.type === "create-kds-root-key"))) return;
    let until = Infinity;
    // Every time the clock alone changes a plan: a root key becoming effective (the forest's and
    // each KdsRootKey's own), a blocker's end (waiting, stalled retry, back-off), a back-off's end.
    for (const key of observed.kdsRootKeys) {
      const at = kdsState([key], new Date(now)).effectiveAt?.getTime();
      if (at !== undefined && at > now) until = Math.min(until, at);
    }
    for (const at of [published.nextAt, gateDue]) if (at !== undefined) until = Math.min(until, at);
    this.#last = { ...cycle, observed, until };
  }
}
