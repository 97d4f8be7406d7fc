// Standalone managed service accounts through diff and plan (pure): the computer link as drift,
// a missing computer as a stall with no write, and prune letting the computer go first.
import { describe, expect, it } from "vitest";
import type { Action } from "./model.ts";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import {
  BASE,
  computer,
  desiredOf,
  emptyDirectory,
  group,
  observedGmsa,
  OWNER,
  smsa,
} from "../../test/support/reconcile.ts";

const now = new Date("2026-11-30T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: true, deletionBudget: 5, adopt: false, owner: OWNER };
const DN = `CN=MSA-SQL1,CN=Managed Service Accounts,${BASE}`;

const observedSmsa = (hostComputers: string[]) =>
  observedGmsa("MSA-SQL1", [], {
    standalone: true,
    hostComputers,
    dnsHostName: undefined,
    groupMsaMembership: undefined,
    passwordIntervalDays: undefined,
  });

const actions = (plan: ReturnType<typeof planDirectory>): Action[] => plan.resources.flatMap((r) => r.actions);

describe("ManagedServiceAccount plan", () => {
  it("a new sMSA is created, then linked from its computer", () => {
    const sql1 = computer("SQL1");
    const plan = planDirectory(desiredOf(smsa()), emptyDirectory(now, { computers: [sql1] }), POLICY, now);
    expect(actions(plan).map((a) => [a.type, "dn" in a ? a.dn : undefined])).toEqual([
      ["create-smsa", DN],
      ["link-host-account", sql1.dn],
    ]);
  });

  it("a link moved by hand to another computer is removed there and added back on its own", () => {
    const sql1 = computer("SQL1");
    const sql2 = computer("SQL2");
    const plan = planDirectory(
      desiredOf(smsa()),
      emptyDirectory(now, { computers: [sql1], gmsas: [observedSmsa([sql2.dn])] }),
      POLICY,
      now,
    );
    const entry = plan.resources.find((r) => r.resource.kind === "ManagedServiceAccount");
    expect([...(entry?.drift ?? [])]).toEqual(["principals"]);
    expect(actions(plan)).toMatchObject([
      { type: "link-host-account", dn: sql2.dn, accountDn: DN, operation: "delete" },
      { type: "link-host-account", dn: sql1.dn, accountDn: DN, operation: "add" },
    ]);
  });

  it("a linked sMSA in line with its manifest plans nothing", () => {
    const sql1 = { ...computer("SQL1"), hostServiceAccounts: [DN] };
    const plan = planDirectory(
      desiredOf(smsa()),
      emptyDirectory(now, { computers: [sql1], gmsas: [observedSmsa([sql1.dn])] }),
      POLICY,
      now,
    );
    expect(actions(plan)).toEqual([]);
  });

  it("a computer that does not exist stalls the resource with the reason, and nothing is written", () => {
    const plan = planDirectory(desiredOf(smsa({ computer: "SQL9" })), emptyDirectory(now), POLICY, now);
    const entry = plan.resources.find((r) => r.resource.kind === "ManagedServiceAccount");
    expect(entry?.actions).toEqual([]);
    expect(entry?.blocker).toMatchObject({ outcome: "stalled", reason: "PrincipalNotFound" });
    expect(entry?.blocker?.message).toMatch(/^computer SQL9 not found in AD/);
  });

  it("an sMSA that left Git is pruned after its computer lets go of it; a gMSA of the same name is not its twin", () => {
    const sql1 = { ...computer("SQL1"), hostServiceAccounts: [DN] };
    const plan = planDirectory(
      desiredOf(group("keep", { accountName: "Keep" })),
      emptyDirectory(now, { computers: [sql1], gmsas: [observedSmsa([sql1.dn])] }),
      POLICY,
      now,
    );
    const entry = plan.resources.find((r) => r.resource.kind === "ManagedServiceAccount");
    expect(entry?.resource).toEqual({ kind: "ManagedServiceAccount", name: "msa-sql1" });
    expect(entry?.actions.map((a) => [a.type, "dn" in a ? a.dn : undefined])).toEqual([
      ["link-host-account", sql1.dn],
      ["delete", DN],
    ]);
  });
});
