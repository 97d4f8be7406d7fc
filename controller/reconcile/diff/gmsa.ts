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
  describeEncryptionTypes,
  encodeEncryptionTypes,
  MANAGED_ENCRYPTION_BITS,
  withManagedEncryptionTypes,
} from "../../directory/index.ts";
import type { Action, AttributeChange, Blocker, DriftType, PrincipalTarget, ResourceRef } from "../model.ts";
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
  const dn = accountDn(spec.accountName, spec.path, ctx.observed.baseDn);
  const observed = ctx.gmsaBySam.get(lower(spec.accountName));
  const resolved = resolveRefs(spec.principalsAllowedToRetrieveManagedPassword, ctx);
  if (!observed) return createGmsa(resource, dn, spec, resolved, mode, ctx);
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
    { attribute: "dNSHostName", from: undefined, to: spec.dnsHostName },
    { attribute: "msDS-GroupMSAMembership", from: undefined, to: sorted(targets.map((t) => t.label)) },
    { attribute: "msDS-SupportedEncryptionTypes", from: undefined, to: spec.kerberosEncryptionTypes.join(",") },
    { attribute: "msDS-ManagedPasswordInterval", from: undefined, to: String(spec.managedPasswordIntervalInDays) },
  ];
  if (spec.servicePrincipalNames.length > 0)
    changes.push({ attribute: "servicePrincipalName", from: undefined, to: spec.servicePrincipalNames });
  if (spec.description !== undefined) changes.push({ attribute: "description", from: undefined, to: spec.description });
  if (spec.displayName !== undefined) changes.push({ attribute: "displayName", from: undefined, to: spec.displayName });
  const blocker =
    missing.length > 0 ? principalNotFound(missing) : ctx.kdsAfterPlan.effective ? undefined : kdsBlocker(ctx);
  const create: Action = {
    type: "create-gmsa",
    resource,
    dn,
    accountName: spec.accountName,
    dnsHostName: spec.dnsHostName,
    encryptionTypes: encodeEncryptionTypes(spec.kerberosEncryptionTypes),
    servicePrincipalNames: spec.servicePrincipalNames,
    passwordIntervalDays: spec.managedPasswordIntervalInDays,
    description: spec.description,
    displayName: spec.displayName,
    principals: targets,
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
    changes.push({ attribute: "adminDescription", from: observed.adminDescription, to: verdict.marker });
    notes.push(`adopted (${verdict.why}): the ownership marker will be written`);
  }
  if (lower(observed.dnsHostName ?? "") !== lower(spec.dnsHostName)) {
    drift.add("attribute");
    set["dNSHostName"] = spec.dnsHostName;
    changes.push({ attribute: "dNSHostName", from: observed.dnsHostName, to: spec.dnsHostName });
  }
  for (const [attribute, want, have] of [
    ["description", spec.description, observed.description],
    ["displayName", spec.displayName, observed.displayName],
  ] as const) {
    // An optional text field left out of the manifest is not managed; "" clears it.
    if (want !== undefined && want !== (have ?? "")) {
      drift.add("attribute");
      set[attribute] = want === "" ? null : want;
      changes.push({ attribute, from: have, to: want === "" ? undefined : want });
    }
  }
  const encryption = encodeEncryptionTypes(spec.kerberosEncryptionTypes);
  const observedBits = observed.encryptionTypes ?? 0;
  if ((observedBits & MANAGED_ENCRYPTION_BITS) !== encryption || observed.encryptionTypes === undefined) {
    drift.add("encryption");
    const next = withManagedEncryptionTypes(observedBits, encryption);
    set["msDS-SupportedEncryptionTypes"] = String(next);
    changes.push({
      attribute: "msDS-SupportedEncryptionTypes",
      from: observed.encryptionTypes === undefined ? undefined : describeEncryptionTypes(observedBits).join(","),
      to: describeEncryptionTypes(next).join(","),
    });
  }

  const haveSpns = new Map(observed.servicePrincipalNames.map((s) => [lower(s), s]));
  const wantSpns = new Map(spec.servicePrincipalNames.map((s) => [lower(s), s]));
  const addSpns = [...wantSpns].filter(([k]) => !haveSpns.has(k)).map(([, v]) => v);
  const removeSpns = [...haveSpns].filter(([k]) => !wantSpns.has(k)).map(([, v]) => v);
  if (addSpns.length > 0 || removeSpns.length > 0) {
    drift.add("spn");
    changes.push({
      attribute: "servicePrincipalName",
      from: sorted(observed.servicePrincipalNames),
      to: sorted(spec.servicePrincipalNames),
    });
  }

  let principals: PrincipalTarget[] | undefined;
  const readers = observed.groupMsaMembership ? allowedReaders(observed.groupMsaMembership) : new Set<string>();
  const wantSids = new Set(targets.flatMap((t) => (t.type === "object" ? [t.sid] : [])));
  const pending = targets.some((t) => t.type === "repo-group");
  const sameReaders = !pending && readers.size === wantSids.size && [...wantSids].every((s) => readers.has(s));
  if (missing.length > 0) {
    // Rewriting the descriptor without a principal we cannot find would silently revoke it.
    blocker = principalNotFound(missing);
  } else if (!sameReaders) {
    drift.add("principals");
    principals = targets;
    changes.push({
      attribute: "msDS-GroupMSAMembership",
      from: sorted([...readers].map((sid) => sidLabel(sid, ctx))),
      to: sorted(targets.map((t) => t.label)),
    });
  }

  const fixes: Action[] = [];
  const currentDn = moveIfElsewhere(resource, observed.dn, dn, drift, changes, fixes);

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
      adopt: !owned,
      changes: updateChanges,
    });
  }
  return resourceDiff(resource, observed.dn, mode, { drift, changes, fixes, blocker, notes });
}
