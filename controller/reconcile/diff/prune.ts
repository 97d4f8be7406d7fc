/**
 * Prune candidates: objects carrying the ownership marker whose account name the repository no
 * longer lists. Whether they are deleted is policy (opt-in prune, the budget), decided by plan.
 */
import type { ResourceRef } from "../model.ts";
import { isOwned, resourceKey } from "../ownership.ts";
import { lower } from "./references.ts";
import type { Context } from "./references.ts";
import { resourceDiff } from "./resource-diff.ts";
import type { ResourceDiff } from "./resource-diff.ts";

/** One entry per marked gMSA, then per marked group, that left the repository (gMSAs first: they may name the groups). */
export function pruneCandidates(ctx: Context): ResourceDiff[] {
  const { desired, observed, marker } = ctx;
  // Suspended resources still count as desired: never prune what Git still lists.
  const wantedGmsas = new Set([...desired.gmsas.values()].map((g) => lower(g.spec.accountName)));
  // A gMSA whose resource is still in Git under a new accountName is renamed, never pruned.
  const gmsaKeys = new Set(
    [...desired.gmsas.keys()].map((name) => resourceKey({ kind: "GroupManagedServiceAccount", name })),
  );
  const wantedGroups = new Set([...desired.groups.values()].map((g) => lower(g.spec.accountName)));
  return [
    ...observed.gmsas
      .filter(
        (g) =>
          isOwned(g, marker) &&
          !wantedGmsas.has(lower(g.samAccountName)) &&
          !(g.adminDisplayName !== undefined && gmsaKeys.has(g.adminDisplayName)),
      )
      .map((g) => unexpected("GroupManagedServiceAccount", g.samAccountName, g.dn)),
    ...observed.groups
      .filter((g) => isOwned(g, marker) && !wantedGroups.has(lower(g.samAccountName)))
      .map((g) => unexpected("ADGroup", g.samAccountName, g.dn)),
  ];
}

function unexpected(kind: "GroupManagedServiceAccount" | "ADGroup", samAccountName: string, dn: string): ResourceDiff {
  const resource: ResourceRef = { kind, name: samAccountName.toLowerCase() };
  const changes = [{ attribute: "distinguishedName", from: dn, to: undefined }];
  return resourceDiff(resource, dn, undefined, {
    drift: new Set(["unexpected"]),
    changes,
    fixes: [{ type: "delete", resource, dn, replacement: false, changes }],
    prunable: true,
  });
}
