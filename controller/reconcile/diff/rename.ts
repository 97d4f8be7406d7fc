/**
 * Renames in place: a gMSA or group whose resource (same metadata.name) now names another
 * accountName is found by the resource tag it carries, never by its name, and renamed, keeping
 * objectSid and objectGUID (docs/decisions/renames.md).
 */
import type { ObservedGmsa, ObservedGroup } from "../../directory/index.ts";
import { childDn, normalizeDn, parentDn } from "../../directory/index.ts";
import type { Action, AttributeChange, ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import { claim } from "./ownership.ts";
import type { Claimable } from "./ownership.ts";
import type { Context } from "./references.ts";

/** The names a manifest gives its object: the account name and, when managed, the CN. */
export interface Names {
  readonly accountName: string;
  readonly commonName?: string | undefined;
}

/** An owned object found by its resource tag, and the rename that gives it the manifest's names. */
export interface Renamed<T> {
  /** The object as it will be after the rename (new DN and sAMAccountName, same SID and GUID). */
  readonly observed: T;
  readonly previousDn: string;
  readonly action: Action;
  readonly changes: AttributeChange[];
}

type Taggable = Claimable & { readonly samAccountName: string; readonly adminDisplayName?: string | undefined };

/**
 * The owned object among `candidates` that carries the resource's tag, with its rename:
 * sAMAccountName (with `suffix`, "$" for accounts), and the CN through a modify-DN when the
 * manifest names a commonName or the CN followed the old name.
 */
function renamedObject<T extends Taggable>(
  resource: ResourceRef,
  { accountName, commonName }: Names,
  candidates: readonly T[],
  suffix: "" | "$",
  ctx: Context,
): Renamed<T> | undefined {
  const key = resourceTag(resource);
  const previous = candidates.find((o) => o.adminDisplayName === key && claim(o, ctx).status === "ours");
  if (!previous) return undefined;
  const parent = parentDn(previous.dn);
  const cnFollows = normalizeDn(previous.dn) === normalizeDn(childDn("CN", previous.samAccountName, parent));
  // A CN the manifest names is the CN; otherwise it follows the name only when it was the name.
  const cn = commonName ?? (cnFollows ? accountName : undefined);
  const newDn =
    cn !== undefined && normalizeDn(childDn("CN", cn, parent)) !== normalizeDn(previous.dn)
      ? childDn("CN", cn, parent)
      : previous.dn;
  const samAccountName = `${accountName}${suffix}`;
  const changes: AttributeChange[] = [
    { attribute: "sAMAccountName", from: `${previous.samAccountName}${suffix}`, to: samAccountName },
  ];
  if (newDn !== previous.dn) changes.push({ attribute: "distinguishedName", from: previous.dn, to: newDn });
  return {
    observed: { ...previous, dn: newDn, samAccountName: accountName },
    previousDn: previous.dn,
    action: { type: "rename", resource, dn: previous.dn, newDn, samAccountName, changes },
    changes,
  };
}

/** The owned gMSA of this resource under its previous account name, with its rename. */
export function renamedGmsa(resource: ResourceRef, names: Names, ctx: Context): Renamed<ObservedGmsa> | undefined {
  return renamedObject(resource, names, ctx.observed.gmsas, "$", ctx);
}

/** The owned group of this resource under its previous account name, with its rename. */
export function renamedGroup(resource: ResourceRef, names: Names, ctx: Context): Renamed<ObservedGroup> | undefined {
  return renamedObject(resource, names, ctx.observed.groups, "", ctx);
}
