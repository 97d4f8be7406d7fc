/**
 * Prune candidates: objects carrying a valid ownership marker of this controller (ownership.ts)
 * whose account name the repository no longer lists. Whether they are deleted is policy (opt-in
 * prune, the budget), decided by plan. A protected object is never one, whatever its marker.
 */
import type { ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import { claim, prunable } from "./ownership.ts";
import type { Claimable } from "./ownership.ts";
import { lower } from "./references.ts";
import type { Context } from "./references.ts";
import { resourceDiff } from "./resource-diff.ts";
import type { ResourceDiff } from "./resource-diff.ts";

/** One entry per marked gMSA, then per marked group, that left the repository (gMSAs first: they may name the groups). */
export function pruneCandidates(ctx: Context): ResourceDiff[] {
  const { desired, observed } = ctx;
  // Suspended resources still count as desired: never prune what Git still lists.
  const wantedGmsas = new Set([...desired.gmsas.values()].map((g) => lower(g.spec.accountName)));
  // A gMSA whose resource is still in Git under a new accountName is renamed, never pruned.
  const gmsaKeys = new Set(
    [...desired.gmsas.keys()].map((name) => resourceTag({ kind: "GroupManagedServiceAccount", name })),
  );
  const wantedGroups = new Set([...desired.groups.values()].map((g) => lower(g.spec.accountName)));
  return [
    ...observed.gmsas
      .filter(
        (g) =>
          prunable(g, ctx) &&
          !wantedGmsas.has(lower(g.samAccountName)) &&
          !(g.adminDisplayName !== undefined && gmsaKeys.has(g.adminDisplayName)),
      )
      .map((g) => unexpected("GroupManagedServiceAccount", g, ctx)),
    ...observed.groups
      .filter((g) => prunable(g, ctx) && !wantedGroups.has(lower(g.samAccountName)))
      .map((g) => unexpected("ADGroup", g, ctx)),
  ];
}

function unexpected(
  kind: "GroupManagedServiceAccount" | "ADGroup",
  o: Claimable & { readonly samAccountName: string },
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
    fixes: [{ type: "delete", resource, dn, replacement: false, changes }],
    prunable: true,
  });
}
