import { describe, expect, it } from "vitest";
import { decodeSecurityDescriptor, encodeGroupMsaMembership, OwnershipKey } from "../directory/index.ts";
import { applyPlan } from "./apply.ts";
import { countActions } from "./model.ts";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import { renderJson, renderMarkdown, renderText, planSummary } from "./render.ts";
import {
  BASE,
  computer,
  desiredOf,
  emptyDirectory,
  gmsa,
  group,
  kdsKey,
  kdsObserved,
  observedGmsa,
  observedGroup,
  OWNER,
  planEntry as find,
  recordingWriter,
} from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
/** The configuration's defaults: enforce, never prune, at most 5 deletions when prune is on, no adoption. */
const DEFAULT_POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };
const server1 = computer("SERVER1");
const server2 = computer("SERVER2");

function exampleDesired() {
  return desiredOf(
    kdsKey(),
    group("hosts", {
      accountName: "GMSA-Service1-Hosts",
      membership: "exact",
      members: [{ computer: "SERVER1" }, { computer: "SERVER2" }],
    }),
    gmsa("svc1", {
      accountName: "MSA-service1",
      dnsHostName: "service1.company.local",
      principalsAllowedToRetrieveManagedPassword: [{ group: "hosts" }],
      servicePrincipalNames: ["HTTP/service1.company.local"],
      description: "Service1",
    }),
  );
}

async function converge(desired: ReturnType<typeof exampleDesired>, policy: Policy = DEFAULT_POLICY) {
  const start = emptyDirectory(now, { computers: [server1, server2] });
  const rec = recordingWriter(start);
  const first = planDirectory(desired, start, policy, now);
  const result = await applyPlan(first, rec.writer, { now, owner: OWNER });
  return { rec, first, result };
}

describe("plan against an empty directory", () => {
  it("creates the group, its members and the gMSA, in dependency order", () => {
    const plan = planDirectory(
      exampleDesired(),
      emptyDirectory(now, { computers: [server1, server2] }),
      DEFAULT_POLICY,
      now,
    );
    const types = plan.resources.flatMap((r) => r.actions.map((a) => `${a.type} ${a.resource.name}`));
    expect(types).toEqual(["create-group hosts", "add-members hosts", "create-gmsa svc1"]);
    expect(planSummary(plan)).toMatchObject({ create: 2, update: 0, delete: 0, blocked: 0 });
  });

  it("applies the plan so that the next plan has no changes and writes nothing", async () => {
    const { rec, result } = await converge(exampleDesired());
    expect(result.results.every((r) => r.status === "applied")).toBe(true);
    const gmsaAdd = rec.writes.find((w) => w.op === "add" && w.dn.startsWith("CN=MSA-service1"));
    expect(gmsaAdd).toMatchObject({
      dn: `CN=MSA-service1,CN=Managed Service Accounts,${BASE}`,
      attributes: {
        objectClass: "msDS-GroupManagedServiceAccount",
        sAMAccountName: "MSA-service1$",
        userAccountControl: "4096",
        "msDS-SupportedEncryptionTypes": "24",
        "msDS-ManagedPasswordInterval": "30",
      },
    });
    // Marked once the DC has given it an objectGUID: the MAC covers that GUID.
    const account = rec.observed().gmsas[0]!;
    expect(rec.writes).toContainEqual({
      op: "modify",
      dn: account.dn,
      changes: [{ operation: "replace", attribute: "adminDescription", values: [OWNER.markerFor(account.guid!)] }],
    });
    // The descriptor names the group created earlier in the same run.
    const hostsSid = rec.observed().groups[0]!.sid;
    const sd = decodeSecurityDescriptor(
      (gmsaAdd as { attributes: Record<string, unknown> }).attributes["msDS-GroupMSAMembership"] as Buffer,
    );
    expect(sd.owner).toBe("S-1-5-32-544");
    expect(sd.aces.map((a) => [a.type, a.mask, a.sid])).toEqual([[0, 0xf01ff, hostsSid]]);

    const second = planDirectory(exampleDesired(), rec.observed(), DEFAULT_POLICY, now);
    expect(countActions(second)).toBe(0);
    expect(renderText(second)).toContain("No changes.");
  });
});

