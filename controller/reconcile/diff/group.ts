/**
 * diff for one ADGroup resource: create it with its members, or bring scope, category, CN, the
 * text attributes (description, displayName, notes), managedBy and members back.
 */
import type { ADGroupSpec } from "../../manifests/index.ts";
import type { ObservedGroup } from "../../directory/index.ts";
import { accountDn, describeGroupType, groupTypeFor, groupTypeSteps, normalizeDn } from "../../directory/index.ts";
import type { Action, AttributeChange, Blocker, DriftType, PrincipalTarget, ResourceRef } from "../model.ts";
import { lower, memberLabel, resolveRefs } from "./references.ts";
import type { Context } from "./references.ts";
import { claim } from "./ownership.ts";
import type { Claim } from "./ownership.ts";
import { conflict, moveIfElsewhere, principalNotFound, resourceDiff, sorted } from "./resource-diff.ts";
import type { Mode, ResourceDiff } from "./resource-diff.ts";

/** Compares one ADGroup manifest with the group of that account name in AD. */
export function diffGroup(name: string, spec: ADGroupSpec, mode: Mode, ctx: Context): ResourceDiff {
  const resource: ResourceRef = { kind: "ADGroup", name };
  const dn = accountDn(spec.commonName ?? spec.accountName, spec.path, ctx.observed.baseDn);
  const observed = ctx.groupBySam.get(lower(spec.accountName));
  const { targets: listed, missing } = resolveRefs(spec.members, ctx);
  // A member listed under one spelling and removed under another (name and SID or DN) is the
  // same object: the removal wins, as for readers, so apply never adds and removes it in turn.
  const unwanted = new Set(resolveRefs(spec.removeMembers, ctx).targets.flatMap(dnOf));
  const both = listed.filter((t) => dnOf(t).some((k) => unwanted.has(k)));
  const targets = listed.filter((t) => !both.includes(t));
  const notes = both.map(
    (t) => `${t.label} is both listed in members and named in removeMembers under another spelling: it is removed`,
  );
  const manager = spec.managedBy ? resolveRefs([spec.managedBy], ctx) : undefined;
  const unresolved = [...missing, ...(manager?.missing ?? [])];
  const blocker = unresolved.length > 0 ? principalNotFound(unresolved) : undefined;
  const managedBy = manager?.targets[0];
  if (!observed) {
    const renamed = ctx.renamedGroups.get(name);
    const create = createGroup(resource, dn, spec, { targets, managedBy, notes }, blocker, mode);
    if (!renamed) return create;
    if (spec.allowReplacement) return replaceGroup(resource, renamed.previousDn, create);
    const resolution = {
      targets,
      unwanted,
      managedBy,
      missing,
      verdict: { status: "ours" } as const,
      blocker,
      mode,
      notes,
    };
    const update = updateGroup(resource, dn, spec, renamed.observed, resolution, ctx);
    return resourceDiff(resource, renamed.previousDn, mode, {
      ...update,
      drift: new Set([...update.drift, "attribute"]),
      changes: [...renamed.changes, ...update.changes],
      fixes: [renamed.action, ...update.fixes],
    });
  }
  const verdict = claim(observed, ctx);
  if (verdict.status === "blocked") return conflict(resource, observed.dn, mode, verdict.blocker);
  return updateGroup(
    resource,
    dn,
    spec,
    observed,
    { targets, unwanted, managedBy, missing, verdict, blocker, mode, notes },
    ctx,
  );
}

/** The lookup key of a resolved member (a repo group not created yet has none). */
const dnOf = (t: PrincipalTarget): string[] => (t.type === "object" ? [normalizeDn(t.dn)] : []);

