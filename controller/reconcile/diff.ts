/**
 * diff: desired state (Git) × observed directory (AD) → per-resource drift with the fixes that
 * would remove it. Pure: no I/O, the clock is a parameter. Policy (modes, prune, budget) is
 * applied afterwards by `plan`.
 */
import type { DesiredState, GroupManagedServiceAccountSpec, ADGroupSpec } from "../manifests/index.ts";
import type { ObservedGmsa, ObservedGroup } from "../directory/index.ts";
import {
  allowedReaders,
  describeEncryptionTypes,
  encodeEncryptionTypes,
  escapeDnValue,
  KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS,
  MANAGED_MARKER,
} from "../directory/index.ts";
import type {
  Action,
  AttributeChange,
  Blocker,
  DriftType,
  ObservedDirectory,
  PrincipalTarget,
  ResourceRef,
} from "./model.ts";

/**
 * Samba (source4/dsdb/gmsa/util.c) accepts a root key only once its msKds-UseStartTime is at
 * least one key cycle (10 h) plus the maximum clock skew (5 min) in the past; Windows DCs
 * follow the same GKDI rule. We use that instant as the key's "effective" time everywhere.
 */
const KDS_KEY_DELAY_MS = KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS;

/** Bits of msDS-SupportedEncryptionTypes the model manages (DES, RC4, AES128, AES256); others (FAST...) are kept. */
export const MANAGED_ENCRYPTION_BITS = 0x1f;

const SECURITY_GROUP = 0x80000000;
const SCOPE_BITS: Record<ADGroupSpec["scope"], number> = { Global: 0x2, DomainLocal: 0x4, Universal: 0x8 };
const SCOPE_MASK = 0x2 | 0x4 | 0x8;

/** What diff found for one resource, before policy. */
export interface ResourceDiff {
  readonly resource: ResourceRef;
  readonly dn: string | undefined;
  readonly drift: ReadonlySet<DriftType>;
  readonly changes: readonly AttributeChange[];
  readonly fixes: readonly Action[];
  readonly blocker?: Blocker;
  /** Only for `unexpected`: a marked object that left the repository. */
  readonly prunable: boolean;
  /** Resource mode from the manifest (undefined: the global mode). */
  readonly mode: "Enforce" | "Observe" | undefined;
  readonly notes: readonly string[];
}

/** Inputs diff needs besides the two states. */
export interface DiffOptions {
  readonly now: Date;
  /** Take over unmarked objects that have a managed name (stamping the marker), instead of reporting a conflict. */
  readonly adopt: boolean;
  /** Ownership marker value in adminDescription. */
  readonly marker?: string;
}

/** State of the KDS root keys: whether a gMSA can be created now, and if not, from when. */
export interface KdsState {
  readonly effective: boolean;
  readonly effectiveAt: Date | undefined;
}

/** Computes when the forest's KDS root keys allow gMSA creation. */
export function kdsState(keys: ObservedDirectory["kdsRootKeys"], now: Date): KdsState {
  let earliest: number | undefined;
  for (const key of keys) {
    const at = key.useStartTime.getTime() + KDS_KEY_DELAY_MS;
    if (earliest === undefined || at < earliest) earliest = at;
  }
  if (earliest === undefined) return { effective: false, effectiveAt: undefined };
  return { effective: earliest <= now.getTime(), effectiveAt: new Date(earliest) };
}

/** The full DN a resource should have: CN=<accountName>,<path>,<baseDn>. */
export function desiredDn(accountName: string, path: string, baseDn: string): string {
  return `CN=${escapeDnValue(accountName)},${path},${baseDn}`;
}

/** The groupType a scope maps to: always a security group (0x80000000), as a signed 32-bit integer like AD returns it. */
export function groupTypeFor(scope: ADGroupSpec["scope"]): number {
  return SECURITY_GROUP | SCOPE_BITS[scope] | 0;
}

function scopeName(groupType: number): string {
  const bits = groupType & SCOPE_MASK;
  const entry = Object.entries(SCOPE_BITS).find(([, b]) => b === bits);
  const scope = entry ? entry[0] : `0x${bits.toString(16)}`;
  return (groupType & SECURITY_GROUP) !== 0 ? scope : `${scope} (distribution)`;
}