describe("hand edits in AD", () => {
  async function converged() {
    const { rec } = await converge(exampleDesired());
    return rec.observed();
  }

  it("a description edited in AD is restored, and the plan shows old → new", async () => {
    const observed = await converged();
    const edited = { ...observed, gmsas: observed.gmsas.map((g) => ({ ...g, description: "hacked" })) };
    const plan = planDirectory(exampleDesired(), edited, DEFAULT_POLICY, now);
    const r = find(plan, "GroupManagedServiceAccount", "svc1");
    expect([...r.drift]).toEqual(["attribute"]);
    expect(r.changes).toEqual([{ attribute: "description", from: "hacked", to: "Service1" }]);
    expect(renderText(plan)).toContain('~ description: "hacked" → "Service1"');
  });

  it("with servicePrincipalNamesPolicy exact, an SPN added by hand is removed by value, never by replace", async () => {
    const observed = await converged();
    const edited = {
      ...observed,
      gmsas: observed.gmsas.map((g) => ({ ...g, servicePrincipalNames: [...g.servicePrincipalNames, "HOST/evil"] })),
    };
    const desired = exampleDesired();
    const svc1 = desired.gmsas.get("svc1")!;
    const exact = desiredOf(
      ...desired.groups.values(),
      gmsa("svc1", { ...svc1.spec, servicePrincipalNamesPolicy: "exact" }),
    );
    const plan = planDirectory(exact, edited, DEFAULT_POLICY, now);
    const rec = recordingWriter(edited);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([
      {
        op: "modify",
        dn: `CN=MSA-service1,CN=Managed Service Accounts,${BASE}`,
        changes: [{ operation: "delete", attribute: "servicePrincipalName", values: ["HOST/evil"] }],
      },
    ]);
  });

  it("a member removed by hand is added back; exact membership removes a stranger", async () => {
    const observed = await converged();
    const stranger = `CN=INTRUDER,CN=Computers,${BASE}`;
    const edited = {
      ...observed,
      groups: observed.groups.map((g) => ({ ...g, members: [server1.dn, stranger] })),
    };
    const plan = planDirectory(exampleDesired(), edited, DEFAULT_POLICY, now);
    expect(find(plan, "ADGroup", "hosts").actions.map((a) => a.type)).toEqual(["add-members", "remove-members"]);
    const rec = recordingWriter(edited);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes.map((w) => [w.op, "members" in w ? w.members : []])).toEqual([
      ["addMembers", [server2.dn]],
      ["removeMembers", [stranger]],
    ]);
  });

  it("additive membership leaves members it does not list", () => {
    const desired = desiredOf(group("g", { accountName: "G1", members: [{ computer: "SERVER1" }] }));
    const observed = emptyDirectory(now, {
      computers: [server1],
      groups: [observedGroup("G1", [server1.dn, `CN=OTHER,CN=Computers,${BASE}`])],
    });
    expect(countActions(planDirectory(desired, observed, DEFAULT_POLICY, now))).toBe(0);
  });

  it("a deleted gMSA is created again", async () => {
    const observed = await converged();
    const plan = planDirectory(exampleDesired(), { ...observed, gmsas: [] }, DEFAULT_POLICY, now);
    expect(find(plan, "GroupManagedServiceAccount", "svc1").actions.map((a) => a.type)).toEqual(["create-gmsa"]);
  });

  it("a principal removed from the descriptor is written back as the whole value", async () => {
    const observed = await converged();
    const edited = {
      ...observed,
      gmsas: observed.gmsas.map((g) => ({ ...g, groupMsaMembership: encodeGroupMsaMembership([]) })),
    };
    const plan = planDirectory(exampleDesired(), edited, DEFAULT_POLICY, now);
    const r = find(plan, "GroupManagedServiceAccount", "svc1");
    expect([...r.drift]).toEqual(["principals"]);
    expect(r.changes).toEqual([{ attribute: "msDS-GroupMSAMembership", from: [], to: ["GMSA-Service1-Hosts"] }]);
  });
});

