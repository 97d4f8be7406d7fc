/**
 * diff for one ManagedServiceAccount resource (a standalone managed service account, sMSA):
 * create it as New-ADServiceAccount -RestrictToSingleComputer does, link it to its one computer
 * as Add-ADComputerServiceAccount does (msDS-HostServiceAccount on the computer), and keep its
 * attributes, SPNs, encryption types and that link in line. The password is not the
 * controller's: the computer sets it when Install-ADServiceAccount runs there, and changes it
 * after (docs/reference/managedserviceaccount.md).
 */
import type { ManagedServiceAccountSpec } from "../../manifests/index.ts";
import type { ObservedComputer, ObservedGmsa } from "../../directory/index.ts";
import {
  accountDn,
  describeUac,
  encodeEncryptionTypes,
  normalizeDn,
  WORKSTATION_TRUST_ACCOUNT,
  withAccountEnabled,
} from "../../directory/index.ts";
import type { Action, AttributeChange, Blocker, DriftType, ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import { accountDrift } from "./account.ts";
import { claim } from "./ownership.ts";
import type { Claim } from "./ownership.ts";
import { lower } from "./references.ts";
import type { Context } from "./references.ts";
import { renamedGmsa } from "./rename.ts";
import { conflict, moveIfElsewhere, resourceDiff, sorted } from "./resource-diff.ts";
import type { Mode, ResourceDiff } from "./resource-diff.ts";

/** Compares one sMSA manifest with the sMSA of that account name in AD and with its computer. */
export function diffSmsa(name: string, spec: ManagedServiceAccountSpec, mode: Mode, ctx: Context): ResourceDiff {
  const resource: ResourceRef = { kind: "ManagedServiceAccount", name };
  const dn = accountDn(spec.accountName, spec.path, ctx.observed.baseDn);
  const computer = ctx.observed.computers.find((c) => lower(c.samAccountName) === lower(spec.computer));
  // Blocked means no write: an account restricted to a computer that does not exist would be
  // an account no host can install, so nothing is created or changed until the computer exists.
  const noComputer: Blocker | undefined = computer
    ? undefined
    : {
        outcome: "stalled",
        reason: "PrincipalNotFound",
        message: `computer ${spec.computer} not found in AD: a standalone managed service account is restricted to one existing computer (msDS-HostServiceAccount); join the computer first, or name another in spec.computer`,
      };
  const observed = ctx.smsaBySam.get(lower(spec.accountName));
  if (!observed) {
    const renamed = renamedGmsa(resource, spec, ctx);
    if (!renamed) return createSmsa(resource, dn, spec, computer, noComputer, mode);
    // The computer's link still shows the DN as read: the rename lands in this same apply.
    const update = updateSmsa(
      resource,
      dn,
      spec,
      renamed.observed,
      computer,
      { status: "ours" },
      mode,
      renamed.previousDn,
    );
    return resourceDiff(resource, renamed.previousDn, mode, {
      ...update,
      drift: new Set([...update.drift, "attribute"]),
      changes: [...renamed.changes, ...update.changes],
      fixes: noComputer ? [] : [renamed.action, ...update.fixes],
      blocker: noComputer,
    });
  }
  const verdict = claim(observed, ctx);
  if (verdict.status === "blocked") return conflict(resource, observed.dn, mode, verdict.blocker);
  const update = updateSmsa(resource, dn, spec, observed, computer, verdict, mode);
  return noComputer ? { ...update, fixes: [], blocker: noComputer } : update;
}

function createSmsa(
  resource: ResourceRef,
  dn: string,
  spec: ManagedServiceAccountSpec,
  computer: ObservedComputer | undefined,
  blocker: Blocker | undefined,
  mode: Mode,
): ResourceDiff {
  const userAccountControl = withAccountEnabled(WORKSTATION_TRUST_ACCOUNT, spec.enabled);
  const changes: AttributeChange[] = [
    { attribute: "sAMAccountName", from: undefined, to: `${spec.accountName}$` },
    { attribute: "msDS-SupportedEncryptionTypes", from: undefined, to: spec.kerberosEncryptionTypes.join(",") },
  ];
  if (userAccountControl !== WORKSTATION_TRUST_ACCOUNT)
    changes.push({ attribute: "userAccountControl", from: undefined, to: describeUac(userAccountControl) });
  if (spec.servicePrincipalNames.length > 0)
    changes.push({ attribute: "servicePrincipalName", from: undefined, to: spec.servicePrincipalNames });
  if (spec.description !== undefined) changes.push({ attribute: "description", from: undefined, to: spec.description });
  if (spec.displayName !== undefined) changes.push({ attribute: "displayName", from: undefined, to: spec.displayName });
  const link: AttributeChange = { attribute: "msDS-HostServiceAccountBL", from: undefined, to: [spec.computer] };
  changes.push(link);
  const fixes: Action[] =
    blocker || !computer
      ? []
      : [
          {
            type: "create-smsa",
            resource,
            dn,
            accountName: spec.accountName,
            encryptionTypes: encodeEncryptionTypes(spec.kerberosEncryptionTypes),
            servicePrincipalNames: spec.servicePrincipalNames,
            userAccountControl,
            description: spec.description,
            displayName: spec.displayName,
            changes: changes.filter((c) => c !== link),
          },
          { type: "link-host-account", resource, dn: computer.dn, accountDn: dn, operation: "add", changes: [link] },
        ];
  return resourceDiff(resource, dn, mode, { drift: new Set(["missing"]), changes, fixes, blocker });
}

function updateSmsa(
  resource: ResourceRef,
  dn: string,
  spec: ManagedServiceAccountSpec,
  observed: ObservedGmsa,
  computer: ObservedComputer | undefined,
  verdict: Exclude<Claim, { status: "blocked" }>,
  mode: Mode,
  linkedDn = observed.dn,
): ResourceDiff {
  const drift = new Set<DriftType>();
  const changes: AttributeChange[] = [];
  const set: Record<string, string | null> = {};
  const notes: string[] = [];
  if (verdict.status === "adopt") {
    set["adminDescription"] = verdict.marker;
    set["adminDisplayName"] = resourceTag(resource);
    changes.push({ attribute: "adminDescription", from: observed.adminDescription, to: verdict.marker });
    notes.push(`adopted (${verdict.why}): the ownership marker will be written`);
  }
  const { addSpns, removeSpns } = accountDrift(
    spec,
    observed,
    { enabled: (uac) => withAccountEnabled(uac, spec.enabled) },
    {
      drift,
      set,
      changes,
    },
  );

  const fixes: Action[] = [];
  const currentDn = moveIfElsewhere(resource, observed.dn, dn, drift, changes, fixes);
  if (changes.some((c) => c.attribute !== "distinguishedName"))
    fixes.push({
      type: "update-gmsa",
      resource,
      dn: currentDn,
      set,
      addSpns,
      removeSpns,
      adopt: verdict.status !== "ours",
      changes: changes.filter((c) => c.attribute !== "distinguishedName"),
    });
  if (computer) fixes.push(...linkFixes(resource, observed, linkedDn, currentDn, computer, drift, changes));
  return resourceDiff(resource, observed.dn, mode, { drift, changes, fixes, notes });
}

/**
 * The link as drift: the computer must list the account in msDS-HostServiceAccount (read on the
 * computer, so a link removed there by hand is seen), and no other computer may (read through the
 * account's back link): an sMSA belongs to one computer, so a link elsewhere is removed, as
 * Remove-ADComputerServiceAccount would. Link writes come after any move: they name the final DN.
 */
function linkFixes(
  resource: ResourceRef,
  observed: ObservedGmsa,
  linkedDn: string,
  accountDnNow: string,
  computer: ObservedComputer,
  drift: Set<DriftType>,
  changes: AttributeChange[],
): Action[] {
  const here = normalizeDn(linkedDn);
  const linked = (computer.hostServiceAccounts ?? []).some((d) => normalizeDn(d) === here);
  const others = (observed.hostComputers ?? []).filter((d) => normalizeDn(d) !== normalizeDn(computer.dn));
  if (linked && others.length === 0) return [];
  drift.add("principals");
  const label = (d: string): string => (normalizeDn(d) === normalizeDn(computer.dn) ? computer.samAccountName : d);
  const change: AttributeChange = {
    attribute: "msDS-HostServiceAccountBL",
    from: sorted([...others, ...(linked ? [computer.dn] : [])].map(label)),
    to: [computer.samAccountName],
  };
  changes.push(change);
  return [
    ...others.map((d): Action => ({
      type: "link-host-account",
      resource,
      dn: d,
      accountDn: accountDnNow,
      operation: "delete",
      changes: [change],
    })),
    ...(linked
      ? []
      : [
          {
            type: "link-host-account" as const,
            resource,
            dn: computer.dn,
            accountDn: accountDnNow,
            operation: "add" as const,
            changes: [change],
          },
        ]),
  ];
}