function createGroup(
  resource: ResourceRef,
  dn: string,
  spec: ADGroupSpec,
  {
    targets,
    managedBy,
    notes,
  }: { targets: readonly PrincipalTarget[]; managedBy: PrincipalTarget | undefined; notes: string[] },
  blocker: Blocker | undefined,
  mode: Mode,
): ResourceDiff {
  const groupType = groupTypeFor(spec.scope, spec.category);
  const labels = sorted(targets.map((t) => t.label));
  const changes: AttributeChange[] = [
    { attribute: "sAMAccountName", from: undefined, to: spec.accountName },
    { attribute: "groupType", from: undefined, to: describeGroupType(groupType) },
  ];
  if (spec.description !== undefined) changes.push({ attribute: "description", from: undefined, to: spec.description });
  const text: Record<string, string> = {};
  for (const [attribute, value] of textAttributes(spec))
    if (value !== undefined && value !== "") {
      text[attribute] = value;
      changes.push({ attribute, from: undefined, to: value });
    }
  if (managedBy) changes.push({ attribute: "managedBy", from: undefined, to: managedBy.label });
  if (labels.length > 0) changes.push({ attribute: "member", from: undefined, to: labels });
  const fixes: Action[] = [
    {
      type: "create-group",
      resource,
      dn,
      accountName: spec.accountName,
      groupType,
      description: spec.description === "" ? undefined : spec.description,
      text,
      ...(managedBy ? { managedBy } : {}),
      changes: changes.filter((c) => c.attribute !== "member"),
    },
  ];
  if (targets.length > 0)
    fixes.push({
      type: "add-members",
      resource,
      dn,
      members: targets,
      changes: changes.filter((c) => c.attribute === "member"),
    });
  return resourceDiff(resource, dn, mode, { drift: new Set(["missing"]), changes, fixes, blocker, notes });
}

/**
 * A new accountName with allowReplacement: the group found by its tag is deleted and the
 * manifest's created (a new SID; readers and parent groups are given the new one in this plan).
 */
function replaceGroup(resource: ResourceRef, previousDn: string, create: ResourceDiff): ResourceDiff {
  const change: AttributeChange = { attribute: "distinguishedName", from: previousDn, to: undefined };
  return {
    ...create,
    drift: new Set(["attribute"]),
    changes: [change, ...create.changes],
    fixes: create.blocker
      ? []
      : [{ type: "delete", resource, dn: previousDn, replacement: true, changes: [change] }, ...create.fixes],
    notes: [...create.notes, "allowReplacement: the group is deleted and created under its new name, with a new SID"],
  };
}

/** The optional text attributes of a group, by LDAP name: absent is not managed, "" clears. */
function textAttributes(spec: ADGroupSpec): [string, string | undefined][] {
  return [
    ["displayName", spec.displayName],
    ["info", spec.notes],
  ];
}

interface Resolution {
  readonly targets: readonly PrincipalTarget[];
  /** Normalised DNs of the members removeMembers names. */
  readonly unwanted: ReadonlySet<string>;
  readonly managedBy: PrincipalTarget | undefined;
  readonly missing: readonly string[];
  readonly verdict: Exclude<Claim, { status: "blocked" }>;
  readonly blocker: Blocker | undefined;
  readonly mode: Mode;
  readonly notes: string[];
}