describe("who owns a list", () => {
  const sqlSpns = ["MSSQLSvc/sql1.company.local", "MSSQLSvc/sql1.company.local:1433"];

  it("SPNs a service registered itself stay when the manifest lists none (additive is the default)", () => {
    const desired = desiredOf(gmsa("sql", { accountName: "gMSA-SQL1" }));
    const observed = emptyDirectory(now, {
      gmsas: [observedGmsa("gMSA-SQL1", [], { servicePrincipalNames: sqlSpns })],
    });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    expect(countActions(plan)).toBe(0);
    expect([...find(plan, "GroupManagedServiceAccount", "sql").drift]).toEqual([]);
  });

  it("additive SPNs: the listed SPN is added, a removeServicePrincipalNames entry is deleted by value, the rest stays", async () => {
    const desired = desiredOf(
      gmsa("sql", {
        accountName: "gMSA-SQL1",
        servicePrincipalNames: ["HTTP/reports.company.local"],
        removeServicePrincipalNames: ["mssqlsvc/SQL1.company.local:1433"],
      }),
    );
    const observed = emptyDirectory(now, {
      gmsas: [observedGmsa("gMSA-SQL1", [], { servicePrincipalNames: sqlSpns })],
    });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    expect(find(plan, "GroupManagedServiceAccount", "sql").changes).toEqual([
      {
        attribute: "servicePrincipalName",
        from: sqlSpns,
        to: ["HTTP/reports.company.local", "MSSQLSvc/sql1.company.local"],
      },
    ]);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([
      {
        op: "modify",
        dn: `CN=gMSA-SQL1,CN=Managed Service Accounts,${BASE}`,
        changes: [
          { operation: "add", attribute: "servicePrincipalName", values: ["HTTP/reports.company.local"] },
          { operation: "delete", attribute: "servicePrincipalName", values: ["MSSQLSvc/sql1.company.local:1433"] },
        ],
      },
    ]);
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });

  it("additive readers keep a reader granted outside the repository; removePrincipals revokes one", async () => {
    const tier0 = observedGroup("Tier0-Admins", [], { managed: false, adminDescription: undefined });
    const legacy = computer("LEGACY1");
    const desired = desiredOf(
      gmsa("svc", {
        accountName: "Svc",
        principalsPolicy: "additive",
        principalsAllowedToRetrieveManagedPassword: [{ computer: "SERVER1" }],
        removePrincipals: [{ computer: "LEGACY1" }],
      }),
    );
    const observed = emptyDirectory(now, {
      computers: [server1, legacy],
      groups: [tier0],
      gmsas: [observedGmsa("Svc", [tier0.sid, legacy.sid])],
    });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    expect(find(plan, "GroupManagedServiceAccount", "svc").changes).toEqual([
      { attribute: "msDS-GroupMSAMembership", from: ["LEGACY1$", "Tier0-Admins"], to: ["SERVER1$", "Tier0-Admins"] },
    ]);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    const write = rec.writes[0] as unknown as { changes: { values: Buffer[] }[] };
    const sd = decodeSecurityDescriptor(write.changes[0]!.values[0]!);
    expect(sd.aces.map((a) => a.sid).sort()).toEqual([server1.sid, tier0.sid].sort());
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });

  it("exact readers (the default) still revoke a reader the manifest does not list", () => {
    const stranger = computer("STRANGER");
    const desired = desiredOf(
      gmsa("svc", { accountName: "Svc", principalsAllowedToRetrieveManagedPassword: [{ computer: "SERVER1" }] }),
    );
    const observed = emptyDirectory(now, {
      computers: [server1, stranger],
      gmsas: [observedGmsa("Svc", [server1.sid, stranger.sid])],
    });
    const r = find(planDirectory(desired, observed, DEFAULT_POLICY, now), "GroupManagedServiceAccount", "svc");
    expect(r.changes).toEqual([
      { attribute: "msDS-GroupMSAMembership", from: ["SERVER1$", "STRANGER$"], to: ["SERVER1$"] },
    ]);
  });

  it("removeMembers takes one member out of an additive group and leaves the members it does not list", async () => {
    const other = `CN=OTHER,CN=Computers,${BASE}`;
    const desired = desiredOf(
      group("g", { accountName: "G1", members: [{ computer: "SERVER1" }], removeMembers: [{ computer: "SERVER2" }] }),
    );
    const observed = emptyDirectory(now, {
      computers: [server1, server2],
      groups: [observedGroup("G1", [server1.dn, server2.dn, other])],
    });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    expect(find(plan, "ADGroup", "g").changes).toEqual([
      { attribute: "member", from: [other, "SERVER1$", "SERVER2$"], to: [other, "SERVER1$"] },
    ]);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([{ op: "removeMembers", dn: `CN=G1,CN=Users,${BASE}`, members: [server2.dn] }]);
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });

  it("a member to remove that AD does not know blocks nothing and removes nothing", () => {
    const desired = desiredOf(
      group("g", { accountName: "G1", members: [{ computer: "SERVER1" }], removeMembers: [{ computer: "GONE" }] }),
    );
    const observed = emptyDirectory(now, { computers: [server1], groups: [observedGroup("G1", [server1.dn])] });
    const r = find(planDirectory(desired, observed, DEFAULT_POLICY, now), "ADGroup", "g");
    expect(r.blocker).toBeUndefined();
    expect(r.actions).toEqual([]);
  });
});