/**
 * AD refuses a direct Global ↔ DomainLocal scope change (unwillingToPerform); the AD module
 * and ADUC go through Universal. Returns the groupType values to write, in order.
 */
export function groupTypeSteps(from: number, to: number): number[] {
  if ((from | 0) === (to | 0)) return [];
  const f = from & SCOPE_MASK;
  const t = to & SCOPE_MASK;
  const viaUniversal = (f === 0x2 && t === 0x4) || (f === 0x4 && t === 0x2);
  return viaUniversal ? [groupTypeFor("Universal"), to | 0] : [to | 0];
}

const lower = (s: string): string => s.toLowerCase();

/** Normalises a DN for comparison: case and the spaces around separators do not matter in AD. */
export function normalizeDn(dn: string): string {
  return dn
    .split(/(?<!\\),/)
    .map((rdn) => rdn.trim().toLowerCase())
    .join(",");
}

function parentDn(dn: string): string {
  const i = dn.search(/(?<!\\),/);
  return i < 0 ? "" : dn.slice(i + 1);
}

interface Context {
  readonly desired: DesiredState;
  readonly observed: ObservedDirectory;
  readonly options: DiffOptions;
  readonly marker: string;
  readonly kds: KdsState;
  readonly gmsaBySam: ReadonlyMap<string, ObservedGmsa>;
  readonly groupBySam: ReadonlyMap<string, ObservedGroup>;
  readonly computerBySam: ReadonlyMap<string, { dn: string; sid: string }>;
  readonly nameBySid: ReadonlyMap<string, string>;
  /** Normalised DN → how a person names the object (computers as NAME$), for member lists. */
  readonly labelByDn: ReadonlyMap<string, string>;
  /** Repo group name → accountName. */
  readonly repoGroupAccount: ReadonlyMap<string, string>;
  /** KDS state after this plan (a key created with effectiveImmediately counts as effective). */
  readonly kdsAfterPlan: KdsState;
}

function buildContext(desired: DesiredState, observed: ObservedDirectory, options: DiffOptions): Context {
  const kds = kdsState(observed.kdsRootKeys, options.now);
  let kdsAfterPlan = kds;
  if (!kds.effective && observed.kdsRootKeys.length === 0 && desired.kdsRootKey && !desired.kdsRootKey.spec.suspend) {
    const immediate = desired.kdsRootKey.spec.effectiveImmediately;
    kdsAfterPlan = {
      effective: immediate,
      effectiveAt: new Date(options.now.getTime() + (immediate ? 0 : KDS_KEY_DELAY_MS)),
    };
  }
  const nameBySid = new Map<string, string>(observed.sidNames);
  for (const g of observed.groups) nameBySid.set(g.sid, g.samAccountName);
  for (const c of observed.computers) nameBySid.set(c.sid, `${c.samAccountName}$`);
  for (const g of observed.gmsas) nameBySid.set(g.sid, `${g.samAccountName}$`);
  return {
    desired,
    observed,
    options,
    marker: options.marker ?? MANAGED_MARKER,
    kds,
    kdsAfterPlan,
    gmsaBySam: new Map(observed.gmsas.map((g) => [lower(g.samAccountName), g])),
    groupBySam: new Map(observed.groups.map((g) => [lower(g.samAccountName), g])),
    computerBySam: new Map(observed.computers.map((c) => [lower(c.samAccountName), c])),
    nameBySid,
    labelByDn: new Map([
      ...observed.groups.map((g) => [normalizeDn(g.dn), g.samAccountName] as const),
      ...observed.computers.map((c) => [normalizeDn(c.dn), `${c.samAccountName}$`] as const),
    ]),
    repoGroupAccount: new Map([...desired.groups.values()].map((g) => [g.name, g.spec.accountName])),
  };
}

interface Resolved {
  readonly targets: PrincipalTarget[];
  readonly missing: string[];
}

