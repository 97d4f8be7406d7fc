/**
 * Equal values stored once, for the status store (status.ts): strings, drift lists, conditions
 * and lists of conditions.
 */
import type { Condition, LastDrift, ResourceStatus } from "./status.ts";
import type { DriftType } from "./model.ts";

/** What a resource never corrected has: one frozen value shared by all of them. */
export const NO_CORRECTIONS: ResourceStatus["corrections"] = Object.freeze({ count: 0, since: null });

/** Most distinct values an intern table holds before it starts over (bounds its memory). */
const INTERN_LIMIT = 10_000;

/**
 * One stored copy of equal values: at 50,000 resources nearly every status repeats the same
 * conditions, drift lists and times, and fresh copies per resource held about 1.1 KB each.
 * Shared values are frozen. Tables start over when full, so values unique to each resource
 * (a message naming it) cost a lookup, never unbounded memory.
 */
export class Interner {
  #strings = new Map<string, string>();
  #conditions = new Map<string, Condition>();
  #lists = new Map<string, readonly Condition[]>();
  #drifts = new Map<string, readonly DriftType[]>();

  #get<T>(table: Map<string, T>, key: string, make: () => T): T {
    let found = table.get(key);
    if (found === undefined) {
      if (table.size >= INTERN_LIMIT) table.clear();
      found = make();
      table.set(key, found);
    }
    return found;
  }

  string<S extends string | null>(value: S): S {
    return value === null ? value : (this.#get(this.#strings, value, () => value) as S);
  }

  drift(list: readonly DriftType[]): readonly DriftType[] {
    return this.#get(this.#drifts, list.join(), () => Object.freeze([...list]));
  }

  conditions(list: readonly Condition[]): readonly Condition[] {
    const keys = list.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime, c.message].join("\u0000"));
    const shared = list.map((c, i) =>
      this.#get(this.#conditions, keys[i]!, () =>
        Object.freeze({ ...c, message: this.string(c.message), lastTransitionTime: this.string(c.lastTransitionTime) }),
      ),
    );
    return this.#get(this.#lists, keys.join("\u0001"), () => Object.freeze(shared));
  }

  lastDrift(d: LastDrift | null): LastDrift | null {
    if (d === null) return null;
    const drift = this.drift(d.drift);
    const observedAt = this.string(d.observedAt);
    const correctedAt = this.string(d.correctedAt);
    if (drift === d.drift && observedAt === d.observedAt && correctedAt === d.correctedAt) return d;
    return { ...d, drift, observedAt, correctedAt };
  }

  /** A status to store, its repeated parts shared (a last drift unchanged since `previous` is kept as is). */
  status(next: ResourceStatus, previous: ResourceStatus | undefined): ResourceStatus {
    return {
      ...next,
      conditions: this.conditions(next.conditions),
      drift: this.drift(next.drift),
      lastObservedAt: this.string(next.lastObservedAt),
      lastDrift: next.lastDrift === previous?.lastDrift ? next.lastDrift : this.lastDrift(next.lastDrift),
      nextAttemptAt: this.string(next.nextAttemptAt),
    };
  }
}