describe("any principal", () => {
  it("a user, a gMSA and a SID resolve from what observe read; a user AD lacks stalls the account, revoking no one", () => {
    const jane = {
      dn: `CN=Jane,CN=Users,${BASE}`,
      sid: "S-1-5-21-1-2-3-5001",
      samAccountName: "jane",
      objectClass: "user",
    };
    const web = observedGmsa("gMSA-Web", []);
    const desired = (user: string) =>
      desiredOf(
        gmsa("web", { accountName: "gMSA-Web" }),
        gmsa("app", {
          accountName: "App",
          principalsAllowedToRetrieveManagedPassword: [{ user }, { serviceAccount: "web" }, { sid: server1.sid }],
        }),
      );
    const observed = emptyDirectory(now, {
      computers: [server1],
      gmsas: [web, observedGmsa("App", [])],
      principals: [jane],
    });
    const ok = find(planDirectory(desired("JANE"), observed, DEFAULT_POLICY, now), "GroupManagedServiceAccount", "app");
    expect(ok.changes).toEqual([
      { attribute: "msDS-GroupMSAMembership", from: [], to: ["gMSA-Web$", "jane", "SERVER1$"] },
    ]);
    const typo = find(
      planDirectory(desired("jnae"), observed, DEFAULT_POLICY, now),
      "GroupManagedServiceAccount",
      "app",
    );
    expect(typo.blocker).toMatchObject({ reason: "PrincipalNotFound", message: "not found in AD: user jnae" });
    expect(typo.actions).toEqual([]);
  });
});

describe("renames in place", () => {
  const key = "gmsa-gitops:GroupManagedServiceAccount/svc";

  it("a new accountName renames the owned gMSA found by its resource key: sAMAccountName, then the CN; nothing is pruned", async () => {
    const desired = desiredOf(gmsa("svc", { accountName: "Svc-New", dnsHostName: "svc-old.company.local" }));
    const old = observedGmsa("Svc-Old", [], { adminDisplayName: key });
    const observed = emptyDirectory(now, { gmsas: [old] });
    const plan = planDirectory(desired, observed, { ...DEFAULT_POLICY, prune: true }, now);
    expect(plan.resources.map((r) => `${r.resource.kind}/${r.resource.name}`)).toEqual([
      "GroupManagedServiceAccount/svc",
    ]);
    const r = find(plan, "GroupManagedServiceAccount", "svc");
    expect(r.actions.map((a) => a.type)).toEqual(["rename"]);
    expect(r.changes).toEqual([
      { attribute: "sAMAccountName", from: "Svc-Old$", to: "Svc-New$" },
      {
        attribute: "distinguishedName",
        from: `CN=Svc-Old,CN=Managed Service Accounts,${BASE}`,
        to: `CN=Svc-New,CN=Managed Service Accounts,${BASE}`,
      },
    ]);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([
      {
        op: "modify",
        dn: `CN=Svc-Old,CN=Managed Service Accounts,${BASE}`,
        changes: [{ operation: "replace", attribute: "sAMAccountName", values: ["Svc-New$"] }],
      },
      {
        op: "move",
        dn: `CN=Svc-Old,CN=Managed Service Accounts,${BASE}`,
        newDn: `CN=Svc-New,CN=Managed Service Accounts,${BASE}`,
      },
    ]);
    expect(rec.observed().gmsas.map((g) => g.sid)).toEqual([old.sid]);
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });

  it("a CN that did not follow the name stays; an unowned object carrying the key is never renamed", () => {
    const desired = desiredOf(gmsa("svc", { accountName: "Svc-New", dnsHostName: "svc-old.company.local" }));
    const custom = observedGmsa("Svc-Old", [], {
      adminDisplayName: key,
      dn: `CN=SQL engine,CN=Managed Service Accounts,${BASE}`,
    });
    const r = find(
      planDirectory(desired, emptyDirectory(now, { gmsas: [custom] }), DEFAULT_POLICY, now),
      "GroupManagedServiceAccount",
      "svc",
    );
    expect(r.changes).toEqual([{ attribute: "sAMAccountName", from: "Svc-Old$", to: "Svc-New$" }]);

    const forged = observedGmsa("Theirs", [], { adminDisplayName: key, adminDescription: undefined, managed: false });
    const plan = planDirectory(desired, emptyDirectory(now, { gmsas: [forged] }), DEFAULT_POLICY, now);
    expect(find(plan, "GroupManagedServiceAccount", "svc").actions.map((a) => a.type)).toEqual(["create-gmsa"]);
  });
});

