// Delegation and group attributes through diff and plan (pure): what is written for each field,
// and that fields left out are never written.
import { describe, expect, it } from "vitest";
import { decodeSecurityDescriptor, encodeGroupMsaMembership } from "../directory/index.ts";
import type { Action } from "./model.ts";
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
  observedGmsa,
  observedGroup,
  OWNER,
} from "../../test/support/reconcile.ts";

const now = new Date("2026-11-25T12:00:00Z");
const POLICY: Policy = { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER };
const iis = computer("IIS1");

function actionsOf(...args: Parameters<typeof planDirectory>): Action[] {
  return planDirectory(...args).resources.flatMap((r) => r.actions);
}

describe("delegation", () => {
  it("fields left out write nothing, whatever AD holds", () => {
    const observed = observedGmsa("gMSA-Web", [], {
      userAccountControl: 0x1000 | 0x80000 | 0x100000,
      allowedToDelegateTo: ["cifs/fs1.company.local"],
      allowedToActOnBehalf: encodeGroupMsaMembership([iis.sid]),
    });
    const desired = desiredOf(kdsKey(), gmsa("web", { accountName: "gMSA-Web" }));
    const directory = emptyDirectory(now, { gmsas: [observed] });
    expect(actionsOf(desired, directory, POLICY, now)).toEqual([]);
  });

  it("flags change only their bits; the constrained list by value; the resource-based descriptor whole", () => {
    const observed = observedGmsa("gMSA-Web", [], {
      userAccountControl: 0x1000 | 0x10000 | 0x80000,
      allowedToDelegateTo: ["cifs/fs1.company.local", "MSSQLSvc/sql1.company.local"],
    });
    const desired = desiredOf(
      kdsKey(),
      gmsa("web", {
        accountName: "gMSA-Web",
        trustedForDelegation: false,
        trustedToAuthForDelegation: true,
        allowedToDelegateTo: ["mssqlsvc/SQL1.company.local", "MSSQLSvc/sql1.company.local:1433"],
        principalsAllowedToDelegateToAccount: [{ computer: "IIS1" }],
      }),
    );
    const directory = emptyDirectory(now, { gmsas: [observed], computers: [iis] });
    const [update, ...rest] = actionsOf(desired, directory, POLICY, now);
    expect(rest).toEqual([]);
    if (update?.type !== "update-gmsa") throw new Error(`expected update-gmsa, got ${update?.type}`);
    expect(update.set).toEqual({ userAccountControl: String(0x1000 | 0x10000 | 0x1000000) });
    expect(update.addDelegateTo).toEqual(["MSSQLSvc/sql1.company.local:1433"]);
    expect(update.removeDelegateTo).toEqual(["cifs/fs1.company.local"]);
    expect(update.delegators).toEqual([{ type: "object", dn: iis.dn, sid: iis.sid, label: "IIS1$" }]);
    expect(update.changes.map((c) => c.attribute)).toEqual([
      "userAccountControl",
      "msDS-AllowedToDelegateTo",
      "msDS-AllowedToActOnBehalfOfOtherIdentity",
    ]);
  });

  it("a new account gets the flags, the list and the descriptor in its add; a principal not found blocks it", () => {
    const spec = {
      accountName: "gMSA-Web",
      accountNotDelegated: true,
      allowedToDelegateTo: ["MSSQLSvc/sql1.company.local:1433"],
      principalsAllowedToDelegateToAccount: [{ computer: "IIS1" }],
    };
    const directory = emptyDirectory(now, { computers: [iis] });
    const [create] = actionsOf(desiredOf(kdsKey(), gmsa("web", spec)), directory, POLICY, now);
    if (create?.type !== "create-gmsa") throw new Error(`expected create-gmsa, got ${create?.type}`);
    expect(create.userAccountControl).toBe(0x1000 | 0x100000);
    expect(create.allowedToDelegateTo).toEqual(["MSSQLSvc/sql1.company.local:1433"]);
    expect(create.delegators?.map((d) => d.label)).toEqual(["IIS1$"]);

    const plan = planDirectory(desiredOf(kdsKey(), gmsa("web", spec)), emptyDirectory(now), POLICY, now);
    const web = plan.resources.find((r) => r.resource.name === "web");
    expect(web?.actions).toEqual([]);
    expect(web?.blocker?.message).toBe("not found in AD: computer IIS1");
  });

  it("delegation changed by hand is drift of type delegation, not attribute; the enabled bit stays attribute", () => {
    const desired = desiredOf(
      kdsKey(),
      gmsa("web", {
        accountName: "gMSA-Web",
        trustedForDelegation: false,
        accountNotDelegated: true,
        allowedToDelegateTo: ["MSSQLSvc/sql1.company.local:1433"],
      }),
    );
    const driftOf = (observed: ReturnType<typeof observedGmsa>) =>
      planDirectory(desired, emptyDirectory(now, { gmsas: [observed] }), POLICY, now).resources.find(
        (r) => r.resource.name === "web",
      )?.drift;
    const clean = { allowedToDelegateTo: ["MSSQLSvc/sql1.company.local:1433"] };
    expect([
      ...(driftOf(observedGmsa("gMSA-Web", [], { ...clean, userAccountControl: 0x1000 | 0x100000 })) ?? []),
    ]).toEqual([]);
    // Unconstrained delegation switched on and "sensitive" cleared by hand: flags only.
    expect([
      ...(driftOf(observedGmsa("gMSA-Web", [], { ...clean, userAccountControl: 0x1000 | 0x80000 })) ?? []),
    ]).toEqual(["delegation"]);
    // A constrained-delegation target added by hand.
    const added = { allowedToDelegateTo: [...clean.allowedToDelegateTo, "cifs/fs1.company.local"] };
    expect([
      ...(driftOf(observedGmsa("gMSA-Web", [], { ...added, userAccountControl: 0x1000 | 0x100000 })) ?? []),
    ]).toEqual(["delegation"]);
    // Disabled by hand, delegation untouched: the enabled state is an attribute.
    expect([
      ...(driftOf(observedGmsa("gMSA-Web", [], { ...clean, userAccountControl: 0x1000 | 0x100000 | 0x2 })) ?? []),
    ]).toEqual(["attribute"]);
  });

  it("an ACE with GENERIC_ALL alone allows nothing to the KDC: the descriptor is drift", () => {
    const generic = encodeGroupMsaMembership([iis.sid]);
    generic.writeUInt32LE(0x1000_0000, 20 + 16 + 8 + 4); // header, owner S-1-5-32-544, ACL header, ACE header
    expect(decodeSecurityDescriptor(generic).aces[0]?.mask).toBe(0x1000_0000);
    const observed = observedGmsa("gMSA-Web", [], { allowedToActOnBehalf: generic });
    const desired = desiredOf(
      kdsKey(),
      gmsa("web", { accountName: "gMSA-Web", principalsAllowedToDelegateToAccount: [{ computer: "IIS1" }] }),
    );
    const [update] = actionsOf(desired, emptyDirectory(now, { gmsas: [observed], computers: [iis] }), POLICY, now);
    expect(update?.type === "update-gmsa" && update.delegators?.map((d) => d.label)).toEqual(["IIS1$"]);
  });
});