function updateGroup(
  resource: ResourceRef,
  dn: string,
  spec: ADGroupSpec,
  observed: ObservedGroup,
  { targets, unwanted, managedBy, missing, verdict, blocker, mode, notes }: Resolution,
  ctx: Context,
): ResourceDiff {
  const drift = new Set<DriftType>();
  const changes: AttributeChange[] = [];
  const fixes: Action[] = [];
  const currentDn = moveIfElsewhere(resource, observed.dn, dn, drift, changes, fixes, spec.commonName);

  const updateChanges: AttributeChange[] = [];
  const marker = verdict.status === "adopt" ? verdict.marker : undefined;
  if (verdict.status === "adopt") {
    updateChanges.push({ attribute: "adminDescription", from: observed.adminDescription, to: verdict.marker });
    notes.push(`adopted (${verdict.why}): the ownership marker will be written`);
  }
  const wantType = groupTypeFor(spec.scope, spec.category);
  const steps = groupTypeSteps(observed.groupType, wantType);
  if (steps.length > 0) {
    drift.add("attribute");
    updateChanges.push({
      attribute: "groupType",
      from: describeGroupType(observed.groupType),
      to: describeGroupType(wantType),
    });
  }
  let description: string | null | undefined;
  if (spec.description !== undefined && spec.description !== (observed.description ?? "")) {
    drift.add("attribute");
    description = spec.description === "" ? null : spec.description;
    updateChanges.push({
      attribute: "description",
      from: observed.description,
      to: spec.description === "" ? undefined : spec.description,
    });
  }
  const text: Record<string, string | null> = {};
  const haveText: Record<string, string | undefined> = { displayName: observed.displayName, info: observed.info };
  for (const [attribute, want] of textAttributes(spec))
    if (want !== undefined && want !== (haveText[attribute] ?? "")) {
      drift.add("attribute");
      text[attribute] = want === "" ? null : want;
      updateChanges.push({ attribute, from: haveText[attribute], to: want === "" ? undefined : want });
    }
  const manager = observed.managedBy === undefined ? "" : normalizeDn(observed.managedBy);
  const managerAfter = ctx.groupDnAfter.has(manager) ? normalizeDn(ctx.groupDnAfter.get(manager) ?? "") : manager;
  const newManager = managedBy && (managedBy.type !== "object" || normalizeDn(managedBy.dn) !== managerAfter);
  if (newManager) {
    drift.add("attribute");
    const from = observed.managedBy === undefined ? undefined : memberLabel(observed.managedBy, ctx);
    updateChanges.push({ attribute: "managedBy", from, to: managedBy.label });
  }
  if (updateChanges.length > 0) {
    changes.push(...updateChanges);
    fixes.push({
      type: "update-group",
      resource,
      dn: currentDn,
      groupTypeSteps: steps,
      ...(description !== undefined ? { description } : {}),
      text,
      ...(newManager ? { managedBy } : {}),
      adopt: marker !== undefined,
      ...(marker !== undefined ? { marker } : {}),
      changes: updateChanges,
    });
  }

  // Members as they will be once the groups renamed in this plan are (AD follows a modify-DN in
  // member values; a replaced group's values go with it).
  const members = observed.members.flatMap((m) => {
    const after = ctx.groupDnAfter.get(normalizeDn(m));
    return after === null ? [] : [after ?? m];
  });
  const have = new Map(members.map((m) => [normalizeDn(m), m]));
  const wantKnown = new Set(targets.flatMap(dnOf));
  // A member to remove that AD does not know (or a repo group not created yet) is not a member.
  const toAdd = targets.filter((t) => t.type !== "object" || !have.has(normalizeDn(t.dn)));
  // With a member we cannot find, exact membership would remove nothing wrongly, but we
  // cannot be sure the list is complete: removals wait until every member resolves. Members
  // named in removeMembers are named one by one, so they go whatever else is missing.
  const exact = spec.membership === "exact" && missing.length === 0;
  const toRemove = [...have].filter(([k]) => unwanted.has(k) || (exact && !wantKnown.has(k))).map(([, v]) => v);
  if (toAdd.length > 0 || toRemove.length > 0) {
    drift.add("membership");
    const removed = new Set(toRemove.map(normalizeDn));
    const kept = members.filter((m) => !removed.has(normalizeDn(m))).map((m) => memberLabel(m, ctx));
    const change: AttributeChange = {
      attribute: "member",
      from: sorted(observed.members.map((m) => memberLabel(m, ctx))),
      to: sorted(new Set([...kept, ...toAdd.map((t) => t.label)])),
    };
    changes.push(change);
    if (toAdd.length > 0)
      fixes.push({ type: "add-members", resource, dn: currentDn, members: toAdd, changes: [change] });
    if (toRemove.length > 0)
      fixes.push({
        type: "remove-members",
        resource,
        dn: currentDn,
        memberDns: toRemove,
        changes: toAdd.length > 0 ? [] : [change],
      });
  }
  return resourceDiff(resource, observed.dn, mode, { drift, changes, fixes, blocker, notes });
}
