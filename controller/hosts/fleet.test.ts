import { describe, expect, it } from "vitest";
import type { HostRequest, HostResult } from "./contract.ts";
import type { HostDriver, HostTarget } from "./driver.ts";
import { HostError } from "./errors.ts";
import { runFleet } from "./fleet.ts";

function job(host: string): { target: HostTarget; request: HostRequest } {
  return {
    target: { host, address: `${host}.company.local` },
    request: { version: 2, mode: "observe", host, domain: "COMPANY", bindings: [] },
  };
}

/** A recording driver: each host takes `delays[host]` ms; hosts named DOWN* fail. */
function fakeDriver(delays: Record<string, number>): HostDriver & { peak: number; order: string[] } {
  let running = 0;
  const d = {
    peak: 0,
    order: [] as string[],
    async run(target: HostTarget, request: HostRequest): Promise<HostResult> {
      running++;
      d.peak = Math.max(d.peak, running);
      d.order.push(target.host);
      await new Promise((r) => setTimeout(r, delays[target.host] ?? 1));
      running--;
      if (target.host.startsWith("DOWN"))
        throw new HostError("Unreachable", target.host, "cannot reach (ECONNREFUSED)");
      if (target.host.startsWith("BUG")) throw new TypeError("boom");
      return { version: 2, host: request.host, mode: request.mode, powershell: "7.6.9", bindings: [] };
    },
  };
  return d;
}

describe("runFleet", () => {
  it("never runs more hosts at once than the concurrency, and returns outcomes in job order", async () => {
    const hosts = Array.from({ length: 20 }, (_, i) => `H${i}`);
    const driver = fakeDriver(Object.fromEntries(hosts.map((h, i) => [h, 5 + (i % 4) * 5])));
    const outcomes = await runFleet(driver, hosts.map(job), { concurrency: 4 });
    expect(driver.peak).toBe(4);
    expect(outcomes.map((o) => o.target.host)).toEqual(hosts);
    expect(outcomes.every((o) => o.ok)).toBe(true);
  });

  it("keeps a slow or failing host from holding up the others", async () => {
    const driver = fakeDriver({ SLOW: 300, DOWN1: 1, A: 5, B: 5, C: 5 });
    const finished: string[] = [];
    const outcomes = await runFleet(driver, ["SLOW", "DOWN1", "A", "B", "C"].map(job), {
      concurrency: 2,
      onOutcome: (o) => finished.push(o.target.host),
    });
    expect(finished).toEqual(["DOWN1", "A", "B", "C", "SLOW"]);
    const down = outcomes[1];
    expect(down?.ok).toBe(false);
    if (down?.ok === false) expect([down.error.reason, down.error.outcome]).toEqual(["Unreachable", "transient"]);
  });

  it("turns an unexpected exception into an Internal HostError outcome instead of rejecting", async () => {
    const outcomes = await runFleet(fakeDriver({}), [job("BUG1"), job("A")], { concurrency: 1 });
    expect(outcomes.map((o) => (o.ok ? "ok" : o.error.reason))).toEqual(["Internal", "ok"]);
  });
});
