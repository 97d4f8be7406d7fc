/**
 * What diff finds for one resource, before policy, and the one way to build it. Shared by the
 * per-kind diffs: the blockers they have in common and the move of an object that sits in
 * another container than its manifest's path.
 */
import { movedDn, normalizeDn, parentDn, sameParent } from "../../directory/index.ts";
import type { Action, AttributeChange, Blocker, DriftType, ResourcePlan, ResourceRef } from "../model.ts";

/**
 * What diff found for one resource, before policy: the plan's entry (what drifted, what it
 * would change, why not) with the fixes that plan turns into actions.
 */
export interface ResourceDiff extends Pick<
  ResourcePlan,
  "resource" | "dn" | "drift" | "changes" | "blocker" | "notes"
> {
  readonly fixes: readonly Action[];
  /** Only for `unexpected`: a marked object that left the repository. */
  readonly prunable: boolean;
  /** Resource mode from the manifest (undefined: the global mode). */
  readonly mode: Mode;
}

/** A resource's mode from its manifest; undefined means the global mode. */
export type Mode = "Enforce" | "Observe" | undefined;

/** The parts of a ResourceDiff a kind's diff found; what it leaves out is empty (no drift, no fixes...). */
export interface Found {
  readonly drift?: ReadonlySet<DriftType>;
  readonly changes?: readonly AttributeChange[];
  readonly fixes?: readonly Action[];
  readonly blocker?: Blocker | undefined;
  readonly prunable?: boolean;
  readonly notes?: readonly string[];
}

/** Builds the entry for one resource; a blocker that is undefined is left out. */
export function resourceDiff(resource: ResourceRef, dn: string | undefined, mode: Mode, found: Found): ResourceDiff {
  const { blocker, ...rest } = found;
  return {
    resource,
    dn,
    mode,
    drift: new Set(),
    changes: [],
    fixes: [],
    prunable: false,
    notes: [],
    ...rest,
    ...(blocker ? { blocker } : {}),
  };
}

/** Labels sorted for display in a plan, so the same set always prints the same way. */
export const sorted = (values: Iterable<string>): string[] => [...values].sort((a, b) => a.localeCompare(b));

/** References that do not resolve in AD: nothing is written that would silently drop them. */
export function principalNotFound(missing: readonly string[]): Blocker {
  return { outcome: "stalled", reason: "PrincipalNotFound", message: `not found in AD: ${missing.join(", ")}` };
}

/** An object with a managed name the controller may not write (see ownership.ts): reported, never written. */
export function conflict(resource: ResourceRef, dn: string, mode: Mode, blocker: Blocker): ResourceDiff {
  return resourceDiff(resource, dn, mode, { drift: new Set(["conflict"]), blocker });
}

/**
 * When an object sits in another container than its manifest's path, or the manifest names a
 * CN (`commonName`) the object does not have, records the drift and one modify-DN that moves
 * and renames it; without a managed CN the object keeps its RDN. objectGUID and objectSid stay.
 * Returns the DN the object has after the fixes.
 */
export function moveIfElsewhere(
  resource: ResourceRef,
  observedDn: string,
  wantedDn: string,
  drift: Set<DriftType>,
  changes: AttributeChange[],
  fixes: Action[],
  commonName?: string,
): string {
  const newRdn = commonName !== undefined && rdnOf(observedDn) !== rdnOf(wantedDn);
  if (sameParent(observedDn, wantedDn) && !newRdn) return observedDn;
  drift.add("attribute");
  const newDn = newRdn ? wantedDn : movedDn(observedDn, parentDn(wantedDn));
  const change: AttributeChange = { attribute: "distinguishedName", from: observedDn, to: newDn };
  changes.push(change);
  fixes.push({ type: "move", resource, dn: observedDn, newDn, changes: [change] });
  return newDn;
}

/** The first RDN as AD compares it (case-insensitive), values escaped the same way on both sides. */
const rdnOf = (dn: string): string => normalizeDn(dn).split(/(?<!\\),/)[0] ?? "";
