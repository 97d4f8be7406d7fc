// KDS root keys as the anchors have them (issue 13 item 8): an explicit effective time, several
// keys by id, and deletion only for a key whose resource said deletionPolicy: Delete.
import { describe, expect, it } from "vitest";
import { applyPlan } from "./apply.ts";
import { countActions } from "./model.ts";
import type { Plan, ResourcePlan } from "./model.ts";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import {
  desiredOf,
  emptyDirectory,
  gmsa,
  kdsKey,
  kdsObserved,
  OWNER,
  recordingWriter,
} from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };
const PRUNE: Policy = { ...POLICY, prune: true };

function find(plan: Plan, name: string): ResourcePlan {
  const r = plan.resources.find((x) => x.resource.kind === "KdsRootKey" && x.resource.name === name);
  if (!r) throw new Error(`no KdsRootKey/${name} in plan`);
  return r;
}

describe("KdsRootKey", () => {
  it("an effectiveTime asks for a key of its own starting then, though the forest has one; the next plan finds it by its tag", async () => {
    const desired = desiredOf(kdsKey({ effectiveTime: "2026-12-01T08:00:00+01:00" }, "december"));
    const start = emptyDirectory(now);
    const rec = recordingWriter(start);
    const plan = planDirectory(desired, start, POLICY, now);
    expect(find(plan, "december").changes).toContainEqual({
      attribute: "msKds-UseStartTime",
      from: undefined,
      to: "2026-12-01T07:00:00.000Z",
    });
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes[0]).toEqual({
      op: "createKdsRootKey",
      effectiveImmediately: false,
      effectiveTime: "2026-12-01T07:00:00.000Z",
    });
    const created = rec.observed().kdsRootKeys[1];
    expect(created?.adminDisplayName).toBe("gmsa-gitops:KdsRootKey/december");
    // Retain (the default): no marker, so nothing can ever prune it.
    expect(created?.adminDescription).toBeUndefined();
    expect(countActions(planDirectory(desired, rec.observed(), PRUNE, now))).toBe(0);
  });

  it("a new key's start time gates gMSA creation: effectiveTime plus 10 h 5 min", () => {
    const desired = desiredOf(kdsKey({ effectiveTime: "2026-11-25T11:00:00Z" }), gmsa("svc", { accountName: "Svc" }));
    const plan = planDirectory(desired, emptyDirectory(now, { kdsRootKeys: [] }), POLICY, now);
    const svc = plan.resources.find((r) => r.resource.name === "svc");
    expect(svc?.blocker).toMatchObject({ outcome: "waiting", reason: "KdsRootKeyNotEffective" });
    expect(svc?.blocker?.until?.toISOString()).toBe("2026-11-25T21:05:00.000Z");
  });

  it("a keyId names an existing key without writing; a keyId no key has is stalled and nothing is created", () => {
    const existing = kdsObserved(now, 11);
    const observed = emptyDirectory(now, { kdsRootKeys: [existing] });
    const named = planDirectory(desiredOf(kdsKey({ keyId: existing.id.toUpperCase() })), observed, POLICY, now);
    expect(countActions(named)).toBe(0);
    expect(find(named, "default").blocker).toBeUndefined();
    const missing = planDirectory(
      desiredOf(kdsKey({ keyId: "0e1a8d9c-2b44-4f1e-9a51-3c2d5e6f7a80" })),
      observed,
      POLICY,
      now,
    );
    expect(countActions(missing)).toBe(0);
    expect(find(missing, "default").blocker).toMatchObject({ outcome: "stalled", reason: "KdsRootKeyNotFound" });
  });

  it("deletionPolicy: Delete marks the key; when its resource leaves Git only --prune deletes it, never the last effective key", async () => {
    const older = kdsObserved(now, 30);
    const named = { ...kdsObserved(now, 12), id: "9b0c4d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e" };
    const start = emptyDirectory(now, { kdsRootKeys: [older, { ...named, dn: `CN=${named.id},x`, guid: named.id }] });
    const rec = recordingWriter(start);
    const desired = desiredOf(kdsKey({ keyId: named.id, deletionPolicy: "Delete" }, "old-key"));
    const mark = planDirectory(desired, start, POLICY, now);
    expect(find(mark, "old-key").actions.map((a) => a.type)).toEqual(["update-kds-root-key"]);
    await applyPlan(mark, rec.writer, { now, owner: OWNER });
    expect(OWNER.check(rec.observed().kdsRootKeys[1]?.adminDescription, named.id).status).toBe("ours");
    expect(countActions(planDirectory(desired, rec.observed(), POLICY, now))).toBe(0);

    // The resource leaves Git: without --prune the key stays; with it, it goes.
    const kept = planDirectory(desiredOf(), rec.observed(), { ...POLICY }, now);
    expect(countActions(kept)).toBe(0);
    expect(kept.resources[0]?.notes.join()).toContain("only with --prune");
    const pruned = planDirectory(desiredOf(kdsKey()), rec.observed(), PRUNE, now);
    expect(pruned.resources.flatMap((r) => r.actions.map((a) => `${a.type} ${"dn" in a ? a.dn : ""}`))).toEqual([
      `delete CN=${named.id},x`,
    ]);

    // The same key, marked, as the only effective key: kept whatever prune says.
    const alone = emptyDirectory(now, { kdsRootKeys: [rec.observed().kdsRootKeys[1]!] });
    const refused = planDirectory(desiredOf(), alone, PRUNE, now);
    expect(countActions(refused)).toBe(0);
    expect(refused.resources[0]?.blocker).toMatchObject({ outcome: "stalled", reason: "PruneRefused" });
  });

  it("a key without the marker (the provision key, a Retain key) is never pruned", () => {
    const plan = planDirectory(desiredOf(), emptyDirectory(now), PRUNE, now);
    expect(plan.resources).toEqual([]);
  });

  it("Retain takes the marker off a key that had it", async () => {
    const id = "9b0c4d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";
    const key = { ...kdsObserved(now, 12), id, guid: id, adminDescription: OWNER.markerFor(id) };
    const start = emptyDirectory(now, { kdsRootKeys: [kdsObserved(now, 30), key] });
    const plan = planDirectory(desiredOf(kdsKey({ keyId: id })), start, POLICY, now);
    const rec = recordingWriter(start);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([
      { op: "modify", dn: key.dn, changes: [{ operation: "replace", attribute: "adminDescription", values: [] }] },
    ]);
  });

  it("an effectiveTime changed in Git after the key exists is stalled: a key's start time is never rewritten", async () => {
    const start = emptyDirectory(now);
    const rec = recordingWriter(start);
    await applyPlan(
      planDirectory(desiredOf(kdsKey({ effectiveTime: "2026-12-01T00:00:00Z" })), start, POLICY, now),
      rec.writer,
      { now, owner: OWNER },
    );
    const plan = planDirectory(
      desiredOf(kdsKey({ effectiveTime: "2026-12-02T00:00:00Z" })),
      rec.observed(),
      POLICY,
      now,
    );
    expect(countActions(plan)).toBe(0);
    expect(find(plan, "default").blocker).toMatchObject({ outcome: "stalled", reason: "ImmutableFieldChanged" });
  });
});
