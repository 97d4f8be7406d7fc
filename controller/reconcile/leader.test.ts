// The elector's safety rule, never two writers, against a lease store kept in memory with the
// same compare-and-swap semantics as the directory's (test/leader.test.ts checks those on Samba):
// a lease object deleted or overwritten by hand while a replica leads must not let another
// replica write before the leader's fencing deadline has passed.
import { afterEach, describe, expect, it } from "vitest";
import { LeaderElector } from "./leader.ts";
import type { LeaseStore } from "./lease.ts";
import { decodeLease, encodeLease } from "./lease.ts";

const DURATION_MS = 2_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One lease object holding a list of values, as the directory's multi-valued attribute does:
 * create fails when it exists; swap deletes exactly the old values and adds the new one, fails
 * when one old value is gone (or, with none, when the new one is there), and throws when the
 * object is gone.
 */
class MemoryLease {
  values: string[] | undefined;
  #afterSwap: (() => void) | undefined;
  /** The one value, for tests that set or check it directly. */
  get value(): string | undefined {
    return this.values?.length === 1 ? this.values[0] : undefined;
  }
  set value(value: string | undefined) {
    this.values = value === undefined ? undefined : [value];
  }
  /** Resolves right after the next successful swap (a renew, while one replica leads). */
  nextSwap(): Promise<void> {
    return new Promise((resolve) => (this.#afterSwap = resolve));
  }
  store(): LeaseStore {
    return {
      server: "pdc.test",
      read: () => Promise.resolve(this.values && [...this.values]),
      create: (value) => {
        if (this.values !== undefined) return Promise.resolve(false);
        this.values = [value];
        return Promise.resolve(true);
      },
      swap: (oldValues, newValue) => {
        // noSuchObject (32): the directory client throws, as it does for any failure but 16 and 20.
        const values = this.values;
        if (values === undefined) return Promise.reject(new Error("no such object"));
        if (!oldValues.every((v) => values.includes(v))) return Promise.resolve(false);
        if (oldValues.length === 0 && values.includes(newValue)) return Promise.resolve(false);
        this.values = [...values.filter((v) => !oldValues.includes(v)), newValue];
        this.#afterSwap?.();
        this.#afterSwap = undefined;
        return Promise.resolve(true);
      },
      close: () => Promise.resolve(),
    };
  }
}

describe("leader election", () => {
  const electors: LeaderElector[] = [];
  afterEach(async () => {
    for (const e of electors.splice(0)) await e.stop();
  });

  const elector = (lease: MemoryLease, replicaId: string, now?: () => Date): LeaderElector => {
    const e = new LeaderElector({
      open: () => Promise.resolve(lease.store()),
      replicaId,
      durationMs: DURATION_MS,
      logger: quiet,
      ...(now ? { now } : {}),
    });
    electors.push(e);
    return e;
  };

  const until = async (what: string, probe: () => boolean, ms = 10 * DURATION_MS): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  };

  /** Watches two replicas for `ms`: the moments (ms from start) at which both could write. */
  const overlaps = async (a: LeaderElector, b: LeaderElector, ms: number): Promise<number[]> => {
    const start = Date.now();
    const both: number[] = [];
    while (Date.now() - start < ms) {
      if (a.canWrite() && b.canWrite()) both.push(Date.now() - start);
      await sleep(5);
    }
    return both;
  };

  /** Two replicas, the first leading and the second following it. */
  const twoReplicas = async (lease: MemoryLease): Promise<[LeaderElector, LeaderElector]> => {
    const a = elector(lease, "replica-a");
    a.start();
    await until("replica-a to lead", () => a.canWrite());
    const b = elector(lease, "replica-b");
    b.start();
    await until("replica-b to follow", () => b.status().holder === "replica-a");
    return [a, b];
  };

  it("a lease object deleted by hand while a replica leads never gives two writers", async () => {
    const lease = new MemoryLease();
    const [a, b] = await twoReplicas(lease);
    await lease.nextSwap();
    lease.value = undefined;
    expect(await overlaps(a, b, 3 * DURATION_MS)).toEqual([]);
    // Someone leads again afterwards: the deletion costs one lease duration, not the service.
    await until("a leader again", () => a.canWrite() || b.canWrite());
  }, 30_000);

  it("a lease value overwritten by hand (not a lease, or naming another holder) never gives two writers", async () => {
    for (const forged of [
      "written by hand",
      encodeLease({ holder: "", renewTime: new Date().toISOString(), durationSeconds: 0, transitions: 0 }),
      encodeLease({ holder: "replica-b", renewTime: new Date().toISOString(), durationSeconds: 2, transitions: 9 }),
    ]) {
      const lease = new MemoryLease();
      const [a, b] = await twoReplicas(lease);
      // Right after the leader's renew, so the follower reads the forged value before the leader renews again.
      await lease.nextSwap();
      lease.value = forged;
      expect(await overlaps(a, b, 1.5 * DURATION_MS)).toEqual([]);
      for (const e of electors.splice(0)) await e.stop();
    }
  }, 40_000);

  it("a lease emptied, or given a second value, by hand: never two writers, and one replica leads again", async () => {
    for (const edit of [
      (lease: MemoryLease) => (lease.values = []),
      (lease: MemoryLease) => lease.values!.push("added by hand"),
    ]) {
      const lease = new MemoryLease();
      const [a, b] = await twoReplicas(lease);
      await lease.nextSwap();
      edit(lease);
      expect(await overlaps(a, b, 1.5 * DURATION_MS)).toEqual([]);
      await until("one replica to lead", () => a.canWrite() || b.canWrite());
      // A leader that stops leaves the stranger value beside its release; the other takes both.
      const leader = a.canWrite() ? a : b;
      const other = leader === a ? b : a;
      await leader.stop();
      await until("the other replica to lead", () => other.canWrite());
      expect(lease.values).toHaveLength(1);
      expect(decodeLease(lease.value).holder).toBe(other.status().replicaId);
      for (const e of electors.splice(0)) await e.stop();
    }
  }, 60_000);

  it("a leader whose host slept (the wall clock jumped, the monotonic one did not) stops writing until it renews", async () => {
    // Linux's monotonic clock stands still while the system is suspended; the wall clock, read
    // again from the hardware on resume, does not. The leader must not trust the monotonic one alone.
    let slept = 0;
    const lease = new MemoryLease();
    const a = elector(lease, "replica-a", () => new Date(Date.now() + slept));
    a.start();
    await until("replica-a to lead", () => a.canWrite());
    await lease.nextSwap();
    slept = 3 * DURATION_MS;
    expect(a.canWrite()).toBe(false);
    // Its next renew succeeds (nobody took the lease meanwhile): it writes again, by the new time.
    await until("replica-a to renew and write again", () => a.canWrite(), DURATION_MS);
  }, 30_000);

  it("a lease released on a clean stop is taken over at once", async () => {
    const lease = new MemoryLease();
    const [a, b] = await twoReplicas(lease);
    const stopped = Date.now();
    await a.stop();
    expect(decodeLease(lease.value).holder).toBe("");
    await until("replica-b to lead", () => b.canWrite());
    // One retry period (a fifth of the lease), not a whole lease duration.
    expect(Date.now() - stopped).toBeLessThan(DURATION_MS);
  });
});
