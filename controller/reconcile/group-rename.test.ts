// Renames of ADGroups in place (issue 13, item 6), through diff, plan and apply (pure, with the
// recording writer): the group is found by its resource tag, never by its name, and keeps its SID.
import { describe, expect, it } from "vitest";
import { allowedReaders } from "../directory/index.ts";
import { applyPlan } from "./apply.ts";
import { countActions } from "./model.ts";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import { planSummary, renderText } from "./render.ts";
import {
  BASE,
  computer,
  desiredOf,
  emptyDirectory,
  gmsa,
  group,
  kdsKey,
  observedGmsa,
  observedGroup,
  OWNER,
  planEntry as find,
  recordingWriter,
} from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: true, deletionBudget: 5, adopt: false, owner: OWNER };
const server1 = computer("SERVER1");
const TAG = "gmsa-gitops:ADGroup/hosts";
const oldDn = `CN=Hosts-Old,CN=Users,${BASE}`;
const newDn = `CN=Hosts-New,CN=Users,${BASE}`;

/**
 * AD before the commit: the group (tagged, holding SERVER1) nested in another repo group and read
 * by one gMSA. The commit renames it and makes a second gMSA read it, by its resource name.
 */
function renamedInGit(spec: { allowReplacement?: boolean } = {}) {
  const hosts = observedGroup("Hosts-Old", [server1.dn], { adminDisplayName: TAG });
  const all = observedGroup("All-Hosts", [hosts.dn], { adminDisplayName: "gmsa-gitops:ADGroup/all" });
  const reader = observedGmsa("Svc", [hosts.sid]);
  const observed = emptyDirectory(now, {
    groups: [hosts, all],
    gmsas: [reader, observedGmsa("Svc2", [])],
    computers: [server1],
  });
  const desired = desiredOf(
    kdsKey(),
    group("hosts", { accountName: "Hosts-New", members: [{ computer: "SERVER1" }], membership: "exact", ...spec }),
    group("all", { accountName: "All-Hosts", members: [{ group: "hosts" }], membership: "exact" }),
    gmsa("svc", { accountName: "Svc", principalsAllowedToRetrieveManagedPassword: [{ group: "hosts" }] }),
    gmsa("svc2", { accountName: "Svc2", principalsAllowedToRetrieveManagedPassword: [{ group: "hosts" }] }),
  );
  return { hosts, all, observed, desired };
}

