/**
 * Runs requests on many hosts with bounded concurrency. Each host's failure is its own outcome:
 * an unreachable or slow host never holds up the others beyond its own timeout.
 */
import type { HostRequest, HostResult } from "./contract.ts";
import type { HostDriver, HostTarget } from "./driver.ts";
import type { HostError } from "./errors.ts";
import { toHostError } from "./errors.ts";

/** One host and what to ask it. */
export interface FleetJob {
  readonly target: HostTarget;
  readonly request: HostRequest;
}

/** What happened on one host. */
export type FleetOutcome =
  | { readonly target: HostTarget; readonly ok: true; readonly result: HostResult; readonly durationMs: number }
  | { readonly target: HostTarget; readonly ok: false; readonly error: HostError; readonly durationMs: number };

/** Bounds and hooks for runFleet. */
export interface FleetOptions {
  /** At most this many hosts at once (at least 1). */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
  /** Milliseconds clock, for durations; default performance.now. */
  readonly now?: () => number;
  /** Called as each host finishes (for metrics and logs), before runFleet resolves. */
  readonly onOutcome?: (outcome: FleetOutcome) => void;
}

/**
 * Runs every job through the driver, at most `concurrency` at a time, and resolves with one
 * outcome per job in the jobs' order. Never rejects: failures are outcomes.
 */
export async function runFleet(
  driver: HostDriver,
  jobs: readonly FleetJob[],
  options: FleetOptions,
): Promise<FleetOutcome[]> {
  const now = options.now ?? (() => performance.now());
  const outcomes = new Array<FleetOutcome>(jobs.length);
  let next = 0;

  async function worker(): Promise<void> {
    for (;;) {
      const index = next++;
      const job = jobs[index];
      if (job === undefined) return;
      const started = now();
      let outcome: FleetOutcome;
      try {
        const result = await driver.run(job.target, job.request, options.signal);
        outcome = { target: job.target, ok: true, result, durationMs: now() - started };
      } catch (e) {
        outcome = {
          target: job.target,
          ok: false,
          error: toHostError(job.target.host, e),
          durationMs: now() - started,
        };
      }
      outcomes[index] = outcome;
      options.onOutcome?.(outcome);
    }
  }

  const workers = Math.max(1, Math.min(Math.floor(options.concurrency), jobs.length));
  await Promise.all(Array.from({ length: workers }, () => worker()));
  return outcomes;
}
