// Principals under the spellings an administrator uses (a name, its SID, its DN in any case): a
// member listed and removed under two spellings settles, and the plan names members by name.
import { describe, expect, it } from "vitest";
import { applyPlan } from "./apply.ts";
import { countActions } from "./model.ts";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import {
  BASE,
  computer,
  desiredOf,
  emptyDirectory,
  gmsa,
  group,
  kdsKey,
  observedGroup,
  OWNER,
  recordingWriter,
} from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };
const server1 = computer("SERVER1");

describe("a member listed by name and removed by SID", () => {
  it("is not added and removed in turn: the second apply has nothing to do, and the plan says why", async () => {
    const desired = desiredOf(
      kdsKey(),
      group("g", { accountName: "G1", members: [{ computer: "SERVER1" }], removeMembers: [{ sid: server1.sid }] }),
    );
    let observed = emptyDirectory(now, { computers: [server1], groups: [observedGroup("G1", [])] });
    const writes: unknown[] = [];
    for (let pass = 0; pass < 3; pass++) {
      const rec = recordingWriter(observed);
      await applyPlan(planDirectory(desired, observed, POLICY, now), rec.writer, { now, owner: OWNER });
      writes.push(...rec.writes);
      observed = rec.observed();
    }
    expect(writes).toEqual([]);
    const plan = planDirectory(desired, observed, POLICY, now);
    expect(countActions(plan)).toBe(0);
    const g = plan.resources.find((r) => r.resource.name === "g");
    expect(g?.notes.join("\n")).toContain("SERVER1$");
  });
});

describe("the plan of a group's members", () => {
  it("names a user the manifest refers to by its account name on both sides, not by its DN", () => {
    const alice = { dn: `CN=Alice Ops,CN=Users,${BASE}`, sid: "S-1-5-21-1-2-3-4001", samAccountName: "aops" };
    const bob = { dn: `CN=Bob,CN=Users,${BASE}`, sid: "S-1-5-21-1-2-3-4002", samAccountName: "bob" };
    const desired = desiredOf(
      kdsKey(),
      group("g", { accountName: "G1", members: [{ user: "aops" }], removeMembers: [{ dn: bob.dn.toUpperCase() }] }),
    );
    const observed = emptyDirectory(now, {
      principals: [alice, bob].map((u) => ({ ...u, objectClass: "user" })),
      groups: [observedGroup("G1", [alice.dn, bob.dn])],
    });
    const g = planDirectory(desired, observed, POLICY, now).resources.find((r) => r.resource.name === "g");
    expect(g?.changes).toEqual([{ attribute: "member", from: ["aops", "bob"], to: ["aops"] }]);
  });
});

describe("a principal listed under two spellings in one list", () => {
  it("is one member and one reader: the plan lists it once", () => {
    const alice = { dn: `CN=Alice Ops,CN=Users,${BASE}`, sid: "S-1-5-21-1-2-3-4001", samAccountName: "aops" };
    const both = [{ user: "aops" }, { sid: alice.sid }, { dn: alice.dn.toLowerCase() }];
    const desired = desiredOf(
      kdsKey(),
      group("g", { accountName: "G1", members: both }),
      gmsa("app", { accountName: "gMSA-App", principalsAllowedToRetrieveManagedPassword: both }),
    );
    const observed = emptyDirectory(now, {
      principals: [{ ...alice, objectClass: "user" }],
      groups: [observedGroup("G1", [])],
    });
    const plan = planDirectory(desired, observed, POLICY, now);
    expect(plan.resources.find((r) => r.resource.name === "g")?.changes).toEqual([
      { attribute: "member", from: [], to: ["aops"] },
    ]);
    const readers = plan.resources.find((r) => r.resource.name === "app")?.changes;
    expect(readers?.find((c) => c.attribute === "msDS-GroupMSAMembership")?.to).toEqual(["aops"]);
  });
});

describe("a group managed by a gMSA of the repository that AD does not have yet", () => {
  it("waits for it, and says it is created by this plan rather than missing", () => {
    const desired = desiredOf(
      kdsKey(),
      group("g", { accountName: "G1", managedBy: { serviceAccount: "app" } }),
      gmsa("app", { accountName: "gMSA-App" }),
    );
    const plan = planDirectory(desired, emptyDirectory(now), POLICY, now);
    expect(plan.resources.find((r) => r.resource.name === "g")?.blocker?.message).toBe(
      "not found in AD: serviceAccount app (a GroupManagedServiceAccount of this repository not created yet: used on the pass after apply creates it)",
    );
  });
});
