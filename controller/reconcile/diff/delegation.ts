/**
 * Kerberos delegation of one gMSA: the userAccountControl flags (unconstrained delegation,
 * protocol transition, "sensitive and cannot be delegated"), constrained delegation
 * (msDS-AllowedToDelegateTo) and resource-based constrained delegation
 * (msDS-AllowedToActOnBehalfOfOtherIdentity). A field the manifest leaves out is not managed;
 * a listed one is exact (docs/decisions/delegation.md).
 */
import type { GroupManagedServiceAccountSpec } from "../../manifests/index.ts";
import type { DelegationFlags, ObservedGmsa } from "../../directory/index.ts";
import { allowedDelegators } from "../../directory/index.ts";
import type { AttributeChange, PrincipalTarget } from "../model.ts";
import { lower, resolveRefs, sidLabel } from "./references.ts";
import type { Context } from "./references.ts";
import { sorted } from "./resource-diff.ts";

/** What the delegation fields ask of AD beyond userAccountControl. */
export interface DelegationDiff {
  readonly changes: AttributeChange[];
  /** msDS-AllowedToDelegateTo values to add and to delete (multi-valued: by value, never replace). */
  readonly addDelegateTo: string[];
  readonly removeDelegateTo: string[];
  /** When present, msDS-AllowedToActOnBehalfOfOtherIdentity is rewritten for exactly these principals. */
  readonly delegators?: PrincipalTarget[];
  /** References that do not resolve in AD: the descriptor is not rewritten without them. */
  readonly missing: string[];
}

/** The delegation flags the manifest manages (undefined: left as AD has it). */
export function delegationFlags(spec: GroupManagedServiceAccountSpec): DelegationFlags {
  return {
    trustedForDelegation: spec.trustedForDelegation,
    trustedToAuthForDelegation: spec.trustedToAuthForDelegation,
    accountNotDelegated: spec.accountNotDelegated,
  };
}

/** Compares the delegation lists of the manifest with the account in AD (undefined: not created yet). */
export function diffDelegation(
  spec: GroupManagedServiceAccountSpec,
  observed: ObservedGmsa | undefined,
  ctx: Context,
): DelegationDiff {
  const changes: AttributeChange[] = [];
  let addDelegateTo: string[] = [];
  let removeDelegateTo: string[] = [];
  if (spec.allowedToDelegateTo !== undefined) {
    const have = observed?.allowedToDelegateTo ?? [];
    const haveKeys = new Set(have.map(lower));
    const want = [...new Map(spec.allowedToDelegateTo.map((s) => [lower(s), s])).values()];
    const wantKeys = new Set(want.map(lower));
    addDelegateTo = want.filter((s) => !haveKeys.has(lower(s)));
    removeDelegateTo = have.filter((s) => !wantKeys.has(lower(s)));
    if (addDelegateTo.length > 0 || removeDelegateTo.length > 0)
      changes.push({
        attribute: "msDS-AllowedToDelegateTo",
        from: observed ? sorted(have) : undefined,
        to: sorted(want),
      });
  }

  const refs = spec.principalsAllowedToDelegateToAccount;
  if (refs === undefined) return { changes, addDelegateTo, removeDelegateTo, missing: [] };
  const { targets, missing } = resolveRefs(refs, ctx);
  const have = observed?.allowedToActOnBehalf ? allowedDelegators(observed.allowedToActOnBehalf) : new Set<string>();
  const wantSids = new Set(targets.flatMap((t) => (t.type === "repo-group" ? [] : [t.sid])));
  const pending = targets.some((t) => t.type === "repo-group");
  const same = !pending && have.size === wantSids.size && [...wantSids].every((s) => have.has(s));
  // An empty list on a new account writes nothing: no descriptor is what "nobody" is.
  if (missing.length > 0 || same || (!observed && targets.length === 0))
    return { changes, addDelegateTo, removeDelegateTo, missing };
  changes.push({
    attribute: "msDS-AllowedToActOnBehalfOfOtherIdentity",
    from: observed ? sorted([...have].map((sid) => sidLabel(sid, ctx))) : undefined,
    to: sorted(targets.map((t) => t.label)),
  });
  return { changes, addDelegateTo, removeDelegateTo, delegators: targets, missing };
}
