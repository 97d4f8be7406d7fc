/**
 * A source polled on its own interval (`--source-interval`), apart from the reconcile interval:
 * the directory can be checked for drift every few seconds without asking the Git host as often
 * (a process per poll, and a request to a host that may rate-limit). As Flux's GitRepository
 * interval and Argo CD's repository polling do, a verified webhook or a change in a watched
 * folder (`moved`) makes the very next cycle look, so the interval bounds only the latency of a
 * push nobody announced.
 */
import type { Snapshot } from "./snapshot.ts";

/** A source as the loop uses it (reconcile/revision.ts's Source). */
export interface PolledSource {
  sync(signal?: AbortSignal): Promise<Snapshot>;
  moved?(): void;
  readonly url: string;
}

/**
 * Wraps `source` so that a sync within `intervalMs` of the last successful poll returns that
 * poll's snapshot (the same object, with its own `fetchedAt`), unless `moved()` was called since
 * or the last poll failed. `now` is a monotonic clock in ms.
 */
export function polledEvery(
  source: PolledSource,
  intervalMs: number,
  now: () => number = () => performance.now(),
): PolledSource & { moved(): void } {
  let last: { snapshot: Snapshot; at: number } | undefined;
  // `moved()` calls so far, and how many of them the last successful poll had seen when it
  // started: one announced while a poll is under way is not answered by that poll.
  let asked = 0;
  let answered = -1;
  return {
    url: source.url,
    moved: () => {
      asked++;
      source.moved?.();
    },
    sync: async (signal) => {
      if (last !== undefined && answered === asked && now() - last.at < intervalMs) return last.snapshot;
      const started = asked;
      const at = now();
      try {
        const snapshot = await source.sync(signal);
        last = { snapshot, at };
        answered = started;
        return snapshot;
      } catch (error) {
        // Retried at the next cycle, not an interval later.
        answered = -1;
        throw error;
      }
    },
  };
}
