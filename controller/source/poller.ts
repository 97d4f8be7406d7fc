/**
 * A generic schedule for periodic work: run, wait an interval with jitter, run again; run at
 * once on `trigger()` (a webhook, a file change); never two runs at the same time.
 */

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
  const fraction = options.jitterFraction ?? 0.1;
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