describe("ADGroup renames in place", () => {
  it("a new accountName renames the group found by its tag: sAMAccountName, then the CN; SID and members stay, nothing is pruned", async () => {
    const { hosts, observed, desired } = renamedInGit();
    const plan = planDirectory(desired, observed, POLICY, now);
    const r = find(plan, "ADGroup", "hosts");
    expect(r.actions.map((a) => a.type)).toEqual(["rename"]);
    expect([...r.drift]).toEqual(["attribute"]);
    expect(r.changes).toEqual([
      { attribute: "sAMAccountName", from: "Hosts-Old", to: "Hosts-New" },
      { attribute: "distinguishedName", from: oldDn, to: newDn },
    ]);
    // The group that holds it and the gMSA that reads it have nothing to change.
    expect(find(plan, "ADGroup", "all").actions).toEqual([]);
    expect(find(plan, "GroupManagedServiceAccount", "svc").actions).toEqual([]);
    expect(plan.resources.flatMap((p) => p.actions).filter((a) => a.type === "delete")).toEqual([]);
    expect(plan.resources.filter((p) => p.drift.has("unexpected"))).toEqual([]);
    const text = renderText(plan, { color: false });
    expect(text).toContain('~ sAMAccountName: "Hosts-Old" → "Hosts-New"');
    expect(text).not.toMatch(/[+-] ADGroup\/hosts/);

    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes.slice(0, 2)).toEqual([
      {
        op: "modify",
        dn: oldDn,
        changes: [{ operation: "replace", attribute: "sAMAccountName", values: ["Hosts-New"] }],
      },
      { op: "move", dn: oldDn, newDn },
    ]);
    const after = rec.observed().groups.find((g) => g.samAccountName === "Hosts-New");
    expect(after).toMatchObject({ dn: newDn, sid: hosts.sid, guid: hosts.guid, members: [server1.dn] });
    expect(rec.observed().groups.find((g) => g.samAccountName === "All-Hosts")?.members).toEqual([newDn]);
    expect(countActions(planDirectory(desired, rec.observed(), POLICY, now))).toBe(0);
  });

  it("a reader added by the group's resource name in the same commit gets the group's existing SID", async () => {
    const { hosts, observed, desired } = renamedInGit();
    const plan = planDirectory(desired, observed, POLICY, now);
    const svc2 = find(plan, "GroupManagedServiceAccount", "svc2");
    expect(svc2.blocker).toBeUndefined();
    expect(svc2.changes).toEqual([{ attribute: "msDS-GroupMSAMembership", from: [], to: ["Hosts-New"] }]);
    const order = plan.resources.flatMap((p) => p.actions.map((a) => `${a.type} ${a.resource.name}`));
    expect(order).toEqual(["rename hosts", "update-gmsa svc2"]);

    const rec = recordingWriter(observed);
    const result = await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(result.results.map((x) => x.status)).toEqual(["applied", "applied"]);
    const svc2After = rec.observed().gmsas.find((g) => g.samAccountName === "Svc2");
    expect([...allowedReaders(svc2After!.groupMsaMembership!)]).toEqual([hosts.sid]);
  });

  it("a group renamed by hand in AD is renamed back, not duplicated and not pruned", () => {
    // sAMAccountName changed by hand; the CN stays what the controller made.
    const hand = observedGroup("Hosts-Hand", [], { dn: oldDn, adminDisplayName: TAG });
    const desired = desiredOf(group("hosts", { accountName: "Hosts-Old" }));
    const plan = planDirectory(desired, emptyDirectory(now, { groups: [hand] }), POLICY, now);
    expect(plan.resources.map((p) => `${p.resource.kind}/${p.resource.name}`)).toEqual(["ADGroup/hosts"]);
    const r = find(plan, "ADGroup", "hosts");
    expect([...r.drift]).toEqual(["attribute"]);
    expect(r.blocker).toBeUndefined();
    expect(r.actions).toEqual([
      {
        type: "rename",
        resource: { kind: "ADGroup", name: "hosts" },
        dn: oldDn,
        newDn: oldDn,
        samAccountName: "Hosts-Old",
        changes: [{ attribute: "sAMAccountName", from: "Hosts-Hand", to: "Hosts-Old" }],
      },
    ]);
  });

  it("a commonName in the manifest is the CN after the rename; a CN that did not follow the name stays", () => {
    const custom = observedGroup("Hosts-Old", [], { dn: `CN=Server hosts,CN=Users,${BASE}`, adminDisplayName: TAG });
    const plain = desiredOf(group("hosts", { accountName: "Hosts-New" }));
    const kept = find(planDirectory(plain, emptyDirectory(now, { groups: [custom] }), POLICY, now), "ADGroup", "hosts");
    expect(kept.changes).toEqual([{ attribute: "sAMAccountName", from: "Hosts-Old", to: "Hosts-New" }]);

    const named = desiredOf(group("hosts", { accountName: "Hosts-New", commonName: "Web hosts" }));
    const [rename, ...rest] = find(
      planDirectory(named, emptyDirectory(now, { groups: [custom] }), POLICY, now),
      "ADGroup",
      "hosts",
    ).actions;
    expect(rest).toEqual([]);
    expect(rename).toMatchObject({
      type: "rename",
      samAccountName: "Hosts-New",
      newDn: `CN=Web hosts,CN=Users,${BASE}`,
    });
  });

  it("a rename in Observe mode is reported, not done: a group that adds it names it where it is", async () => {
    const start = renamedInGit().observed;
    const observed = { ...start, gmsas: [], groups: start.groups.map((g) => ({ ...g, members: [] })) };
    const desired = desiredOf(
      group("hosts", { accountName: "Hosts-New", members: [{ computer: "SERVER1" }], mode: "Observe" }),
      group("all", { accountName: "All-Hosts", members: [{ group: "hosts" }], membership: "exact" }),
    );
    const plan = planDirectory(desired, observed, POLICY, now);
    const hosts = find(plan, "ADGroup", "hosts");
    expect(hosts.observeOnly).toBe(true);
    expect(hosts.actions[0]).toMatchObject({ type: "rename", dn: oldDn, newDn });
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([{ op: "addMembers", dn: `CN=All-Hosts,CN=Users,${BASE}`, members: [oldDn] }]);
  });

  it("with allowReplacement: true the group is deleted and created under the new name instead", async () => {
    const { observed, desired } = renamedInGit({ allowReplacement: true });
    const plan = planDirectory(desired, observed, POLICY, now);
    const r = find(plan, "ADGroup", "hosts");
    expect(r.actions.map((a) => a.type)).toEqual(["delete", "create-group", "add-members"]);
    expect(r.actions[0]).toMatchObject({ type: "delete", dn: oldDn, replacement: true });
    // The summary says the group is deleted and created, not only updated (a new SID).
    expect(planSummary(plan)).toMatchObject({ create: 1, delete: 1 });
    expect(renderText(plan, { color: false })).toMatch(/Plan: 1 to create, \d+ to update, 1 to delete/);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    const created = rec.observed().groups.find((g) => g.samAccountName === "Hosts-New")!;
    expect(created.sid).not.toBe(observed.groups[0]!.sid);
    // The reader and the parent group of this repository were given the new group.
    const svc = rec.observed().gmsas.find((g) => g.samAccountName === "Svc")!;
    expect([...allowedReaders(svc.groupMsaMembership!)]).toEqual([created.sid]);
    expect(rec.observed().groups.find((g) => g.samAccountName === "All-Hosts")?.members).toEqual([created.dn]);
    expect(countActions(planDirectory(desired, rec.observed(), POLICY, now))).toBe(0);
  });

  it("a group the controller creates carries its resource tag; an unowned group carrying a tag is never renamed", async () => {
    const rec = recordingWriter(emptyDirectory(now));
    await applyPlan(
      planDirectory(desiredOf(group("hosts", { accountName: "Hosts" })), emptyDirectory(now), POLICY, now),
      rec.writer,
      {
        now,
        owner: OWNER,
      },
    );
    expect(rec.writes[0]).toMatchObject({ op: "add", attributes: { adminDisplayName: TAG } });

    const forged = observedGroup("Theirs", [], { adminDisplayName: TAG, adminDescription: undefined, managed: false });
    const plan = planDirectory(
      desiredOf(group("hosts", { accountName: "Hosts-New" })),
      emptyDirectory(now, { groups: [forged] }),
      POLICY,
      now,
    );
    expect(find(plan, "ADGroup", "hosts").actions.map((a) => a.type)).toEqual(["create-group"]);
  });
});
