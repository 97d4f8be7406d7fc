// The source polled on its own interval: between polls a cycle reuses the last snapshot (no git
// process, no read of the folder); a webhook or a watched change, a failed poll and the interval
// ending each make the next cycle look again.
import { describe, expect, it } from "vitest";
import { polledEvery } from "./polled.ts";
import type { Snapshot } from "./snapshot.ts";

/** A source that counts its polls and answers with the revision set, or fails. */
function counting() {
  const state = { polls: 0, moved: 0, revision: "r1", fail: false };
  return {
    state,
    source: {
      url: "https://git.example/repo.git",
      sync: (): Promise<Snapshot> => {
        state.polls++;
        if (state.fail) return Promise.reject(new Error("unreachable"));
        return Promise.resolve({ revision: state.revision, files: [], fetchedAt: new Date(state.polls * 1000) });
      },
      moved: (): void => void state.moved++,
    },
  };
}

/**
 * `polledEvery` over a counting source, every `intervalMs` (60 s unless said), its first sync
 * done at 0 ms; `syncAt(ms)` moves the clock to `ms` and syncs.
 */
async function polledAfterFirstSync(intervalMs = 60_000) {
  let now = 0;
  const { state, source } = counting();
  const polled = polledEvery(source, intervalMs, () => now);
  const first = await polled.sync();
  const syncAt = (ms: number): Promise<Snapshot> => {
    now = ms;
    return polled.sync();
  };
  return { state, source, polled, first, syncAt };
}

describe("polledEvery", () => {
  it("polls once per interval, and reuses the snapshot, with its fetch time, in between", async () => {
    const { state, source, polled, first, syncAt } = await polledAfterFirstSync();
    const again = await syncAt(10_000);
    await syncAt(59_999);
    expect(state.polls).toBe(1);
    expect(again).toBe(first);
    expect(again.fetchedAt).toEqual(new Date(1000));
    state.revision = "r2";
    expect((await syncAt(60_000)).revision).toBe("r2");
    expect(state.polls).toBe(2);
    expect(polled.url).toBe(source.url);
  });

  it("looks again at once after a webhook or a watched change (moved), and passes it on", async () => {
    const { state, polled, syncAt } = await polledAfterFirstSync();
    state.revision = "r2";
    polled.moved();
    expect(state.moved).toBe(1);
    expect((await syncAt(1_000)).revision).toBe("r2");
    // Only the next sync: the one after it waits for the interval again.
    await syncAt(2_000);
    expect(state.polls).toBe(2);
  });

  it("a push announced while a poll is under way is looked at by the next cycle", async () => {
    const { state, polled, syncAt } = await polledAfterFirstSync();
    polled.moved();
    const inFlight = syncAt(1_000);
    // The webhook of a second push arrives before the first poll answered.
    polled.moved();
    await inFlight;
    await syncAt(2_000);
    expect(state.polls).toBe(3);
  });

  it("after a failed poll, polls again at the next cycle, not an interval later", async () => {
    const { state, syncAt } = await polledAfterFirstSync();
    state.fail = true;
    await expect(syncAt(60_000)).rejects.toThrow("unreachable");
    state.fail = false;
    state.revision = "r3";
    expect((await syncAt(61_000)).revision).toBe("r3");
    expect(state.polls).toBe(3);
  });

  it("with an interval of 0 polls every cycle, as without it", async () => {
    const { state, syncAt } = await polledAfterFirstSync(0);
    await syncAt(0);
    expect(state.polls).toBe(2);
  });
});