/** Resolves principal/member references to DNs and SIDs, or to repo groups that apply creates first. */
function resolveRefs(
  refs: ReadonlyArray<{ group?: string; externalGroup?: string; computer?: string }>,
  ctx: Context,
): Resolved {
  const targets: PrincipalTarget[] = [];
  const missing: string[] = [];
  for (const ref of refs) {
    if (ref.group !== undefined) {
      const account = ctx.repoGroupAccount.get(ref.group);
      const found = account === undefined ? undefined : ctx.groupBySam.get(lower(account));
      if (found) targets.push({ type: "object", dn: found.dn, sid: found.sid, label: found.samAccountName });
      else targets.push({ type: "repo-group", name: ref.group, label: account ?? ref.group });
    } else if (ref.externalGroup !== undefined) {
      const found = ctx.groupBySam.get(lower(ref.externalGroup));
      if (found) targets.push({ type: "object", dn: found.dn, sid: found.sid, label: found.samAccountName });
      else missing.push(`group ${ref.externalGroup}`);
    } else if (ref.computer !== undefined) {
      const found = ctx.computerBySam.get(lower(ref.computer));
      if (found) targets.push({ type: "object", dn: found.dn, sid: found.sid, label: `${ref.computer}$` });
      else missing.push(`computer ${ref.computer}`);
    }
  }
  return { targets, missing };
}

function principalNotFound(missing: readonly string[]): Blocker {
  return {
    outcome: "stalled",
    reason: "PrincipalNotFound",
    message: `not found in AD: ${missing.join(", ")}`,
  };
}

/** An unmarked object with a managed name, not adopted: reported, never written. */
function conflict(resource: ResourceRef, dn: string, mode: ResourceDiff["mode"]): ResourceDiff {
  return {
    resource,
    dn,
    drift: new Set(["conflict"]),
    changes: [],
    fixes: [],
    blocker: notOwned(dn),
    prunable: false,
    mode,
    notes: [],
  };
}

function notOwned(dn: string): Blocker {
  return {
    outcome: "stalled",
    reason: "NotOwned",
    message: `${dn} exists but was not created by gmsa-gitops (no ownership marker); it is left alone unless adoption is enabled`,
  };
}

function kdsBlocker(ctx: Context): Blocker {
  const at = ctx.kdsAfterPlan.effectiveAt;
  return at
    ? {
        outcome: "waiting",
        reason: "KdsRootKeyNotEffective",
        message: `no effective KDS root key yet; gMSA creation waits until ${at.toISOString()}`,
        until: at,
      }
    : {
        outcome: "stalled",
        reason: "KdsRootKeyNotEffective",
        message: "no KDS root key exists and the repository has no KdsRootKey resource to create one",
      };
}

const sorted = (values: Iterable<string>): string[] => [...values].sort((a, b) => a.localeCompare(b));

