// Every reason and message summarize can give, one row each: what a person reads in
// /api/status, the status page and notifications must say what happened.
import { describe, expect, it } from "vitest";
import { retainedBytes } from "../../test/support/heap.ts";
import type { Action, Blocker, DriftType, ResourcePlan } from "./model.ts";
import type { Attempt, ResourceStatus } from "./status.ts";
import { StatusStore, summarize } from "./status.ts";

const now = new Date("2026-01-01T00:00:00Z");
const update: Action = {
  type: "update-group",
  resource: { kind: "ADGroup", name: "g" },
  dn: "CN=G,DC=x",
  groupTypeSteps: [],
  adopt: false,
  changes: [],
};
const entry = (drift: DriftType[], extra: Partial<ResourcePlan> = {}): ResourcePlan => ({
  resource: { kind: "ADGroup", name: "g" },
  dn: "CN=G,DC=x",
  drift: new Set(drift),
  changes: [],
  actions: drift.length > 0 ? [update] : [],
  observeOnly: false,
  notes: [],
  ...extra,
});
const applied: Attempt = { status: "applied" };
const stalled = (reason: Blocker["reason"], message: string): Partial<ResourcePlan> => ({
  actions: [],
  blocker: { outcome: "stalled", reason, message },
});
/** A previous status of a resource applied before (so a missing object now was deleted by hand). */
const appliedBefore = {
  lastAppliedRevision: "rev-1",
  lastDrift: null,
  corrections: { count: 0, since: null },
} as unknown as ResourceStatus;

type Row = {
  name: string;
  plan: ResourcePlan;
  attempts?: Attempt[];
  executed?: boolean;
  previous?: ResourceStatus;
  ready: string;
  message: RegExp;
  driftDetected: string | undefined;
};

const rows: Row[] = [
  {
    name: "in sync",
    plan: entry([]),
    ready: "True/Reconciled",
    message: /^in sync with Git$/,
    driftDetected: undefined,
  },
  {
    name: "a hand edit reverted",
    plan: entry(["attribute"]),
    attempts: [applied],
    ready: "True/DriftCorrected",
    message: /^drift corrected: attribute$/,
    driftDetected: "True/DriftCorrected",
  },
  {
    name: "an object never there, created from Git",
    plan: entry(["missing"]),
    attempts: [applied],
    ready: "True/Created",
    message: /^created from Git$/,
    driftDetected: undefined,
  },
  {
    name: "an applied object deleted by hand and re-created",
    plan: entry(["missing"]),
    attempts: [applied],
    previous: appliedBefore,
    ready: "True/DriftCorrected",
    message: /^drift corrected: missing$/,
    driftDetected: "True/DriftCorrected",
  },
  {
    name: "a conflict: an unmarked object with the managed name",
    plan: entry(["conflict"], stalled("NotOwned", "CN=G,DC=x exists but was not created by gmsa-gitops")),
    ready: "False/NotOwned",
    message: /not created by gmsa-gitops/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "a missing object whose creation waits for a missing principal",
    plan: entry(["missing"], stalled("PrincipalNotFound", "not found in AD: computer NOSUCHPC")),
    ready: "False/PrincipalNotFound",
    message: /^not found in AD: computer NOSUCHPC$/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "a missing object whose create the DC refused",
    plan: entry(["missing"]),
    attempts: [{ status: "failed", outcome: "stalled", message: "insufficient access rights" }],
    ready: "False/ApplyFailed",
    message: /^insufficient access rights$/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "a missing object in observe mode",
    plan: entry(["missing"], { observeOnly: true, actions: [] }),
    executed: false,
    ready: "False/DriftReported",
    message: /^drift reported, not corrected \(observe mode\): missing$/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "drift in a plan (nothing executed)",
    plan: entry(["attribute"]),
    executed: false,
    ready: "False/DriftReported",
    message: /\(plan only\): attribute$/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "a marked object that left Git, prune off",
    plan: entry(["unexpected"], { actions: [], notes: ["deleted only with --prune"] }),
    ready: "False/PruneDisabled",
    message: /^drift reported, not corrected \(deleted only with --prune\): unexpected$/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "a transient failure",
    plan: entry(["attribute"]),
    attempts: [{ status: "failed", outcome: "transient", message: "busy" }],
    ready: "False/RetryingAfterFailure",
    message: /^busy$/,
    driftDetected: "True/DriftReported",
  },
  {
    name: "waiting for the KDS root key",
    plan: entry(["missing"], {
      actions: [],
      blocker: {
        outcome: "waiting",
        reason: "KdsRootKeyNotEffective",
        message: "no effective KDS root key",
        until: new Date("2026-01-01T10:00:00Z"),
      },
    }),
    ready: "False/KdsRootKeyNotEffective",
    message: /^no effective KDS root key \(next attempt at 2026-01-01T10:00:00.000Z\)$/,
    driftDetected: "True/DriftReported",
  },
];

