/**
 * Reference resolution: the lookups diff needs over one observed directory (by account name,
 * by SID, by DN), and the resolution of a manifest's principal and member references to the
 * objects apply will write, or to repository groups apply creates first.
 */
import type { DesiredState } from "../../manifests/index.ts";
import type { KdsState, ObservedGmsa, ObservedGroup, OwnershipKey } from "../../directory/index.ts";
import { kdsState, normalizeDn } from "../../directory/index.ts";
import type { ObservedDirectory, PrincipalTarget } from "../model.ts";
import { plannedKeyStart } from "./kds.ts";
import { renamedGroup } from "./rename.ts";
import type { Renamed } from "./rename.ts";

/** Inputs diff needs besides the two states. */
export interface DiffOptions {
  readonly now: Date;
  /** Take over unmarked objects that have a managed name (stamping the marker), instead of reporting a conflict. */
  readonly adopt: boolean;
  /** The owner id and key that make and check the ownership marker (diff/ownership.ts). */
  readonly owner: OwnershipKey;
}

/** Both states, the options, and the lookups every kind's diff uses. Built once per diff. */
export interface Context {
  readonly desired: DesiredState;
  readonly observed: ObservedDirectory;
  readonly options: DiffOptions;
  /** Normalised DNs of the containers the manifests name as their path (built-in ones become writable). */
  readonly allowedContainers: ReadonlySet<string>;
  readonly kds: KdsState;
  /** KDS state after this plan (a key created with effectiveImmediately counts as effective). */
  readonly kdsAfterPlan: KdsState;
  /** Lower-cased sAMAccountName (without "$") → object; gMSAs only. */
  readonly gmsaBySam: ReadonlyMap<string, ObservedGmsa>;
  /** The same for standalone managed service accounts (sMSAs). */
  readonly smsaBySam: ReadonlyMap<string, ObservedGmsa>;
  readonly groupBySam: ReadonlyMap<string, ObservedGroup>;
  readonly computerBySam: ReadonlyMap<string, { dn: string; sid: string }>;
  readonly nameBySid: ReadonlyMap<string, string>;
  /** Normalised DN → how a person names the object (computers as NAME$), for member lists. */
  readonly labelByDn: ReadonlyMap<string, string>;
  /** Repo group name → accountName. */
  readonly repoGroupAccount: ReadonlyMap<string, string>;
  /** Repo gMSA name → accountName. */
  readonly repoGmsaAccount: ReadonlyMap<string, string>;
  /** Every object read, by SID and by normalised DN, for `sid:` and `dn:` references. */
  readonly bySid: ReadonlyMap<string, Found>;
  readonly byDn: ReadonlyMap<string, Found>;
  /** Users (objectClass user, not a computer) by sAMAccountName and by userPrincipalName, lower-cased. */
  readonly userBySam: ReadonlyMap<string, Found>;
  /**
   * Repo groups whose accountName AD does not hold but whose owned object carries their resource
   * tag (docs/decisions/renames.md), by resource name: renamed in place, or replaced when the
   * manifest says allowReplacement.
   */
  readonly renamedGroups: ReadonlyMap<string, Renamed<ObservedGroup>>;
  /** Normalised DN of such a group before this plan → its DN after it (null: replaced, so gone). */
  readonly groupDnAfter: ReadonlyMap<string, string | null>;
}

/** An object a reference resolved to. */
interface Found {
  readonly dn: string;
  readonly sid: string;
  readonly label: string;
}

/**
 * The CRDs' default paths (gMSAs, groups): always allowed, so that what a revision created there
 * can still be pruned after its last manifest left.
 */
const DEFAULT_PATHS = ["CN=Managed Service Accounts", "CN=Users"];

/** The lookup key of an account name: AD compares sAMAccountName without regard to case. */
export const lower = (s: string): string => s.toLowerCase();

/**
 * What the lookups derive from one observed object, kept as long as the object lives: an
 * incremental read keeps every unchanged object of the last picture, so a plan normalises and
 * wraps only what changed, and an unchanged reference resolves to the very same value (which the
 * diff memo compares first: memo.ts). Derived by pure functions of the object, so never stale.
 */
const normalizedDns = new WeakMap<object, string>();
const founds = new WeakMap<object, Found>();
const dnKey = (o: { readonly dn: string }): string => {
  let key = normalizedDns.get(o);
  if (key === undefined) normalizedDns.set(o, (key = normalizeDn(o.dn)));
  return key;
};
const foundOf = (o: object, make: () => Found): Found => {
  let found = founds.get(o);
  if (found === undefined) founds.set(o, (found = make()));
  return found;
};