describe("group attributes and CNs", () => {
  it("category, displayName, notes and managedBy are written; a new commonName is one modify-DN", () => {
    const owner = observedGroup("App-Owners", []);
    const observed = observedGroup("App-Readers", [], { displayName: "old", info: "keep me?" });
    const desired = desiredOf(
      kdsKey(),
      group("owners", { accountName: "App-Owners" }),
      group("readers", {
        accountName: "App-Readers",
        commonName: "Application Readers",
        category: "Distribution",
        displayName: "Readers",
        notes: "",
        managedBy: { group: "owners" },
      }),
    );
    const actions = actionsOf(desired, emptyDirectory(now, { groups: [owner, observed] }), POLICY, now);
    expect(actions).toEqual([
      {
        type: "move",
        resource: { kind: "ADGroup", name: "readers" },
        dn: observed.dn,
        newDn: `CN=Application Readers,CN=Users,${BASE}`,
        changes: [expect.objectContaining({ attribute: "distinguishedName" })],
      },
      expect.objectContaining({
        type: "update-group",
        dn: `CN=Application Readers,CN=Users,${BASE}`,
        groupTypeSteps: [2],
        text: { displayName: "Readers", info: null },
        managedBy: { type: "object", dn: owner.dn, sid: owner.sid, label: "App-Owners" },
      }),
    ]);
  });

  it("a gMSA renamed with a commonName gets that CN, not the new account name", () => {
    const previous = observedGmsa("gMSA-Old", [], { adminDisplayName: "gmsa-gitops:GroupManagedServiceAccount/app" });
    const desired = desiredOf(kdsKey(), gmsa("app", { accountName: "gMSA-New", commonName: "App service account" }));
    const [rename] = actionsOf(desired, emptyDirectory(now, { gmsas: [previous] }), POLICY, now);
    expect(rename).toMatchObject({
      type: "rename",
      samAccountName: "gMSA-New$",
      newDn: `CN=App service account,CN=Managed Service Accounts,${BASE}`,
    });
  });
});
