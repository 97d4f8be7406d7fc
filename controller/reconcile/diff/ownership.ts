/**
 * Whose an observed object is: the one check every kind's diff and prune make before an object
 * may be written or deleted (docs/decisions/ownership-and-prune.md). Protected objects first
 * (never touched, whatever the marker or --adopt say), then the marker: ours when its MAC
 * matches this object's objectGUID under our owner id; another controller's when it carries
 * another owner id (never touched, not even with --adopt); otherwise unmarked: a conflict,
 * taken over (and re-marked) only with --adopt.
 */
import type { ObjectGuard, ProtectionFacts } from "../../directory/index.ts";
import { protectedReason } from "../../directory/index.ts";
import type { Blocker } from "../model.ts";
import type { Context } from "./references.ts";

/** An observed object as the ownership check reads it. */
export type Claimable = ProtectionFacts & ObjectGuard & { readonly adminDescription?: string | undefined };

/** The verdict: write as ours, adopt (writing `marker`), or leave alone for the blocker's reason. */
export type Claim =
  | { readonly status: "ours" }
  | { readonly status: "adopt"; readonly marker: string; readonly why: string }
  | { readonly status: "blocked"; readonly blocker: Blocker };

/** The marker this controller writes on an object with this objectGUID. */
export function markerFor(guid: string, ctx: Context): string {
  return ctx.options.owner.markerFor(guid);
}

/** Whether the controller may write `o` (and how), decided once for every kind. */
export function claim(o: Claimable, ctx: Context): Claim {
  const protection = protectedReason(o, ctx.observed.baseDn, ctx.allowedContainers);
  if (protection !== undefined)
    return {
      status: "blocked",
      blocker: {
        outcome: "stalled",
        reason: "Protected",
        message: `${o.dn} is never touched by gmsa-gitops: ${protection}`,
      },
    };
  const owner = ctx.options.owner;
  const marker = owner.check(o.adminDescription, o.guid);
  if (marker.status === "ours") return { status: "ours" };
  if (marker.status === "foreign")
    return {
      status: "blocked",
      blocker: {
        outcome: "stalled",
        reason: "OwnedByOtherController",
        message: `${o.dn} belongs to the gmsa-gitops controller with owner id ${marker.ownerId}; it is never touched here, not even with --adopt`,
      },
    };
  const why = marker.status === "none" ? "no ownership marker" : marker.why;
  if (ctx.options.adopt && o.guid !== undefined) return { status: "adopt", marker: markerFor(o.guid, ctx), why };
  return {
    status: "blocked",
    blocker: {
      outcome: "stalled",
      reason: "NotOwned",
      message: `${o.dn} exists but was not created by gmsa-gitops (${why}); it is left alone unless adoption is enabled`,
    },
  };
}

/** True for an object the controller may delete: ours by a valid marker and not protected. */
export function prunable(o: Claimable, ctx: Context): boolean {
  return ctx.options.owner.check(o.adminDescription, o.guid).status === "ours";
}