/** Builds the lookups over one observed directory. */
export function buildContext(desired: DesiredState, observed: ObservedDirectory, options: DiffOptions): Context {
  const ctx = lookups(desired, observed, options);
  const renamedGroups = new Map<string, Renamed<ObservedGroup>>();
  for (const g of desired.groups.values()) {
    // A suspended group is not diffed, so not renamed: references to it wait as for a new group.
    if (g.spec.suspend || ctx.groupBySam.has(lower(g.spec.accountName))) continue;
    const renamed = renamedGroup({ kind: "ADGroup", name: g.name }, g.spec, ctx);
    if (renamed) renamedGroups.set(g.name, renamed);
  }
  // Replaced: gone. In Observe mode the rename is only reported, so the object stays where it is.
  const groupDnAfter = new Map(
    [...renamedGroups].map(([name, r]) => {
      const spec = desired.groups.get(name)?.spec;
      const after = spec?.allowReplacement ? null : spec?.mode === "Observe" ? r.previousDn : r.observed.dn;
      return [normalizeDn(r.previousDn), after] as const;
    }),
  );
  // Member lists name a renamed group by its new name at its new DN.
  const labelByDn = new Map(ctx.labelByDn);
  for (const r of renamedGroups.values()) labelByDn.set(normalizeDn(r.observed.dn), r.observed.samAccountName);
  return { ...ctx, labelByDn, renamedGroups, groupDnAfter };
}

/** The lookups over one observed directory, before renames are known (they need the ownership check). */
function lookups(desired: DesiredState, observed: ObservedDirectory, options: DiffOptions): Context {
  const kds = kdsState(observed.kdsRootKeys, options.now);
  // Keys this plan creates count from their start time, as the forest's own keys do.
  const planned = [...desired.kdsRootKeys.values()].flatMap((r) => {
    const useStartTime = plannedKeyStart(r, observed.kdsRootKeys, options.now);
    return useStartTime ? [{ useStartTime }] : [];
  });
  const kdsAfterPlan = kdsState([...observed.kdsRootKeys, ...planned], options.now);
  const nameBySid = new Map<string, string>(observed.sidNames);
  for (const g of observed.groups) nameBySid.set(g.sid, g.samAccountName);
  for (const c of observed.computers) nameBySid.set(c.sid, `${c.samAccountName}$`);
  for (const g of observed.gmsas) nameBySid.set(g.sid, `${g.samAccountName}$`);
  return {
    desired,
    observed,
    options,
    // Thousands of resources name a handful of paths: each is normalised once.
    allowedContainers: new Set(
      [
        ...new Set([
          ...DEFAULT_PATHS,
          ...[...desired.gmsas.values(), ...desired.smsas.values(), ...desired.groups.values()].map((r) => r.spec.path),
        ]),
      ].map((path) => normalizeDn(`${path},${observed.baseDn}`)),
    ),
    kds,
    kdsAfterPlan,
    gmsaBySam: new Map(observed.gmsas.filter((g) => !g.standalone).map((g) => [lower(g.samAccountName), g])),
    smsaBySam: new Map(observed.gmsas.filter((g) => g.standalone).map((g) => [lower(g.samAccountName), g])),
    groupBySam: new Map(observed.groups.map((g) => [lower(g.samAccountName), g])),
    computerBySam: new Map(observed.computers.map((c) => [lower(c.samAccountName), c])),
    nameBySid,
    labelByDn: new Map([
      ...observed.groups.map((g) => [dnKey(g), g.samAccountName] as const),
      ...observed.computers.map((c) => [dnKey(c), `${c.samAccountName}$`] as const),
    ]),
    repoGroupAccount: new Map([...desired.groups.values()].map((g) => [g.name, g.spec.accountName])),
    repoGmsaAccount: new Map([...desired.gmsas.values()].map((g) => [g.name, g.spec.accountName])),
    ...principalLookups(observed),
    renamedGroups: new Map(),
    groupDnAfter: new Map(),
  };
}

/** The lookups by SID, DN and user name over everything observe read. */
function principalLookups(observed: ObservedDirectory): Pick<Context, "bySid" | "byDn" | "userBySam"> {
  const all: Found[] = [
    ...observed.groups.map((g) => foundOf(g, () => ({ dn: g.dn, sid: g.sid, label: g.samAccountName }))),
    ...[...observed.computers, ...observed.gmsas].map((c) =>
      foundOf(c, () => ({ dn: c.dn, sid: c.sid, label: `${c.samAccountName}$` })),
    ),
    ...observed.principals.map((p) => foundOf(p, () => ({ dn: p.dn, sid: p.sid, label: p.samAccountName || p.dn }))),
  ];
  // objectClass user also covers computers and gMSAs (subclasses): a `user:` reference means a person's or service's account.
  const users = observed.principals.filter((p) => p.objectClass === "user" || p.objectClass === "inetOrgPerson");
  return {
    bySid: new Map(all.map((f) => [f.sid, f])),
    byDn: new Map(all.map((f) => [dnKey(f), f])),
    // Keyed by sAMAccountName and by userPrincipalName: a `user:` reference may be either ('@' tells them apart).
    userBySam: new Map(
      users.flatMap((u) => {
        const found = { dn: u.dn, sid: u.sid, label: u.samAccountName };
        const upn = u.userPrincipalName === undefined ? [] : [[lower(u.userPrincipalName), found] as const];
        return [[lower(u.samAccountName), found] as const, ...upn];
      }),
    ),
  };
}