describe("enabled state", () => {
  it("a gMSA disabled by hand is reported and enabled again", async () => {
    const desired = desiredOf(gmsa("svc", { accountName: "Svc" }));
    const observed = emptyDirectory(now, { gmsas: [observedGmsa("Svc", [], { userAccountControl: 4096 | 0x2 })] });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    const r = find(plan, "GroupManagedServiceAccount", "svc");
    expect([...r.drift]).toEqual(["attribute"]);
    expect(r.changes).toEqual([{ attribute: "userAccountControl", from: "4098 (disabled)", to: "4096 (enabled)" }]);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([
      {
        op: "modify",
        dn: `CN=Svc,CN=Managed Service Accounts,${BASE}`,
        changes: [{ operation: "replace", attribute: "userAccountControl", values: ["4096"] }],
      },
    ]);
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });

  it("enabled: false disables an existing account and creates a new one disabled", async () => {
    const desired = desiredOf(
      gmsa("svc", { accountName: "Svc", enabled: false }),
      gmsa("new", { accountName: "New", enabled: false }),
    );
    const observed = emptyDirectory(now, { gmsas: [observedGmsa("Svc", [])] });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    expect(find(plan, "GroupManagedServiceAccount", "svc").changes).toEqual([
      { attribute: "userAccountControl", from: "4096 (enabled)", to: "4098 (disabled)" },
    ]);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes.find((w) => w.op === "add")).toMatchObject({ attributes: { userAccountControl: "4098" } });
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });
});

describe("placement", () => {
  it("a gMSA found in another container is moved there, keeping its name, then updated at its new DN", async () => {
    const desired = desiredOf(gmsa("svc", { accountName: "Svc", description: "new" }));
    const elsewhere = observedGmsa("Svc", [], { dn: `CN=Svc,OU=Old,${BASE}`, description: "old" });
    const observed = emptyDirectory(now, { gmsas: [elsewhere] });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    const target = `CN=Svc,CN=Managed Service Accounts,${BASE}`;
    expect(rec.writes.map((w) => [w.op, "dn" in w ? w.dn : ""])).toEqual([
      ["move", `CN=Svc,OU=Old,${BASE}`],
      ["modify", target],
    ]);
    expect(countActions(planDirectory(desired, rec.observed(), DEFAULT_POLICY, now))).toBe(0);
  });
});

