// A KdsRootKey whose effectiveTime is already more than a key cycle in the past: usable at once,
// before the key has reached every DC, which the plan must say (as effectiveImmediately does).
import { describe, expect, it } from "vitest";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import { desiredOf, emptyDirectory, kdsKey, kdsObserved, OWNER } from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };

describe("a KdsRootKey with an effectiveTime in the past", () => {
  it("is created as asked, with a note that it skips the replication wait; a future one has no note", () => {
    const observed = emptyDirectory(now, { kdsRootKeys: [kdsObserved(now, 100)] });
    const plan = planDirectory(
      desiredOf(
        kdsKey({ effectiveTime: "2024-01-01T13:00:00Z" }, "past"),
        kdsKey({ effectiveTime: "2030-01-01T13:00:00Z" }, "future"),
      ),
      observed,
      POLICY,
      now,
    );
    const past = plan.resources.find((r) => r.resource.name === "past");
    expect(past?.actions.map((a) => a.type)).toEqual(["create-kds-root-key"]);
    expect(past?.notes).toEqual([
      "effectiveTime is more than 10 h 5 min ago: DCs use the key at once, before it has replicated to every DC (lab use, as effectiveImmediately)",
    ]);
    expect(plan.resources.find((r) => r.resource.name === "future")?.notes).toEqual([]);
  });
});