/** The context as if the gMSA with this account name did not exist (for a replacement's create). */
export function withoutGmsa(ctx: Context, accountName: string): Context {
  const gmsaBySam = new Map(ctx.gmsaBySam);
  gmsaBySam.delete(lower(accountName));
  return { ...ctx, gmsaBySam };
}

/** References resolved: what apply writes, and what could not be found in AD. */
export interface Resolved {
  readonly targets: PrincipalTarget[];
  readonly missing: string[];
}

/** Resolves principal/member references to DNs and SIDs, or to repo groups that apply creates first. */
export function resolveRefs(
  refs: ReadonlyArray<{
    group?: string;
    externalGroup?: string;
    computer?: string;
    user?: string;
    serviceAccount?: string;
    sid?: string;
    dn?: string;
  }>,
  ctx: Context,
): Resolved {
  const targets: PrincipalTarget[] = [];
  const missing: string[] = [];
  for (const ref of refs) {
    if (ref.group !== undefined) {
      const account = ctx.repoGroupAccount.get(ref.group);
      // A group renamed in this plan is named by its new name and DN: apply renames it first.
      const r = ctx.renamedGroups.get(ref.group);
      const after = r && ctx.groupDnAfter.get(normalizeDn(r.previousDn));
      const renamed = r && after ? { ...r.observed, dn: after } : undefined;
      const found = account === undefined ? undefined : (ctx.groupBySam.get(lower(account)) ?? renamed);
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
    } else {
      const [kind, found] = otherPrincipal(ref, ctx);
      if (found) targets.push({ type: "object", ...found });
      else missing.push(kind);
    }
  }
  // One object named twice (a name and its SID or DN) is one member, one reader: listed once.
  const seen = new Set<string>();
  const once = targets.filter((t) => {
    const key = t.type === "repo-group" ? `repo:${t.name}` : t.sid;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { targets: once, missing };
}

/**
 * A user, gMSA, SID or DN reference: what a person calls it (for "not found") and what it
 * resolved to. A gMSA is named by its resource in this repository, else by its account name;
 * it must exist in AD when the plan is made (gMSAs are created after groups and readers).
 */
function otherPrincipal(
  ref: { user?: string; serviceAccount?: string; sid?: string; dn?: string },
  ctx: Context,
): [string, Found | undefined] {
  if (ref.user !== undefined) return [`user ${ref.user}`, ctx.userBySam.get(lower(ref.user))];
  if (ref.serviceAccount !== undefined) {
    const account = ctx.repoGmsaAccount.get(ref.serviceAccount) ?? ref.serviceAccount;
    const gmsa = ctx.gmsaBySam.get(lower(account));
    const found = gmsa ? { dn: gmsa.dn, sid: gmsa.sid, label: `${gmsa.samAccountName}$` } : undefined;
    // gMSAs are created after groups: one of this repository resolves on the pass after.
    const pending = ctx.repoGmsaAccount.has(ref.serviceAccount)
      ? " (a GroupManagedServiceAccount of this repository not created yet: used on the pass after apply creates it)"
      : "";
    return [`serviceAccount ${ref.serviceAccount}${pending}`, found];
  }
  if (ref.sid !== undefined) return [`sid ${ref.sid}`, ctx.bySid.get(ref.sid)];
  const dn = ref.dn ?? "";
  return [`dn ${dn}`, ctx.byDn.get(normalizeDn(dn))];
}

/**
 * How a person names a member DN: its account name when the directory read it (a group, a
 * computer, or any principal a manifest refers to, such as a user to remove), else the DN.
 */
export function memberLabel(dn: string, ctx: Context): string {
  const key = normalizeDn(dn);
  return ctx.labelByDn.get(key) ?? ctx.byDn.get(key)?.label ?? dn;
}

/** How a person names a SID: its account name when known, else the SID. */
export function sidLabel(sid: string, ctx: Context): string {
  return ctx.nameBySid.get(sid) ?? sid;
}
