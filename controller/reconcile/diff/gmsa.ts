/**
 * diff for one GroupManagedServiceAccount resource: create it once a KDS root key is effective,
 * or bring its attributes, SPNs, encryption types and allowed principals back. The password
 * interval is fixed at creation: a change is blocked, or a replacement when the manifest allows it.
 */
import type { GroupManagedServiceAccountSpec } from "../../manifests/index.ts";
import type { ObservedGmsa } from "../../directory/index.ts";
import {
  accountDn,
  allowedReaders,
  describeUac,
  WORKSTATION_TRUST_ACCOUNT,
  withAccountEnabled,
  withDelegationFlags,
  encodeEncryptionTypes,
} from "../../directory/index.ts";
import type { Action, AttributeChange, Blocker, DriftType, PrincipalTarget, ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import { accountDrift } from "./account.ts";
import { delegationFlags, diffDelegation } from "./delegation.ts";
import { renamedGmsa } from "./rename.ts";
import { kdsBlocker } from "./kds.ts";
import { lower, resolveRefs, sidLabel, withoutGmsa } from "./references.ts";
import type { Context, Resolved } from "./references.ts";
import { claim } from "./ownership.ts";
import type { Claim } from "./ownership.ts";
import { conflict, moveIfElsewhere, principalNotFound, resourceDiff, sorted } from "./resource-diff.ts";
import type { Mode, ResourceDiff } from "./resource-diff.ts";

/** Compares one gMSA manifest with the gMSA of that account name in AD. */
export function diffGmsa(name: string, spec: GroupManagedServiceAccountSpec, mode: Mode, ctx: Context): ResourceDiff {
  const resource: ResourceRef = { kind: "GroupManagedServiceAccount", name };
  const dn = accountDn(spec.commonName ?? spec.accountName, spec.path, ctx.observed.baseDn);
  const resolved = resolveRefs(spec.principalsAllowedToRetrieveManagedPassword, ctx);
  const observed = ctx.gmsaBySam.get(lower(spec.accountName));
  if (!observed) {
    const renamed = renamedGmsa(resource, spec, ctx);
    if (!renamed) return createGmsa(resource, dn, spec, resolved, mode, ctx);
    const update = updateGmsa(resource, dn, spec, renamed.observed, resolved, { status: "ours" }, mode, ctx);
    return resourceDiff(resource, renamed.previousDn, mode, {
      ...update,
      drift: new Set([...update.drift, "attribute"]),
      changes: [...renamed.changes, ...update.changes],
      fixes: [renamed.action, ...update.fixes],
    });
  }
  const verdict = claim(observed, ctx);
  if (verdict.status === "blocked") return conflict(resource, observed.dn, mode, verdict.blocker);
  return updateGmsa(resource, dn, spec, observed, resolved, verdict, mode, ctx);
}

function createGmsa(
  resource: ResourceRef,
  dn: string,
  spec: GroupManagedServiceAccountSpec,
  { targets, missing }: Resolved,
  mode: Mode,
  ctx: Context,
): ResourceDiff {
  const changes: AttributeChange[] = [
    { attribute: "sAMAccountName", from: undefined, to: `${spec.accountName}$` },
    ...(spec.dnsHostName === undefined ? [] : [{ attribute: "dNSHostName", from: undefined, to: spec.dnsHostName }]),
    { attribute: "msDS-GroupMSAMembership", from: undefined, to: sorted(targets.map((t) => t.label)) },
    { attribute: "msDS-SupportedEncryptionTypes", from: undefined, to: spec.kerberosEncryptionTypes.join(",") },
    { attribute: "msDS-ManagedPasswordInterval", from: undefined, to: String(spec.managedPasswordIntervalInDays) },
  ];
  const enabled = withAccountEnabled(WORKSTATION_TRUST_ACCOUNT, spec.enabled);
  const userAccountControl = withDelegationFlags(enabled, delegationFlags(spec));
  if (userAccountControl !== WORKSTATION_TRUST_ACCOUNT)
    changes.push({ attribute: "userAccountControl", from: undefined, to: describeUac(userAccountControl) });
  const delegation = diffDelegation(spec, undefined, ctx);
  changes.push(...delegation.changes);
  if (spec.servicePrincipalNames.length > 0)
    changes.push({ attribute: "servicePrincipalName", from: undefined, to: spec.servicePrincipalNames });
  if (spec.description !== undefined) changes.push({ attribute: "description", from: undefined, to: spec.description });
  if (spec.displayName !== undefined) changes.push({ attribute: "displayName", from: undefined, to: spec.displayName });
  const unresolved = [...missing, ...delegation.missing];
  const blocker =
    unresolved.length > 0 ? principalNotFound(unresolved) : ctx.kdsAfterPlan.effective ? undefined : kdsBlocker(ctx);
  const create: Action = {
    type: "create-gmsa",
    resource,
    dn,
    accountName: spec.accountName,
    dnsHostName: spec.dnsHostName,
    encryptionTypes: encodeEncryptionTypes(spec.kerberosEncryptionTypes),
    servicePrincipalNames: spec.servicePrincipalNames,
    passwordIntervalDays: spec.managedPasswordIntervalInDays,
    userAccountControl,
    description: spec.description,
    displayName: spec.displayName,
    principals: targets,
    allowedToDelegateTo: delegation.addDelegateTo,
    delegators: delegation.delegators ?? [],
    changes,
  };
  return resourceDiff(resource, dn, mode, {
    drift: new Set(["missing"]),
    changes,
    fixes: blocker ? [] : [create],
    blocker,
  });
}

function updateGmsa(
  resource: ResourceRef,
  dn: string,
  spec: GroupManagedServiceAccountSpec,
  observed: ObservedGmsa,
  { targets, missing }: Resolved,
  verdict: Exclude<Claim, { status: "blocked" }>,
  mode: Mode,
  ctx: Context,
): ResourceDiff {
  const drift = new Set<DriftType>();
  const changes: AttributeChange[] = [];
  const set: Record<string, string | null> = {};
  const notes: string[] = [];
  let blocker: Blocker | undefined;

  const owned = verdict.status === "ours";
  if (verdict.status === "adopt") {
    set["adminDescription"] = verdict.marker;
    set["adminDisplayName"] = resourceTag(resource);
    changes.push({ attribute: "adminDescription", from: observed.adminDescription, to: verdict.marker });
    notes.push(`adopted (${verdict.why}): the ownership marker will be written`);
  }
  // An outbound-only account has no dNSHostName (validate guarantees one otherwise): one set in AD is cleared.
  const wantHost = spec.restrictToOutboundAuthenticationOnly ? undefined : spec.dnsHostName;
  if (lower(observed.dnsHostName ?? "") !== lower(wantHost ?? "")) {
    drift.add("attribute");
    set["dNSHostName"] = wantHost ?? null;
    changes.push({ attribute: "dNSHostName", from: observed.dnsHostName, to: wantHost });
  }
  const { addSpns, removeSpns } = accountDrift(
    spec,
    observed,
    {
      enabled: (uac) => withAccountEnabled(uac, spec.enabled),
      delegation: (uac) => withDelegationFlags(uac, delegationFlags(spec)),
    },
    { drift, set, changes },
  );

  let principals: PrincipalTarget[] | undefined;
  const readers = observed.groupMsaMembership ? allowedReaders(observed.groupMsaMembership) : new Set<string>();
  const wanted = wantedReaders(spec, readers, targets, ctx);
  const wantSids = new Set(wanted.flatMap((t) => (t.type === "repo-group" ? [] : [t.sid])));
  const pending = wanted.some((t) => t.type === "repo-group");
  const sameReaders = !pending && readers.size === wantSids.size && [...wantSids].every((s) => readers.has(s));
  const delegation = diffDelegation(spec, observed, ctx);
  if (delegation.changes.length > 0) drift.add("delegation");
  changes.push(...delegation.changes);
  // Rewriting a descriptor without a principal we cannot find would silently revoke it.
  const unresolved = [...missing, ...delegation.missing];
  if (unresolved.length > 0) blocker = principalNotFound(unresolved);
  if (missing.length === 0 && !sameReaders) {
    drift.add("principals");
    principals = wanted;
    changes.push({
      attribute: "msDS-GroupMSAMembership",
      from: sorted([...readers].map((sid) => sidLabel(sid, ctx))),
      to: sorted(wanted.map((t) => t.label)),
    });
  }

  const fixes: Action[] = [];
  const currentDn = moveIfElsewhere(resource, observed.dn, dn, drift, changes, fixes, spec.commonName);

  const interval = observed.passwordIntervalDays;
  if (interval !== undefined && interval !== spec.managedPasswordIntervalInDays) {
    drift.add("immutable");
    const change = {
      attribute: "msDS-ManagedPasswordInterval",
      from: String(interval),
      to: String(spec.managedPasswordIntervalInDays),
    };
    changes.push(change);
    if (spec.allowReplacement) {
      notes.push("the password interval is fixed at creation: the account will be deleted and recreated");
      const recreate = diffGmsa(resource.name, spec, mode, withoutGmsa(ctx, spec.accountName));
      return resourceDiff(resource, observed.dn, mode, {
        drift,
        changes,
        fixes: [{ type: "delete", resource, dn: observed.dn, replacement: true, changes: [change] }, ...recreate.fixes],
        blocker,
        notes,
      });
    }
    blocker ??= {
      outcome: "stalled",
      reason: "ImmutableFieldChanged",
      message: `managedPasswordIntervalInDays is ${interval} in AD and can only be set at creation; set allowReplacement: true to recreate the account`,
    };
  }

  const updateChanges = changes.filter(
    (c) => c.attribute !== "distinguishedName" && c.attribute !== "msDS-ManagedPasswordInterval",
  );
  if (updateChanges.length > 0) {
    fixes.push({
      type: "update-gmsa",
      resource,
      dn: currentDn,
      set,
      addSpns,
      removeSpns,
      ...(principals ? { principals } : {}),
      addDelegateTo: delegation.addDelegateTo,
      removeDelegateTo: delegation.removeDelegateTo,
      ...(delegation.delegators ? { delegators: delegation.delegators } : {}),
      adopt: !owned,
      changes: updateChanges,
    });
  }
  return resourceDiff(resource, observed.dn, mode, { drift, changes, fixes, blocker, notes });
}

/**
 * The readers msDS-GroupMSAMembership must allow: the listed principals, plus, when the policy
 * is `additive`, every reader AD already allows, less those in removePrincipals (matched by SID;
 * a removed principal AD does not know has nothing to revoke).
 */
function wantedReaders(
  spec: GroupManagedServiceAccountSpec,
  readers: ReadonlySet<string>,
  targets: readonly PrincipalTarget[],
  ctx: Context,
): PrincipalTarget[] {
  const revoked = new Set(
    resolveRefs(spec.removePrincipals, ctx).targets.flatMap((t) => (t.type === "object" ? [t.sid] : [])),
  );
  const wanted = targets.filter((t) => t.type !== "object" || !revoked.has(t.sid));
  if (spec.principalsPolicy === "additive") {
    const listed = new Set(wanted.flatMap((t) => (t.type === "object" ? [t.sid] : [])));
    for (const sid of readers)
      if (!listed.has(sid) && !revoked.has(sid)) wanted.push({ type: "sid", sid, label: sidLabel(sid, ctx) });
  }
  return wanted;
}
