// The plan's summary line when objects left Git but stay in AD (no --prune): it must say so,
// since plan exits 2 for them.
import { describe, expect, it } from "vitest";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import { renderText } from "./render.ts";
import { desiredOf, emptyDirectory, kdsKey, observedGmsa, OWNER } from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };

describe("the summary of a plan without --prune", () => {
  it("counts the accounts that left Git and stay in AD, instead of reading as no change", () => {
    const observed = emptyDirectory(now, { gmsas: [observedGmsa("gMSA-Old", []), observedGmsa("gMSA-Older", [])] });
    const text = renderText(planDirectory(desiredOf(kdsKey()), observed, POLICY, now));
    expect(text).toContain(
      "Plan: 0 to create, 0 to update, 0 to delete, 2 not in Git (kept: deleted only with --prune).",
    );
  });
});