describe("summarize: reason and message of every outcome", () => {
  it.each(rows)("$name", (row) => {
    const summary = summarize(
      {
        entry: row.plan,
        attempts: row.attempts ?? [],
        executed: row.executed ?? true,
        revision: "rev-2",
        now,
      },
      row.previous,
    );
    const ready = summary.conditions.find((c) => c.type === "Ready")!;
    expect(`${String(ready.status).replace("true", "True").replace("false", "False")}/${ready.reason}`).toBe(row.ready);
    expect(ready.message).toMatch(row.message);
    const drift = summary.conditions.find((c) => c.type === "DriftDetected");
    expect(drift ? `True/${drift.reason}` : undefined).toBe(row.driftDetected);
    // DriftCorrected only when a write fixed drift; a conflict or an object never created is not.
    if (ready.reason !== "DriftCorrected") expect(drift?.reason).not.toBe("DriftCorrected");
    // Nothing here heals only through Git: no text may send the reader there alone.
    for (const c of summary.conditions) expect(c.message).not.toMatch(/until the revision in Git changes/);
  });
});

describe("summarize: how often drift was corrected", () => {
  it("counts each correction from the first one on, and not a creation", () => {
    const cycle = (plan: ResourcePlan, previous: ResourceStatus | undefined, at: Date) =>
      ({
        ...(previous ?? {}),
        ...summarize(
          { entry: plan, attempts: plan.actions.length > 0 ? [applied] : [], executed: true, revision: "r", now: at },
          previous,
        ),
      }) as unknown as ResourceStatus;
    const t1 = new Date("2026-01-01T01:00:00Z");
    const t2 = new Date("2026-01-01T02:00:00Z");
    const created = cycle(entry(["missing"]), undefined, now);
    expect(created.corrections).toEqual({ count: 0, since: null });
    const first = cycle(entry(["attribute"]), { ...created, lastAppliedRevision: "r" }, t1);
    const clean = cycle(entry([]), first, t1);
    const second = cycle(entry(["membership"]), clean, t2);
    expect(first.corrections).toEqual({ count: 1, since: t1.toISOString() });
    expect(clean.corrections).toEqual({ count: 1, since: t1.toISOString() });
    expect(second.corrections).toEqual({ count: 2, since: t1.toISOString() });
  });
});

describe("StatusStore at 50,000 resources", () => {
  it("stores equal conditions, drift lists and times once: under 500 bytes per resource", () => {
    // Every one of 50,000 gMSAs missing from AD in observe mode has the same four conditions;
    // stored as fresh strings, objects and arrays per resource they held about 55 MiB.
    const names = Array.from({ length: 50_000 }, (_, i) => `bsv${String(i).padStart(5, "0")}`);
    const plans = names.map((name): ResourcePlan => ({
      resource: { kind: "GroupManagedServiceAccount", name },
      dn: `CN=${name},CN=Managed Service Accounts,DC=x`,
      drift: new Set(["missing"]),
      changes: [],
      actions: [],
      observeOnly: true,
      notes: [],
    }));
    const { bytes, value: store } = retainedBytes(() => {
      const s = new StatusStore();
      for (const cycle of [0, 1])
        plans.forEach((plan, i) => {
          const at = new Date(now.getTime() + cycle * 10_000);
          const identity = { kind: "GroupManagedServiceAccount" as const, name: names[i]!, dn: null, source: null };
          const summary = summarize(
            { entry: plan, attempts: [], executed: false, revision: "r1", now: at },
            s.get("GroupManagedServiceAccount", names[i]!),
          );
          s.update({ ...identity, ...summary }, at);
        });
      return s;
    });
    const perResource = bytes / names.length;
    const first = store.get("GroupManagedServiceAccount", "bsv00000")!;
    expect(first.conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
      "Ready=False",
      "Stalled=False",
      "Reconciling=False",
      "DriftDetected=True",
    ]);
    expect(first.lastObservedAt).toBe("2026-01-01T00:00:10.000Z");
    expect(first.conditions[0]!.lastTransitionTime).toBe("2026-01-01T00:00:00.000Z");
    expect(perResource, `${perResource} bytes per resource`).toBeLessThan(500);
  }, 60_000);
});
