/**
 * Prune candidates: objects carrying a valid ownership marker of this controller (ownership.ts)
 * whose account name the repository no longer lists. Whether they are deleted is policy (opt-in
 * prune, the budget), decided by plan. A protected object is never one, whatever its marker.
 */
import { accountDn, normalizeDn } from "../../directory/index.ts";
import type { ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import { claim, prunable } from "./ownership.ts";
import type { Claimable } from "./ownership.ts";
import { lower } from "./references.ts";
import type { Context } from "./references.ts";
import { resourceDiff } from "./resource-diff.ts";
import type { ResourceDiff } from "./resource-diff.ts";

/**
 * One entry per marked gMSA or sMSA, then per marked group, that left the repository (accounts
 * first: they may name the groups).
 */
export function pruneCandidates(ctx: Context): ResourceDiff[] {
  const { desired, observed } = ctx;
  // Suspended resources still count as desired: never prune what Git still lists.
  const wantedGmsas = new Set([...desired.gmsas.values()].map((g) => lower(g.spec.accountName)));
  // A gMSA whose resource is still in Git under a new accountName is renamed, never pruned.
  const gmsaKeys = new Set(
    [...desired.gmsas.keys()].map((name) => resourceTag({ kind: "GroupManagedServiceAccount", name })),
  );
  // sMSAs the same way, under their own kind (a name is unique per kind, not across kinds).
  const wantedSmsas = new Set([...desired.smsas.values()].map((g) => lower(g.spec.accountName)));
  const smsaKeys = new Set(
    [...desired.smsas.keys()].map((name) => resourceTag({ kind: "ManagedServiceAccount", name })),
  );
  const wantedGroups = new Set([...desired.groups.values()].map((g) => lower(g.spec.accountName)));
  // Likewise a group (renamed, or replaced by its diff); see docs/decisions/renames.md.
  const groupKeys = new Set([...desired.groups.keys()].map((name) => resourceTag({ kind: "ADGroup", name })));
  // A group made before groups carried their tag, whose sAMAccountName was changed by hand,
  // keeps its CN: it sits at the DN a manifest's group wants.
  const groupAtDn = new Map(
    [...desired.groups].map(([name, g]) => [
      normalizeDn(accountDn(g.spec.accountName, g.spec.path, observed.baseDn)),
      { name, accountName: g.spec.accountName },
    ]),
  );
  // The marker's MAC last: it is the costly test, and almost every object is still wanted.
  return [
    ...observed.gmsas
      .filter(
        (g) =>
          !g.standalone &&
          !wantedGmsas.has(lower(g.samAccountName)) &&
          !(g.adminDisplayName !== undefined && gmsaKeys.has(g.adminDisplayName)) &&
          prunable(g, ctx),
      )
      .map((g) => unexpected("GroupManagedServiceAccount", g, ctx)),
    ...observed.gmsas
      .filter(
        (g) =>
          g.standalone === true &&
          !wantedSmsas.has(lower(g.samAccountName)) &&
          !(g.adminDisplayName !== undefined && smsaKeys.has(g.adminDisplayName)) &&
          prunable(g, ctx),
      )
      .map((g) => unexpected("ManagedServiceAccount", g, ctx)),
    ...observed.groups
      .filter(
        (g) =>
          !wantedGroups.has(lower(g.samAccountName)) &&
          !(g.adminDisplayName !== undefined && groupKeys.has(g.adminDisplayName)) &&
          prunable(g, ctx),
      )
      .map((g) => {
        const wanted = groupAtDn.get(normalizeDn(g.dn));
        return wanted === undefined ? unexpected("ADGroup", g, ctx) : renamedInAd(g, wanted);
      }),
  ];
}

/**
 * A marked group at the DN of a repository group, under another sAMAccountName: renamed in AD.
 * Never deleted: a new group would have a new SID, and every host allowed through it would lose
 * the password until its Kerberos ticket renews. Reported, for a person to rename it back.
 */
function renamedInAd(
  o: Claimable & { readonly samAccountName: string },
  wanted: { readonly name: string; readonly accountName: string },
): ResourceDiff {
  const resource: ResourceRef = { kind: "ADGroup", name: o.samAccountName.toLowerCase() };
  return resourceDiff(resource, o.dn, undefined, {
    drift: new Set(["unexpected"]),
    blocker: {
      outcome: "stalled",
      reason: "PruneRefused",
      message: `sits at the DN of ADGroup/${wanted.name} (accountName ${wanted.accountName}) with sAMAccountName ${o.samAccountName}: renamed in AD? Never deleted (its SID lets hosts retrieve passwords): set its sAMAccountName back, or the manifest's accountName to it`,
    },
  });
}

function unexpected(
  kind: "GroupManagedServiceAccount" | "ManagedServiceAccount" | "ADGroup",
  o: Claimable & { readonly samAccountName: string; readonly hostComputers?: readonly string[] | undefined },
  ctx: Context,
): ResourceDiff {
  const resource: ResourceRef = { kind, name: o.samAccountName.toLowerCase() };
  const { dn } = o;
  const changes = [{ attribute: "distinguishedName", from: dn, to: undefined }];
  // Ours by its marker, yet protected (say, made a member of Domain Admins, so adminCount=1): kept.
  const verdict = claim(o, ctx);
  if (verdict.status === "blocked")
    return resourceDiff(resource, dn, undefined, { drift: new Set(["unexpected"]), blocker: verdict.blocker });
  return resourceDiff(resource, dn, undefined, {
    drift: new Set(["unexpected"]),
    changes,
    fixes: [
      // An sMSA's computers let go of it first, as Remove-ADComputerServiceAccount does.
      ...(o.hostComputers ?? []).map((computer) => ({
        type: "link-host-account" as const,
        resource,
        dn: computer,
        accountDn: dn,
        operation: "delete" as const,
        changes: [{ attribute: "msDS-HostServiceAccount", from: dn, to: undefined }],
      })),
      { type: "delete", resource, dn, replacement: false, changes },
    ],
    prunable: true,
  });
}
