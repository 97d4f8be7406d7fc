/**
 * Renames in place: a gMSA whose resource (same metadata.name) now names another accountName is
 * found by the resource tag it carries, never by its name, and renamed, keeping objectSid and
 * objectGUID (docs/decisions/renames.md).
 */
import type { ObservedGmsa } from "../../directory/index.ts";
import { childDn, normalizeDn, parentDn } from "../../directory/index.ts";
import type { Action, AttributeChange, ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import { claim } from "./ownership.ts";
import type { Context } from "./references.ts";

/**
 * The owned gMSA of this resource under its previous account name, found by the resource key
 * it carries (never by name), with the rename that gives it the new one: sAMAccountName, and
 * the CN through a modify-DN when the manifest names a commonName or the CN followed the old
 * name. objectSid and objectGUID stay.
 */
export function renamedGmsa(
  resource: ResourceRef,
  { accountName, commonName }: { accountName: string; commonName?: string | undefined },
  ctx: Context,
): { observed: ObservedGmsa; previousDn: string; action: Action; changes: AttributeChange[] } | undefined {
  const key = resourceTag(resource);
  const previous = ctx.observed.gmsas.find((g) => g.adminDisplayName === key && claim(g, ctx).status === "ours");
  if (!previous) return undefined;
  const parent = parentDn(previous.dn);
  const cnFollows = normalizeDn(previous.dn) === normalizeDn(childDn("CN", previous.samAccountName, parent));
  // A CN the manifest names is the CN; otherwise it follows the name only when it was the name.
  const cn = commonName ?? (cnFollows ? accountName : undefined);
  const newDn =
    cn !== undefined && normalizeDn(childDn("CN", cn, parent)) !== normalizeDn(previous.dn)
      ? childDn("CN", cn, parent)
      : previous.dn;
  const changes: AttributeChange[] = [
    { attribute: "sAMAccountName", from: `${previous.samAccountName}$`, to: `${accountName}$` },
  ];
  if (newDn !== previous.dn) changes.push({ attribute: "distinguishedName", from: previous.dn, to: newDn });
  return {
    observed: { ...previous, dn: newDn, samAccountName: accountName },
    previousDn: previous.dn,
    action: { type: "rename", resource, dn: previous.dn, newDn, samAccountName: `${accountName}$`, changes },
    changes,
  };
}
