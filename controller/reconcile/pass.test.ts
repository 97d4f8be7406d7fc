// The reconcile pass when the DC goes away in the middle of an apply: what was written is
// reported, action by action, and the failure after apply is returned, never thrown (it used to
// discard the results: the output was the plan, one ECONNRESET line and exit 1).
import { describe, expect, it } from "vitest";
import { computer, desiredOf, emptyDirectory, fakeDirectory, group, OWNER } from "../../test/support/reconcile.ts";
import { gmsa, hostBinding } from "../../test/support/reconcile.ts";
import type { ActionResult } from "./apply.ts";
import { hostMemory } from "./hosts.ts";
import type { DirectorySession } from "./pass.ts";
import { reconcilePass } from "./pass.ts";

const binding = hostBinding("server1-app", { host: "SERVER1", account: "app" });

describe("reconcilePass when the DC dies during apply", () => {
  it("returns every action's result, reports the failure after apply, and runs no host", async () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const dir = fakeDirectory(emptyDirectory(now, { computers: [computer("SERVER1")] }));
    const groups = ["a", "b", "c", "d"].map((n) => group(`hosts-${n}`, { accountName: `Hosts-${n.toUpperCase()}` }));
    const desired = desiredOf(
      ...groups,
      gmsa("app", { accountName: "gMSA-App", principalsAllowedToRetrieveManagedPassword: [{ group: "hosts-a" }] }),
      binding,
    );
    let dead = false;
    const open = async (): Promise<DirectorySession> => {
      const session = await dir.open();
      const gone = (): never => {
        throw Object.assign(new Error("read ECONNRESET"), { outcome: "transient", reason: "ConnectionFailed" });
      };
      // Once the first action has completed the DC is killed: every later write and read fails.
      const writer = new Proxy(session.writer, {
        get: (target, prop, receiver) => {
          const original = Reflect.get(target, prop, receiver) as unknown;
          if (typeof original !== "function") return original;
          return async (...args: unknown[]) => {
            if (dead) gone();
            return (original as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          };
        },
      });
      return {
        ...session,
        writer,
        readGmsas: (base) => (dead ? Promise.resolve().then(gone) : session.readGmsas(base)),
      };
    };
    const reported: ActionResult[] = [];
    let hostRuns = 0;
    const result = await reconcilePass({
      desired,
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      now,
      write: true,
      openDirectory: open,
      hostMemory: hostMemory(),
      hosts: {
        driver: {
          run: () => {
            hostRuns++;
            return Promise.reject(new Error("no host should be reached"));
          },
        },
        domain: "COMPANY",
        concurrency: 1,
        target: (host) => ({ host, address: "127.0.0.1" }),
      },
      onResult: (r) => {
        reported.push(r);
        if (r.status === "applied") dead = true;
      },
    });

    // One action went through before the DC died; every action has a result, reported as it came.
    expect(result.results.filter((r) => r.status === "applied")).toHaveLength(1);
    expect(result.results.some((r) => r.status === "failed" && /ECONNRESET/.test(r.message ?? ""))).toBe(true);
    expect(reported).toEqual(result.results);
    expect(result.results.length).toBeGreaterThan(2);
    // The re-read for the hosts failed: returned, not thrown, and no host was touched.
    expect(result.afterApply).toMatchObject({ step: "reobserve" });
    expect(result.hosts).toBeUndefined();
    expect(hostRuns).toBe(0);
  });
});