describe("ownership", () => {
  it("an unmarked object with a managed name is a conflict and is never written", async () => {
    const desired = desiredOf(gmsa("svc", { accountName: "Svc" }));
    const observed = emptyDirectory(now, {
      gmsas: [observedGmsa("Svc", [], { adminDescription: undefined, managed: false, description: "theirs" })],
    });
    const plan = planDirectory(desired, { ...observed }, DEFAULT_POLICY, now);
    const r = find(plan, "GroupManagedServiceAccount", "svc");
    expect([...r.drift]).toEqual(["conflict"]);
    expect(r.blocker?.reason).toBe("NotOwned");
    const rec = recordingWriter(observed);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([]);
  });

  it("with adoption the marker is stamped on the object", () => {
    const desired = desiredOf(gmsa("svc", { accountName: "Svc" }));
    const account = observedGmsa("Svc", [], { adminDescription: undefined, managed: false });
    const plan = planDirectory(
      desired,
      emptyDirectory(now, { gmsas: [account] }),
      { ...DEFAULT_POLICY, adopt: true },
      now,
    );
    const action = find(plan, "GroupManagedServiceAccount", "svc").actions[0];
    expect(action).toMatchObject({
      type: "update-gmsa",
      adopt: true,
      set: { adminDescription: OWNER.markerFor(account.guid!) },
    });
  });

  // Anyone who may write adminDescription could write these; none of them makes an object ours.
  const forgeries: Array<[string, (guid: string) => string]> = [
    ["the pre-v2 marker", () => "gmsa-gitops:managed"],
    ["a v2 marker with a made-up MAC", () => "gmsa-gitops:v2:test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    ["a valid marker copied from another object", () => OWNER.markerFor("11111111-2222-4333-8444-555555555555")],
    [
      "a marker made with another key",
      (guid) => new OwnershipKey("test", Buffer.from("another-key-another-key-another-key!")).markerFor(guid),
    ],
  ];
  for (const [what, forge] of forgeries) {
    it(`${what} is a conflict: never written, never pruned, re-marked by --adopt`, async () => {
      const g = observedGroup("Forged", [], {});
      const forged = { ...g, adminDescription: forge(g.guid!) };
      const observed = emptyDirectory(now, { groups: [forged] });
      const managed = desiredOf(group("forged", { accountName: "Forged", membership: "exact" }));
      const plan = planDirectory(managed, observed, DEFAULT_POLICY, now);
      expect(find(plan, "ADGroup", "forged").blocker?.reason).toBe("NotOwned");
      const pruned = planDirectory(
        desiredOf(group("other", { accountName: "Other" })),
        observed,
        {
          ...DEFAULT_POLICY,
          prune: true,
        },
        now,
      );
      expect(pruned.resources.some((r) => r.drift.has("unexpected"))).toBe(false);
      const rec = recordingWriter(observed);
      await applyPlan(plan, rec.writer, { now, owner: OWNER });
      expect(rec.writes).toEqual([]);
      const adopted = planDirectory(managed, observed, { ...DEFAULT_POLICY, adopt: true }, now);
      expect(find(adopted, "ADGroup", "forged").actions).toEqual([
        expect.objectContaining({ type: "update-group", adopt: true, marker: OWNER.markerFor(g.guid!) }),
      ]);
    });
  }

  it("an object of another owner id is never touched, not even with --adopt or --prune", () => {
    const other = new OwnershipKey("team-b", Buffer.from("team-b-ownership-key-0123456789abcdef"));
    const g = observedGroup("Theirs", []);
    const theirs = { ...g, adminDescription: other.markerFor(g.guid!) };
    const observed = emptyDirectory(now, { groups: [theirs] });
    const policy = { ...DEFAULT_POLICY, adopt: true, prune: true };
    const plan = planDirectory(desiredOf(group("theirs", { accountName: "Theirs" })), observed, policy, now);
    expect(find(plan, "ADGroup", "theirs")).toMatchObject({
      actions: [],
      blocker: { outcome: "stalled", reason: "OwnedByOtherController" },
    });
    const pruned = planDirectory(desiredOf(group("x", { accountName: "X" })), observed, policy, now);
    expect(pruned.resources.filter((r) => r.drift.has("unexpected"))).toEqual([]);
  });
});

describe("protected objects", () => {
  const domainAdmins = observedGroup("Domain Admins", [], {
    sid: "S-1-5-21-1-2-3-512",
    isCriticalSystemObject: true,
    adminCount: 1,
  });
  const administrators = observedGroup("Administrators", [], {
    dn: `CN=Administrators,CN=Builtin,${BASE}`,
    sid: "S-1-5-32-544",
    groupType: -2147483643,
  });
  const cases: Array<[string, ReturnType<typeof observedGroup>, RegExp]> = [
    ["Domain Admins (critical, adminCount, RID 512)", domainAdmins, /isCriticalSystemObject/],
    ["Administrators (CN=Builtin, S-1-5-32-544)", administrators, /builtin/i],
    ["a group with adminCount=1", observedGroup("Ops", [], { adminCount: 1 }), /adminCount/],
    ["a group with a well-known RID", observedGroup("Rid", [], { sid: "S-1-5-21-1-2-3-520" }), /RID 520/],
    [
      "a group in CN=System",
      observedGroup("Sys", [], { dn: `CN=Sys,CN=System,${BASE}` }),
      /built-in container CN=System/,
    ],
  ];
  for (const [what, object, why] of cases) {
    it(`${what} is protected: marker and --adopt are ignored, prune never deletes it`, async () => {
      // Even a marker this controller made itself does not help.
      const marked = { ...object, adminDescription: OWNER.markerFor(object.guid!) };
      const observed = emptyDirectory(now, { groups: [marked] });
      const desired = desiredOf(group("g", { accountName: object.samAccountName, membership: "exact" }));
      const policy = { ...DEFAULT_POLICY, adopt: true, prune: true };
      const plan = planDirectory(desired, observed, policy, now);
      const r = find(plan, "ADGroup", "g");
      expect(r.actions).toEqual([]);
      expect(r.blocker).toMatchObject({ outcome: "stalled", reason: "Protected", message: expect.stringMatching(why) });
      expect(renderText(plan)).toMatch(/! protected: /);
      const pruned = planDirectory(desiredOf(group("x", { accountName: "X" })), observed, policy, now);
      expect(pruned.resources.flatMap((p) => p.actions)).not.toContainEqual(
        expect.objectContaining({ type: "delete" }),
      );
      const rec = recordingWriter(observed);
      await applyPlan(pruned, rec.writer, { now, owner: OWNER });
      await applyPlan(plan, rec.writer, { now, owner: OWNER });
      expect(rec.writes.filter((w) => "dn" in w && w.dn === object.dn)).toEqual([]);
    });
  }
});

describe("prune", () => {
  const leftovers = () =>
    emptyDirectory(now, {
      gmsas: [
        observedGmsa("Old1", []),
        observedGmsa("Old2", []),
        observedGmsa("NotOurs", [], { adminDescription: undefined, managed: false }),
      ],
    });
  const keep = desiredOf(gmsa("keep", { accountName: "Keep" }));

  it("is reported but not done without --prune; unmarked objects are not even reported", () => {
    const plan = planDirectory(keep, leftovers(), DEFAULT_POLICY, now);
    const pruned = plan.resources.filter((r) => r.drift.has("unexpected"));
    expect(pruned.map((r) => r.resource.name)).toEqual(["old1", "old2"]);
    expect(pruned.every((r) => r.actions.length === 0)).toBe(true);
  });

  it("deletes at most the budget per run and defers the rest", () => {
    const plan = planDirectory(keep, leftovers(), { ...DEFAULT_POLICY, prune: true, deletionBudget: 1 }, now);
    const pruned = plan.resources.filter((r) => r.drift.has("unexpected"));
    expect(pruned.map((r) => r.actions.length)).toEqual([1, 0]);
    expect(pruned[1]!.blocker).toMatchObject({ outcome: "waiting", reason: "DeletionBudgetExhausted" });
    expect(pruned[1]!.blocker?.message).toContain("deletion budget of 1");
  });

  it("a group whose sAMAccountName was changed by hand, at the DN its manifest wants, is never deleted, not even with --prune", () => {
    // Deleting it would give the group a new SID: every host allowed through it would lose the
    // password until its Kerberos ticket renews. The renamed object keeps its CN, so it sits
    // exactly where the manifest's group belongs.
    const desired = desiredOf(group("hosts", { accountName: "GMSA-Service1-Hosts" }), keep.gmsas.get("keep")!);
    const renamed = observedGroup("Hosts-Renamed", [], { dn: `CN=GMSA-Service1-Hosts,CN=Users,${BASE}` });
    const observed = emptyDirectory(now, { groups: [renamed] });
    const plan = planDirectory(desired, observed, { ...DEFAULT_POLICY, prune: true, deletionBudget: 100 }, now);
    const deletions = plan.resources.flatMap((r) => r.actions).filter((a) => a.type === "delete");
    expect(deletions).toEqual([]);
    const held = plan.resources.find((r) => r.drift.has("unexpected"));
    expect(held?.blocker).toMatchObject({ outcome: "stalled", reason: "PruneRefused" });
    expect(held?.blocker?.message).toContain("ADGroup/hosts");
    expect(held?.blocker?.message).toContain("GMSA-Service1-Hosts");
  });

  it("a revision with no manifests never prunes", () => {
    const plan = planDirectory(desiredOf(), leftovers(), { ...DEFAULT_POLICY, prune: true, deletionBudget: 100 }, now);
    expect(countActions(plan)).toBe(0);
    expect(plan.notes.join()).toContain("no manifests");
  });
});

describe("KDS root key", () => {
  it("without an effective key gMSAs wait with the time, groups still apply", () => {
    const desired = desiredOf(group("g", { accountName: "G1" }), gmsa("svc", { accountName: "Svc" }));
    const observed = emptyDirectory(now, { kdsRootKeys: [kdsObserved(now, 1)] });
    const plan = planDirectory(desired, observed, DEFAULT_POLICY, now);
    const svc = find(plan, "GroupManagedServiceAccount", "svc");
    expect(svc.actions).toEqual([]);
    expect(svc.blocker).toMatchObject({ outcome: "waiting", reason: "KdsRootKeyNotEffective" });
    expect(svc.blocker?.until?.toISOString()).toBe("2026-11-25T21:05:00.000Z");
    expect(find(plan, "ADGroup", "g").actions.map((a) => a.type)).toEqual(["create-group"]);
  });

  it("with no key and no KdsRootKey resource a gMSA is stalled", () => {
    const plan = planDirectory(
      desiredOf(gmsa("svc", { accountName: "Svc" })),
      emptyDirectory(now, { kdsRootKeys: [] }),
      DEFAULT_POLICY,
      now,
    );
    expect(find(plan, "GroupManagedServiceAccount", "svc").blocker).toMatchObject({ outcome: "stalled" });
  });

  it("a missing key is created first; an effective-immediately key lets gMSAs be created in the same run", () => {
    const desired = desiredOf(kdsKey({ effectiveImmediately: true }), gmsa("svc", { accountName: "Svc" }));
    const plan = planDirectory(desired, emptyDirectory(now, { kdsRootKeys: [] }), DEFAULT_POLICY, now);
    expect(plan.resources.flatMap((r) => r.actions.map((a) => a.type))).toEqual(["create-kds-root-key", "create-gmsa"]);
  });
});

describe("immutable password interval", () => {
  const desired = (allowReplacement: boolean) =>
    desiredOf(gmsa("svc", { accountName: "Svc", managedPasswordIntervalInDays: 60, allowReplacement }));
  const observed = () => emptyDirectory(now, { gmsas: [observedGmsa("Svc", [], { passwordIntervalDays: 30 })] });

  it("is reported as needing replacement and not acted on", () => {
    const r = find(planDirectory(desired(false), observed(), DEFAULT_POLICY, now), "GroupManagedServiceAccount", "svc");
    expect([...r.drift]).toContain("immutable");
    expect(r.actions).toEqual([]);
    expect(r.blocker?.reason).toBe("ImmutableFieldChanged");
  });

  it("is replaced (delete, then create) only when the manifest allows it", () => {
    const r = find(planDirectory(desired(true), observed(), DEFAULT_POLICY, now), "GroupManagedServiceAccount", "svc");
    expect(r.actions.map((a) => a.type)).toEqual(["delete", "create-gmsa"]);
  });
});

describe("modes and failures", () => {
  it("observe mode reports drift and apply writes nothing", async () => {
    const start = emptyDirectory(now, { computers: [server1, server2] });
    const plan = planDirectory(exampleDesired(), start, { ...DEFAULT_POLICY, mode: "observe" }, now);
    expect(plan.resources.every((r) => r.observeOnly)).toBe(true);
    expect(countActions(plan)).toBe(0);
    const rec = recordingWriter(start);
    await applyPlan(plan, rec.writer, { now, owner: OWNER });
    expect(rec.writes).toEqual([]);
  });

  it("a failed group skips the gMSA that needs it but not an independent one", async () => {
    const desired = desiredOf(
      group("hosts", { accountName: "Hosts", members: [{ computer: "SERVER1" }] }),
      gmsa("a", { accountName: "A", principalsAllowedToRetrieveManagedPassword: [{ group: "hosts" }] }),
      gmsa("b", { accountName: "B", principalsAllowedToRetrieveManagedPassword: [{ computer: "SERVER1" }] }),
    );
    const start = emptyDirectory(now, { computers: [server1] });
    const rec = recordingWriter(start, /^CN=Hosts,/);
    const result = await applyPlan(planDirectory(desired, start, DEFAULT_POLICY, now), rec.writer, {
      now,
      owner: OWNER,
    });
    expect(result.results.map((r) => [r.action.type, r.action.resource.name, r.status])).toEqual([
      ["create-group", "hosts", "failed"],
      ["add-members", "hosts", "skipped"],
      ["create-gmsa", "a", "skipped"],
      ["create-gmsa", "b", "applied"],
    ]);
    expect(result.results[0]!.outcome).toBe("transient");
  });

  it("an aborted apply finishes nothing after the signal", async () => {
    const start = emptyDirectory(now, { computers: [server1, server2] });
    const controller = new AbortController();
    const rec = recordingWriter(start);
    const result = await applyPlan(planDirectory(exampleDesired(), start, DEFAULT_POLICY, now), rec.writer, {
      owner: OWNER,
      now,
      signal: controller.signal,
      onResult: () => controller.abort(),
    });
    expect(result.aborted).toBe(true);
    expect(result.results).toHaveLength(1);
  });

  it("a missing computer stalls the gMSA instead of revoking it", () => {
    const desired = desiredOf(
      gmsa("svc", { accountName: "Svc", principalsAllowedToRetrieveManagedPassword: [{ computer: "GONE" }] }),
    );
    const observed = emptyDirectory(now, { gmsas: [observedGmsa("Svc", [server1.sid])], computers: [server1] });
    const r = find(planDirectory(desired, observed, DEFAULT_POLICY, now), "GroupManagedServiceAccount", "svc");
    expect(r.blocker).toMatchObject({
      outcome: "stalled",
      reason: "PrincipalNotFound",
      message: "not found in AD: computer GONE",
    });
    expect(r.actions).toEqual([]);
  });
});

describe("rendering", () => {
  it("text, JSON and Markdown agree on the counts", () => {
    const plan = planDirectory(
      exampleDesired(),
      emptyDirectory(now, { computers: [server1, server2] }),
      DEFAULT_POLICY,
      now,
    );
    expect(renderText(plan)).toMatch(/^\+ ADGroup\/hosts {2}\(CN=GMSA-Service1-Hosts,CN=Users,DC=company,DC=local\)$/m);
    expect(renderText(plan)).toMatch(/Plan: 2 to create, 0 to update, 0 to delete\.\n$/);
    expect(JSON.parse(renderJson(plan)).summary).toMatchObject({ create: 2, update: 0, delete: 0 });
    expect(renderMarkdown(plan)).toContain("**2** to create");
  });
});