function diffGmsa(
  name: string,
  spec: GroupManagedServiceAccountSpec,
  mode: ResourceDiff["mode"],
  ctx: Context,
): ResourceDiff {
  const resource: ResourceRef = { kind: "GroupManagedServiceAccount", name };
  const dn = desiredDn(spec.accountName, spec.path, ctx.observed.baseDn);
  const observed = ctx.gmsaBySam.get(lower(spec.accountName));
  const { targets, missing } = resolveRefs(spec.principalsAllowedToRetrieveManagedPassword, ctx);
  const encryption = encodeEncryptionTypes(spec.kerberosEncryptionTypes);
  const principalLabels = sorted(targets.map((t) => t.label));

  if (!observed) {
    const changes: AttributeChange[] = [
      { attribute: "sAMAccountName", from: undefined, to: `${spec.accountName}$` },
      { attribute: "dNSHostName", from: undefined, to: spec.dnsHostName },
      { attribute: "msDS-GroupMSAMembership", from: undefined, to: principalLabels },
      { attribute: "msDS-SupportedEncryptionTypes", from: undefined, to: spec.kerberosEncryptionTypes.join(",") },
      { attribute: "msDS-ManagedPasswordInterval", from: undefined, to: String(spec.managedPasswordIntervalInDays) },
    ];
    if (spec.servicePrincipalNames.length > 0)
      changes.push({ attribute: "servicePrincipalName", from: undefined, to: spec.servicePrincipalNames });
    if (spec.description !== undefined)
      changes.push({ attribute: "description", from: undefined, to: spec.description });
    if (spec.displayName !== undefined)
      changes.push({ attribute: "displayName", from: undefined, to: spec.displayName });
    const blocker =
      missing.length > 0 ? principalNotFound(missing) : ctx.kdsAfterPlan.effective ? undefined : kdsBlocker(ctx);
    const create: Action = {
      type: "create-gmsa",
      resource,
      dn,
      accountName: spec.accountName,
      dnsHostName: spec.dnsHostName,
      encryptionTypes: encryption,
      servicePrincipalNames: spec.servicePrincipalNames,
      passwordIntervalDays: spec.managedPasswordIntervalInDays,
      description: spec.description,
      displayName: spec.displayName,
      principals: targets,
      changes,
    };
    return {
      resource,
      dn,
      drift: new Set(["missing"]),
      changes,
      fixes: blocker ? [] : [create],
      ...(blocker ? { blocker } : {}),
      prunable: false,
      mode,
      notes: [],
    };
  }

  const owned = observed.adminDescription === ctx.marker;
  if (!owned && !ctx.options.adopt) return conflict(resource, observed.dn, mode);

  const drift = new Set<DriftType>();
  const changes: AttributeChange[] = [];
  const set: Record<string, string | null> = {};
  const notes: string[] = [];
  let blocker: Blocker | undefined;

  if (!owned) {
    set["adminDescription"] = ctx.marker;
    changes.push({ attribute: "adminDescription", from: observed.adminDescription, to: ctx.marker });
    notes.push("adopted: the ownership marker will be added");
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
  const observedBits = observed.encryptionTypes ?? 0;
  if ((observedBits & MANAGED_ENCRYPTION_BITS) !== encryption || observed.encryptionTypes === undefined) {
    drift.add("encryption");
    const next = (observedBits & ~MANAGED_ENCRYPTION_BITS) | encryption;
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
      from: sorted([...readers].map((sid) => ctx.nameBySid.get(sid) ?? sid)),
      to: principalLabels,
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
      return {
        resource,
        dn: observed.dn,
        drift,
        changes,
        fixes: [
          { type: "delete", resource, dn: observed.dn, replacement: true, changes: [change] },
          ...diffGmsa(name, spec, mode, withoutGmsa(ctx, spec.accountName)).fixes,
        ],
        ...(blocker ? { blocker } : {}),
        prunable: false,
        mode,
        notes,
      };
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
  return {
    resource,
    dn: observed.dn,
    drift,
    changes,
    fixes,
    ...(blocker ? { blocker } : {}),
    prunable: false,
    mode,
    notes,
  };
}

/**
 * When an object sits in another container than its manifest's path, records the drift and a
 * move (keeping its RDN). Returns the DN the object has after the fixes.
 */
function moveIfElsewhere(
  resource: ResourceRef,
  observedDn: string,
  wantedDn: string,
  drift: Set<DriftType>,
  changes: AttributeChange[],
  fixes: Action[],
): string {
  if (sameDnParent(observedDn, wantedDn)) return observedDn;
  drift.add("attribute");
  const newDn = `${observedDn.split(/(?<!\\),/)[0] ?? ""},${parentDn(wantedDn)}`;
  const change: AttributeChange = { attribute: "distinguishedName", from: observedDn, to: newDn };
  changes.push(change);
  fixes.push({ type: "move", resource, dn: observedDn, newDn, changes: [change] });
  return newDn;
}

function withoutGmsa(ctx: Context, accountName: string): Context {
  const gmsaBySam = new Map(ctx.gmsaBySam);
  gmsaBySam.delete(lower(accountName));
  return { ...ctx, gmsaBySam };
}

function sameDnParent(observedDn: string, wantedDn: string): boolean {
  return normalizeDn(parentDn(observedDn)) === normalizeDn(parentDn(wantedDn));
}

function diffGroup(name: string, spec: ADGroupSpec, mode: ResourceDiff["mode"], ctx: Context): ResourceDiff {
  const resource: ResourceRef = { kind: "ADGroup", name };
  const dn = desiredDn(spec.accountName, spec.path, ctx.observed.baseDn);
  const observed = ctx.groupBySam.get(lower(spec.accountName));
  const { targets, missing } = resolveRefs(spec.members, ctx);
  const blocker = missing.length > 0 ? principalNotFound(missing) : undefined;
  const wantType = groupTypeFor(spec.scope);
  const labels = sorted(targets.map((t) => t.label));

  if (!observed) {
    const changes: AttributeChange[] = [
      { attribute: "sAMAccountName", from: undefined, to: spec.accountName },
      { attribute: "groupType", from: undefined, to: scopeName(wantType) },
    ];
    if (spec.description !== undefined)
      changes.push({ attribute: "description", from: undefined, to: spec.description });
    if (labels.length > 0) changes.push({ attribute: "member", from: undefined, to: labels });
    const fixes: Action[] = [
      {
        type: "create-group",
        resource,
        dn,
        accountName: spec.accountName,
        groupType: wantType,
        description: spec.description === "" ? undefined : spec.description,
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
    return {
      resource,
      dn,
      drift: new Set(["missing"]),
      changes,
      fixes,
      ...(blocker ? { blocker } : {}),
      prunable: false,
      mode,
      notes: [],
    };
  }

  const owned = observed.adminDescription === ctx.marker;
  if (!owned && !ctx.options.adopt) return conflict(resource, observed.dn, mode);

  const drift = new Set<DriftType>();
  const changes: AttributeChange[] = [];
  const fixes: Action[] = [];
  const notes: string[] = [];
  const currentDn = moveIfElsewhere(resource, observed.dn, dn, drift, changes, fixes);

  const updateChanges: AttributeChange[] = [];
  if (!owned) {
    updateChanges.push({ attribute: "adminDescription", from: observed.adminDescription, to: ctx.marker });
    notes.push("adopted: the ownership marker will be added");
  }
  const steps = groupTypeSteps(observed.groupType, wantType);
  if (steps.length > 0) {
    drift.add("attribute");
    updateChanges.push({ attribute: "groupType", from: scopeName(observed.groupType), to: scopeName(wantType) });
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
  if (updateChanges.length > 0) {
    changes.push(...updateChanges);
    fixes.push({
      type: "update-group",
      resource,
      dn: currentDn,
      groupTypeSteps: steps,
      ...(description !== undefined ? { description } : {}),
      adopt: !owned,
      changes: updateChanges,
    });
  }

  const have = new Map(observed.members.map((m) => [normalizeDn(m), m]));
  const wantKnown = new Set(targets.flatMap((t) => (t.type === "object" ? [normalizeDn(t.dn)] : [])));
  const toAdd = targets.filter((t) => t.type === "repo-group" || !have.has(normalizeDn(t.dn)));
  // With a member we cannot find, exact membership would remove nothing wrongly, but we
  // cannot be sure the list is complete: removals wait until every member resolves.
  const toRemove =
    spec.membership === "exact" && missing.length === 0
      ? [...have].filter(([k]) => !wantKnown.has(k)).map(([, v]) => v)
      : [];
  if (toAdd.length > 0 || toRemove.length > 0) {
    drift.add("membership");
    const change: AttributeChange = {
      attribute: "member",
      from: sorted(observed.members.map((m) => memberLabel(m, ctx))),
      to:
        spec.membership === "exact"
          ? labels
          : sorted(new Set([...observed.members.map((m) => memberLabel(m, ctx)), ...labels])),
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
  return {
    resource,
    dn: observed.dn,
    drift,
    changes,
    fixes,
    ...(blocker ? { blocker } : {}),
    prunable: false,
    mode,
    notes,
  };
}

function memberLabel(dn: string, ctx: Context): string {
  return ctx.labelByDn.get(normalizeDn(dn)) ?? dn;
}

function diffKds(ctx: Context): ResourceDiff | undefined {
  const res = ctx.desired.kdsRootKey;
  if (!res || res.spec.suspend) return undefined;
  const resource: ResourceRef = { kind: "KdsRootKey", name: res.name };
  const dn = `CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,${ctx.observed.configDn}`;
  const mode = res.spec.mode;
  if (ctx.observed.kdsRootKeys.length === 0) {
    const change: AttributeChange = {
      attribute: "msKds-UseStartTime",
      from: undefined,
      to: res.spec.effectiveImmediately ? "now - 10h05m (effective immediately)" : "now (effective in 10h05m)",
    };
    return {
      resource,
      dn,
      drift: new Set(["missing"]),
      changes: [change],
      fixes: [{ type: "create-kds-root-key", resource, effectiveImmediately: res.spec.effectiveImmediately }],
      prunable: false,
      mode,
      notes: [],
    };
  }
  const blocker: Blocker | undefined =
    !ctx.kds.effective && ctx.kds.effectiveAt
      ? {
          outcome: "waiting",
          reason: "KdsRootKeyNotEffective",
          message: `the KDS root key becomes effective at ${ctx.kds.effectiveAt.toISOString()}`,
          until: ctx.kds.effectiveAt,
        }
      : undefined;
  return {
    resource,
    dn,
    drift: new Set(),
    changes: [],
    fixes: [],
    ...(blocker ? { blocker } : {}),
    prunable: false,
    mode,
    notes: [],
  };
}

function unexpected(kind: "GroupManagedServiceAccount" | "ADGroup", samAccountName: string, dn: string): ResourceDiff {
  const resource: ResourceRef = { kind, name: samAccountName.toLowerCase() };
  return {
    resource,
    dn,
    drift: new Set(["unexpected"]),
    changes: [{ attribute: "distinguishedName", from: dn, to: undefined }],
    fixes: [
      {
        type: "delete",
        resource,
        dn,
        replacement: false,
        changes: [{ attribute: "distinguishedName", from: dn, to: undefined }],
      },
    ],
    prunable: true,
    mode: undefined,
    notes: [],
  };
}

/**
 * Compares the desired state with the observed directory. Returns one entry per repository
 * resource (except HostBindings, which the host side diffs) and one per marked object that
 * left the repository, in dependency order: KDS key, groups (nested ones first), gMSAs, then
 * prune candidates (gMSAs before the groups they may name).
 */
export function diffDirectory(
  desired: DesiredState,
  observed: ObservedDirectory,
  options: DiffOptions,
): ResourceDiff[] {
  const ctx = buildContext(desired, observed, options);
  const out: ResourceDiff[] = [];
  const kds = diffKds(ctx);
  if (kds) out.push(kds);

  for (const name of groupOrder(desired)) {
    const res = desired.groups.get(name)!;
    if (res.spec.suspend) continue;
    out.push(diffGroup(name, res.spec, res.spec.mode, ctx));
  }
  for (const res of [...desired.gmsas.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (res.spec.suspend) continue;
    out.push(diffGmsa(res.name, res.spec, res.spec.mode, ctx));
  }

  // Suspended resources still count as desired: never prune what Git still lists.
  const wantedGmsas = new Set([...desired.gmsas.values()].map((g) => lower(g.spec.accountName)));
  const wantedGroups = new Set([...desired.groups.values()].map((g) => lower(g.spec.accountName)));
  for (const g of observed.gmsas)
    if (g.adminDescription === ctx.marker && !wantedGmsas.has(lower(g.samAccountName)))
      out.push(unexpected("GroupManagedServiceAccount", g.samAccountName, g.dn));
  for (const g of observed.groups)
    if (g.adminDescription === ctx.marker && !wantedGroups.has(lower(g.samAccountName)))
      out.push(unexpected("ADGroup", g.samAccountName, g.dn));
  return out;
}

/** Repo groups ordered so that nested groups come before the groups that contain them. */
function groupOrder(desired: DesiredState): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string): void => {
    if (state.get(name) !== undefined) return; // cycles are rejected by validate; never loop here
    state.set(name, "visiting");
    const res = desired.groups.get(name);
    for (const m of res?.spec.members ?? []) if (m.group !== undefined && desired.groups.has(m.group)) visit(m.group);
    state.set(name, "done");
    order.push(name);
  };
  for (const name of [...desired.groups.keys()].sort()) visit(name);
  return order;
}
