/**
 * Scheduling, in one place: the poller (run, wait an interval with jitter, run again; run at once
 * on `trigger()`, a webhook or a file change; never two runs at the same time), jitter, the one
 * exponential back-off formula (a failed cycle, a refused bind, a resource's writes), and the
 * per-resource back-off the loop's gate consults.
 */

/** How far a poll interval is moved either way, unless the caller says otherwise: ± 10 %. */
export const JITTER_FRACTION = 0.1;

/** The first retry after a failure: 5 s (a failed cycle, a resource's failed write). */
export const BACKOFF_BASE_MS = 5_000;

/**
 * The wait before attempt `failures + 1`: `baseMs` doubled per failure after the first, never
 * over `capMs` (the exponent is bounded, so many failures cannot overflow to Infinity).
 */
export function exponentialBackoff(failures: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
}

/**
 * `intervalMs` moved by up to ± `fraction` of itself (fraction clamped to [0, 1]), rounded,
 * never negative. Spreads many controllers' polls so they do not hit the Git server together.
 */
export function jitter(intervalMs: number, fraction: number, random: () => number = Math.random): number {
  const spread = Math.min(Math.max(fraction, 0), 1);
  return Math.max(0, Math.round(intervalMs * (1 + spread * (2 * random() - 1))));
}

/**
 * The work a poller runs. It receives a signal that aborts when the poller stops. It may return
 * the delay in ms before the next run (e.g. a backoff after a failure); otherwise the next run
 * comes after the jittered interval.
 */
export type PollerTask = (signal: AbortSignal) => Promise<number | void>;

/** Options of `createPoller`. */
export interface PollerOptions {
  /** Time between the end of one run and the start of the next. */
  intervalMs: number;
  /** Jitter as a fraction of the interval; default 0.1 (± 10 %). */
  jitterFraction?: number;
  /** Aborting it stops the poller, as `stop()` does. */
  signal?: AbortSignal;
  /** Receives what a run threw; the poller goes on at the normal interval. */
  onError?: (error: unknown) => void;
  /** Source of randomness for the jitter (tests pass a fixed one). */
  random?: () => number;
}

/** A running schedule. */
export interface Poller {
  /**
   * Asks for a run now. If a run is under way, exactly one more follows it as soon as it ends,
   * however many triggers arrived meanwhile (they all asked about the same, newer state).
   */
  trigger(): void;
  /** Stops scheduling, aborts the current run's signal and resolves once that run has ended. */
  stop(): Promise<void>;
}

/** Starts `task` at once, then on the schedule described by `options`. */
export function createPoller(task: PollerTask, options: PollerOptions): Poller {
  const fraction = options.jitterFraction ?? JITTER_FRACTION;
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let pending = false;
  let stopped = false;

  function arm(delayMs: number): void {
    clearTimeout(timer);
    timer = setTimeout(fire, delayMs);
  }

  function fire(): void {
    timer = undefined;
    if (stopped) return;
    if (running) {
      pending = true;
      return;
    }
    running = (async () => {
      let next: number | void = undefined;
      try {
        next = await task(controller.signal);
      } catch (error: unknown) {
        if (!stopped) options.onError?.(error);
      }
      running = undefined;
      if (stopped) return;
      if (pending) {
        pending = false;
        arm(0);
      } else {
        arm(typeof next === "number" ? Math.max(0, next) : jitter(options.intervalMs, fraction, options.random));
      }
    })();
  }

  async function stop(): Promise<void> {
    stopped = true;
    clearTimeout(timer);
    timer = undefined;
    controller.abort();
    await running;
  }

  if (options.signal?.aborted) {
    stopped = true;
  } else {
    options.signal?.addEventListener("abort", () => void stop(), { once: true });
    fire();
  }

  return {
    trigger(): void {
      if (stopped) return;
      if (running) {
        pending = true;
        return;
      }
      clearTimeout(timer);
      fire();
    },
    stop,
  };
}

const BACKOFF_MAX_MS = 5 * 60_000;

/**
 * Exponential back-off per key (5 s doubling to 5 min, ± 20 % jitter), remembering the failure
 * that caused it; `succeeded` forgets the key.
 */
export class Backoff {
  readonly #state = new Map<string, { failures: number; dueAt: number; message: string }>();
  readonly #random: () => number;
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** The pending back-off of a key, if it is not yet due at `now`. */
  pending(key: string, now: number): { readonly dueAt: number; readonly message: string } | undefined {
    const s = this.#state.get(key);
    return s !== undefined && s.dueAt > now ? s : undefined;
  }
  /** Records one more failure; returns when the next attempt is due. */
  failed(key: string, now: number, message: string): number {
    const failures = (this.#state.get(key)?.failures ?? 0) + 1;
    const delay = exponentialBackoff(failures, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
    const dueAt = now + jitter(delay, 0.2, this.#random);
    this.#state.set(key, { failures, dueAt, message });
    return dueAt;
  }
  succeeded(key: string): void {
    this.#state.delete(key);
  }
  /** Forgets every key not in `keep` (resources that left Git). */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.#state.keys()) if (!keep.has(key)) this.#state.delete(key);
  }
  /** The earliest due time after `now`, if any. */
  nextDue(now: number): number | undefined {
    let next: number | undefined;
    for (const s of this.#state.values()) if (s.dueAt > now && (next === undefined || s.dueAt < next)) next = s.dueAt;
    return next;
  }
}
