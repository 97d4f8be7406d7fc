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

describe("polledEvery", () => {
  it("polls once per interval, and reuses the snapshot, with its fetch time, in between", async () => {
    let now = 0;
    const { state, source } = counting();
    const polled = polledEvery(source, 60_000, () => now);
    const first = await polled.sync();
    now = 10_000;
    const again = await polled.sync();
    now = 59_999;
    await polled.sync();
    expect(state.polls).toBe(1);
    expect(again).toBe(first);
    expect(again.fetchedAt).toEqual(new Date(1000));
    now = 60_000;
    state.revision = "r2";
    expect((await polled.sync()).revision).toBe("r2");
    expect(state.polls).toBe(2);
    expect(polled.url).toBe(source.url);
  });

  it("looks again at once after a webhook or a watched change (moved), and passes it on", async () => {
    let now = 0;
    const { state, source } = counting();
    const polled = polledEvery(source, 60_000, () => now);
    await polled.sync();
    now = 1_000;
    state.revision = "r2";
    polled.moved();
    expect(state.moved).toBe(1);
    expect((await polled.sync()).revision).toBe("r2");
    // Only the next sync: the one after it waits for the interval again.
    now = 2_000;
    await polled.sync();
    expect(state.polls).toBe(2);
  });

  it("a push announced while a poll is under way is looked at by the next cycle", async () => {
    let now = 0;
    const { state, source } = counting();
    const polled = polledEvery(source, 60_000, () => now);
    await polled.sync();
    now = 1_000;
    polled.moved();
    const inFlight = polled.sync();
    // The webhook of a second push arrives before the first poll answered.
    polled.moved();
    await inFlight;
    now = 2_000;
    await polled.sync();
    expect(state.polls).toBe(3);
  });

  it("after a failed poll, polls again at the next cycle, not an interval later", async () => {
    let now = 0;
    const { state, source } = counting();
    const polled = polledEvery(source, 60_000, () => now);
    await polled.sync();
    now = 60_000;
    state.fail = true;
    await expect(polled.sync()).rejects.toThrow("unreachable");
    now = 61_000;
    state.fail = false;
    state.revision = "r3";
    expect((await polled.sync()).revision).toBe("r3");
    expect(state.polls).toBe(3);
  });

  it("with an interval of 0 polls every cycle, as without it", async () => {
    const { state, source } = counting();
    const polled = polledEvery(source, 0, () => 5);
    await polled.sync();
    await polled.sync();
    expect(state.polls).toBe(2);
  });
});
