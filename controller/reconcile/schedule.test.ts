import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPoller, exponentialBackoff, jitter } from "./schedule.ts";

describe("jitter", () => {
  it("spreads the interval by at most the fraction either way", () => {
    expect(jitter(60_000, 0.1, () => 0)).toBe(54_000);
    expect(jitter(60_000, 0.1, () => 0.5)).toBe(60_000);
    expect(jitter(60_000, 0.1, () => 0.999_999)).toBe(66_000);
  });

  it("clamps the fraction so the result is never negative", () => {
    expect(jitter(1000, 5, () => 0)).toBe(0);
    expect(jitter(1000, -1, () => 0)).toBe(1000);
  });
});

/** A task whose runs are started and finished by the test. */
function controllableTask() {
  const runs: Array<{ finish: (next?: number) => void; signal: AbortSignal }> = [];
  let active = 0;
  let maxActive = 0;
  const task = (signal: AbortSignal) =>
    new Promise<number | void>((resolve) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      runs.push({
        signal,
        finish: (next) => {
          active -= 1;
          resolve(next);
        },
      });
    });
  return { task, runs, maxActive: () => maxActive };
}

describe("createPoller", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs at once, then again one jittered interval after each run ends", async () => {
    const { task, runs } = controllableTask();
    const poller = createPoller(task, { intervalMs: 1000, jitterFraction: 0.2, random: () => 1 });
    expect(runs).toHaveLength(1);
    runs[0]?.finish();
    await vi.advanceTimersByTimeAsync(1199);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2);
    runs[1]?.finish();
    await poller.stop();
  });

  it("a trigger while idle runs now instead of waiting for the interval", async () => {
    const { task, runs } = controllableTask();
    const poller = createPoller(task, { intervalMs: 60_000, random: () => 0.5 });
    runs[0]?.finish();
    await vi.advanceTimersByTimeAsync(10);
    poller.trigger();
    expect(runs).toHaveLength(2);
    runs[1]?.finish();
    await poller.stop();
  });

  it("triggers during a run cause exactly one more run after it, never two at once", async () => {
    const { task, runs, maxActive } = controllableTask();
    const poller = createPoller(task, { intervalMs: 60_000, random: () => 0.5 });
    poller.trigger();
    poller.trigger();
    poller.trigger();
    expect(runs).toHaveLength(1);
    runs[0]?.finish();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toHaveLength(2);
    runs[1]?.finish();
    await vi.advanceTimersByTimeAsync(59_000);
    expect(runs).toHaveLength(2);
    expect(maxActive()).toBe(1);
    await poller.stop();
  });

  it("a delay returned by the task (a backoff) replaces the interval once", async () => {
    const { task, runs } = controllableTask();
    const poller = createPoller(task, { intervalMs: 60_000, random: () => 0.5 });
    runs[0]?.finish(5000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toHaveLength(2);
    runs[1]?.finish();
    await vi.advanceTimersByTimeAsync(59_999);
    expect(runs).toHaveLength(2);
    await poller.stop();
  });

  it("a failing run is reported and the schedule goes on", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const poller = createPoller(
      () => {
        calls += 1;
        return Promise.reject(new Error(`boom ${calls}`));
      },
      { intervalMs: 1000, jitterFraction: 0, onError: (e) => errors.push(e) },
    );
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(["boom 1", "boom 2"]);
    await poller.stop();
  });

  it("stop aborts the running task's signal, waits for it, and nothing runs afterwards", async () => {
    const { task, runs } = controllableTask();
    const poller = createPoller(task, { intervalMs: 1000 });
    let stopped = false;
    const stopping = poller.stop().then(() => (stopped = true));
    expect(runs[0]?.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    runs[0]?.finish();
    await stopping;
    poller.trigger();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(1);
  });

  it("aborting the options signal stops the poller", async () => {
    const { task, runs } = controllableTask();
    const controller = new AbortController();
    createPoller(task, { intervalMs: 1000, signal: controller.signal });
    runs[0]?.finish();
    controller.abort();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(1);
  });
});

describe("exponentialBackoff", () => {
  it("doubles from the base per failure and stops at the cap, however many failures", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => exponentialBackoff(n, 5_000, 60_000))).toEqual([
      5_000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000,
    ]);
    expect(exponentialBackoff(5_000, 5_000, 3_600_000)).toBe(3_600_000);
  });
});
