/**
 * `--target KIND/NAME`: narrows a plan (and so apply) to some resources and what they depend on
 * in the repository, as terraform's -target does: a gMSA's repository groups and the KDS root
 * key, a group's nested repository groups, a binding's gMSA. Without its dependencies a targeted
 * gMSA could be created before the group that may retrieve its password. Pure.
 */
import type {
  BindingResource,
  DesiredState,
  GmsaResource,
  GroupResource,
  KdsRootKeyResource,
  SmsaResource,
} from "../manifests/index.ts";
import type { ResourceRef } from "../vocabulary.ts";
import { KINDS, resourceKey } from "../vocabulary.ts";
import type { Plan } from "./model.ts";

/** A `--target` value that is not `KIND/NAME` with a known kind. */
export interface TargetError {
  readonly target: string;
  readonly message: string;
}

/** Parses `KIND/NAME` (kind case-insensitive); an error says what was expected. */
export function parseTarget(text: string): ResourceRef | TargetError {
  const slash = text.indexOf("/");
  const kindText = slash < 0 ? "" : text.slice(0, slash);
  const name = slash < 0 ? "" : text.slice(slash + 1);
  const kind = KINDS.find((k) => k.toLowerCase() === kindText.toLowerCase());
  if (kind === undefined || name === "")
    return { target: text, message: `must be KIND/NAME with KIND one of ${KINDS.join(", ")}` };
  return { kind, name };
}

/** The repository's resource named by `ref`, if any. */
export function resourceOf(desired: DesiredState, ref: ResourceRef): DesiredResource | undefined {
  if (ref.kind === "GroupManagedServiceAccount") return desired.gmsas.get(ref.name);
  if (ref.kind === "ADGroup") return desired.groups.get(ref.name);
  if (ref.kind === "HostBinding") return desired.bindings.get(ref.name);
  if (ref.kind === "ManagedServiceAccount") return desired.smsas.get(ref.name);
  return desired.kdsRootKeys.get(ref.name);
}

/** Any one resource of a desired state. */
export type DesiredResource = GmsaResource | SmsaResource | GroupResource | BindingResource | KdsRootKeyResource;

const inRepo = (desired: DesiredState, r: ResourceRef): boolean => resourceOf(desired, r) !== undefined;

/** What `r` needs in AD before it can be applied, among the repository's resources. */
function dependencies(desired: DesiredState, r: ResourceRef): ResourceRef[] {
  const kds: ResourceRef[] = [...desired.kdsRootKeys.keys()].map((name) => ({ kind: "KdsRootKey", name }));
  if (r.kind === "GroupManagedServiceAccount") {
    const g = desired.gmsas.get(r.name);
    const groups = (g?.spec.principalsAllowedToRetrieveManagedPassword ?? []).flatMap((p) =>
      p.group !== undefined ? [{ kind: "ADGroup" as const, name: p.group }] : [],
    );
    return [...kds, ...groups];
  }
  if (r.kind === "ADGroup")
    return (desired.groups.get(r.name)?.spec.members ?? []).flatMap((m) =>
      m.group !== undefined ? [{ kind: "ADGroup" as const, name: m.group }] : [],
    );
  if (r.kind === "HostBinding") {
    const account = desired.bindings.get(r.name)?.spec.account;
    if (account === undefined) return [];
    return [
      { kind: desired.smsas.has(account) ? "ManagedServiceAccount" : "GroupManagedServiceAccount", name: account },
    ];
  }
  return [];
}

/**
 * The keys (`KIND/NAME`) of the targets and, for those in the repository, everything they depend
 * on, transitively. A target not in the repository (a prune candidate) stands alone.
 */
export function targetClosure(desired: DesiredState, targets: readonly ResourceRef[]): Set<string> {
  const keys = new Set<string>();
  const todo = [...targets];
  for (let r = todo.pop(); r !== undefined; r = todo.pop()) {
    const key = resourceKey(r);
    if (keys.has(key)) continue;
    keys.add(key);
    if (inRepo(desired, r)) todo.push(...dependencies(desired, r));
  }
  return keys;
}

/** Targets named neither in the repository nor in the plan (typos): the CLI refuses them. */
export function unknownTargets(desired: DesiredState, plan: Plan, targets: readonly ResourceRef[]): ResourceRef[] {
  const planned = new Set(plan.resources.map((r) => resourceKey(r.resource)));
  return targets.filter((t) => !inRepo(desired, t) && !planned.has(resourceKey(t)));
}

/**
 * The repository resource a target that names nothing probably meant: the same name in another
 * case (resource names are lower case), the resource whose accountName it is (what a person on
 * call reads in AD), or the same name under another kind; that kind first. Undefined if none.
 */
export function likelyTarget(desired: DesiredState, ref: ResourceRef): ResourceRef | undefined {
  const wanted = ref.name.toLowerCase().replace(/\$$/, "");
  const all: { ref: ResourceRef; accountName?: string }[] = [
    ...[...desired.groups.values()].map((g) => ({
      ref: { kind: g.kind, name: g.name },
      accountName: g.spec.accountName,
    })),
    ...[...desired.gmsas.values()].map((g) => ({
      ref: { kind: g.kind, name: g.name },
      accountName: g.spec.accountName,
    })),
    ...[...desired.smsas.values()].map((g) => ({
      ref: { kind: g.kind, name: g.name },
      accountName: g.spec.accountName,
    })),
    ...[...desired.bindings.values()].map((b) => ({ ref: { kind: b.kind, name: b.name } })),
    ...[...desired.kdsRootKeys.values()].map((k) => ({ ref: { kind: k.kind, name: k.name } })),
  ];
  const matches = all.filter((r) => r.ref.name === wanted || r.accountName?.toLowerCase() === wanted);
  return (matches.find((r) => r.ref.kind === ref.kind) ?? matches[0])?.ref;
}

/** The plan limited to `keys`; revision-wide notes stay. */
export function limitPlan(plan: Plan, keys: ReadonlySet<string>): Plan {
  return { ...plan, resources: plan.resources.filter((r) => keys.has(resourceKey(r.resource))) };
}

/** The desired state with only the host bindings in `keys` (AD resources are limited on the plan instead). */
export function limitBindings(desired: DesiredState, keys: ReadonlySet<string>): DesiredState {
  const bindings = new Map([...desired.bindings].filter(([name]) => keys.has(`HostBinding/${name}`)));
  return { ...desired, bindings };
}
