/**
 * diff: desired state (Git) × observed directory (AD) → per-resource drift with the fixes that
 * would remove it. Pure: no I/O, the clock is a parameter. Policy (modes, prune, budget) is
 * applied afterwards by `plan`. One file per kind (kds.ts, group.ts, gmsa.ts), prune candidates
 * in prune.ts, reference resolution in references.ts, the entry type and its builder in
 * resource-diff.ts; the AD encodings they use (DNs, group types, encryption types, KDS key
 * times) are the directory module's.
 */
import type { DesiredState } from "../../manifests/index.ts";
import type { ObservedDirectory } from "../model.ts";
import { diffGmsa } from "./gmsa.ts";
import { diffGroup } from "./group.ts";
import { diffSmsa } from "./smsa.ts";
import { diffKdsRootKeys, kdsPruneCandidates } from "./kds.ts";
import { pruneCandidates } from "./prune.ts";
import { buildContext } from "./references.ts";
import type { Context, DiffOptions } from "./references.ts";
import type { ResourceDiff } from "./resource-diff.ts";
import type { DiffMemo } from "./memo.ts";

export { DiffMemo } from "./memo.ts";
export type { DiffOptions } from "./references.ts";
export type { ResourceDiff } from "./resource-diff.ts";

/**
 * Compares the desired state with the observed directory. Returns one entry per repository
 * resource (except HostBindings, which the host side diffs) and one per marked object that
 * left the repository, in dependency order: KDS keys, groups (nested ones first), gMSAs, then
 * prune candidates (gMSAs before the groups they may name, root keys last). With `memo`, a
 * group, gMSA or sMSA whose spec and every input it reads are unchanged since the memo's last
 * plan gets that plan's entry instead of being diffed again (memo.ts).
 */
export function diffDirectory(
  desired: DesiredState,
  observed: ObservedDirectory,
  options: DiffOptions,
  memo?: DiffMemo,
): ResourceDiff[] {
  const ctx = buildContext(desired, observed, options);
  const each = <S>(key: string, spec: S, run: (ctx: Context) => ResourceDiff): ResourceDiff =>
    memo ? memo.diff(key, spec, ctx, run) : run(ctx);
  memo?.begin();
  const out: ResourceDiff[] = [];
  out.push(...diffKdsRootKeys(ctx));
  for (const name of groupOrder(desired, [...ctx.renamedGroups.keys()])) {
    const res = desired.groups.get(name);
    if (res && !res.spec.suspend)
      out.push(each(`ADGroup/${name}`, res.spec, (c) => diffGroup(name, res.spec, res.spec.mode, c)));
  }
  for (const res of [...desired.gmsas.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!res.spec.suspend)
      out.push(
        each(`GroupManagedServiceAccount/${res.name}`, res.spec, (c) => diffGmsa(res.name, res.spec, res.spec.mode, c)),
      );
  }
  for (const res of [...desired.smsas.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!res.spec.suspend)
      out.push(
        each(`ManagedServiceAccount/${res.name}`, res.spec, (c) => diffSmsa(res.name, res.spec, res.spec.mode, c)),
      );
  }
  memo?.end();
  // Root keys last: a gMSA pruned in the same run may still need one until it is gone.
  out.push(...pruneCandidates(ctx), ...kdsPruneCandidates(ctx));
  return out;
}

/**
 * Repo groups ordered so that nested groups, and a group that manages another, come before it;
 * `first` (the groups renamed in this plan) as early as that allows, so that every other group's
 * member and managedBy values name them by their new DN.
 */
function groupOrder(desired: DesiredState, first: readonly string[]): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string): void => {
    if (state.get(name) !== undefined) return; // cycles are rejected by validate; never loop here
    state.set(name, "visiting");
    const res = desired.groups.get(name);
    const refs = [...(res?.spec.members ?? []), ...(res?.spec.managedBy ? [res.spec.managedBy] : [])];
    for (const m of refs) if (m.group !== undefined && desired.groups.has(m.group)) visit(m.group);
    state.set(name, "done");
    order.push(name);
  };
  for (const name of [...[...first].sort(), ...[...desired.groups.keys()].sort()]) visit(name);
  return order;
}
