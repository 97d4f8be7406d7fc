/**
 * diff for KdsRootKey resources, the prune candidates among root keys, and the blocker a gMSA
 * gets while no root key is effective (docs/decisions/kds-effective-time.md). Which key a
 * resource means: the one its keyId names; else the one carrying its resource tag (made for
 * it); else, for a resource with neither keyId nor effectiveTime, any key of the forest.
 */
import type { ObservedKdsRootKey } from "../../directory/index.ts";
import { KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS, kdsRootKeyContainerDn, kdsState } from "../../directory/index.ts";
import type { KdsRootKeyResource } from "../../manifests/index.ts";
import type { Action, AttributeChange, Blocker, ResourceRef } from "../model.ts";
import { resourceTag } from "../ownership.ts";
import type { Context } from "./references.ts";
import { resourceDiff } from "./resource-diff.ts";
import type { ResourceDiff } from "./resource-diff.ts";

/** Shown in a plan instead of the marker itself (it is a MAC: noise to a reader). */
const MARKER_LABEL = "(ownership marker: deletable with --prune once the resource leaves Git)";

/** One entry per KdsRootKey resource that is not suspended, by name. */
export function diffKdsRootKeys(ctx: Context): ResourceDiff[] {
  return [...ctx.desired.kdsRootKeys.values()]
    .filter((r) => !r.spec.suspend)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((r) => diffKds(r, ctx));
}

/** The key a resource means, if AD has it (see the file comment). */
function keyOf(res: KdsRootKeyResource, keys: readonly ObservedKdsRootKey[]): ObservedKdsRootKey | undefined {
  const id = res.spec.keyId?.toLowerCase();
  if (id !== undefined) return keys.find((k) => k.id.toLowerCase() === id);
  const tag = resourceTag({ kind: "KdsRootKey", name: res.name });
  return keys.find((k) => k.adminDisplayName === tag);
}

/**
 * msKds-UseStartTime of the key this resource would create now, or undefined when it creates
 * none: it names a key by id, already has its own key, or (asking for any key) the forest has one.
 */
export function plannedKeyStart(
  res: KdsRootKeyResource,
  keys: readonly ObservedKdsRootKey[],
  now: Date,
): Date | undefined {
  if (res.spec.suspend || res.spec.keyId !== undefined || keyOf(res, keys)) return undefined;
  if (res.spec.effectiveTime !== undefined) return new Date(res.spec.effectiveTime);
  if (keys.length > 0) return undefined;
  // Immediate keys are backdated by one key cycle plus skew; otherwise the key starts now.
  return res.spec.effectiveImmediately ? new Date(now.getTime() - KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS) : now;
}

function diffKds(res: KdsRootKeyResource, ctx: Context): ResourceDiff {
  const resource: ResourceRef = { kind: "KdsRootKey", name: res.name };
  const container = kdsRootKeyContainerDn(ctx.observed.configDn);
  const { mode, keyId, deletionPolicy } = res.spec;
  const keys = ctx.observed.kdsRootKeys;
  const tag = resourceTag(resource);
  const key = keyOf(res, keys);
  const start = plannedKeyStart(res, keys, ctx.options.now);
  if (start) {
    const changes: AttributeChange[] = [
      {
        attribute: "msKds-UseStartTime",
        from: undefined,
        to: res.spec.effectiveImmediately ? `${start.toISOString()} (effective immediately)` : start.toISOString(),
      },
      { attribute: "adminDisplayName", from: undefined, to: tag },
    ];
    if (deletionPolicy === "Delete") changes.push({ attribute: "adminDescription", from: undefined, to: MARKER_LABEL });
    const fix: Action = {
      type: "create-kds-root-key",
      resource,
      useStartTime: start.toISOString(),
      tag,
      mark: deletionPolicy === "Delete",
      changes,
    };
    // A start time older than one key cycle skips the replication wait (docs/decisions/kds-effective-time.md).
    const early =
      res.spec.effectiveTime !== undefined &&
      start.getTime() <= ctx.options.now.getTime() - KDS_EFFECTIVE_IMMEDIATELY_BACKDATE_MS;
    const notes = early
      ? [
          "effectiveTime is more than 10 h 5 min ago: DCs use the key at once, before it has replicated to every DC (lab use, as effectiveImmediately)",
        ]
      : [];
    return resourceDiff(resource, container, mode, { drift: new Set(["missing"]), changes, fixes: [fix], notes });
  }
  if (keyId !== undefined && !key)
    return resourceDiff(resource, container, mode, {
      drift: new Set(["missing"]),
      blocker: {
        outcome: "stalled",
        reason: "KdsRootKeyNotFound",
        message: `no KDS root key has id ${keyId}; a key is never created under a chosen id (it would derive other passwords): name an existing key, or remove keyId to ask for a new one`,
      },
    });
  // Asking for any key and satisfied by the forest's keys: nothing of its own to manage.
  if (!key) return resourceDiff(resource, container, mode, { blocker: notEffective(ctx.kds.effectiveAt, ctx) });
  return diffExisting(res, key, ctx);
}

/** An existing key: its start time is never rewritten; its marker follows deletionPolicy. */
function diffExisting(res: KdsRootKeyResource, key: ObservedKdsRootKey, ctx: Context): ResourceDiff {
  const resource: ResourceRef = { kind: "KdsRootKey", name: res.name };
  const { mode, effectiveTime, deletionPolicy } = res.spec;
  const owner = ctx.options.owner.check(key.adminDescription, key.guid);
  if (owner.status === "foreign")
    return resourceDiff(resource, key.dn, mode, {
      drift: new Set(["conflict"]),
      blocker: {
        outcome: "stalled",
        reason: "OwnedByOtherController",
        message: `${key.dn} is marked by the gmsa-gitops controller with owner id ${owner.ownerId}; it is never touched here`,
      },
    });
  if (effectiveTime !== undefined && new Date(effectiveTime).getTime() !== key.useStartTime.getTime())
    return resourceDiff(resource, key.dn, mode, {
      drift: new Set(["attribute"]),
      changes: [
        {
          attribute: "msKds-UseStartTime",
          from: key.useStartTime.toISOString(),
          to: new Date(effectiveTime).toISOString(),
        },
      ],
      blocker: {
        outcome: "stalled",
        reason: "ImmutableFieldChanged",
        message: `key ${key.id} starts at ${key.useStartTime.toISOString()}; a root key's start time is never rewritten (passwords derive from it): give the new time to a new KdsRootKey resource`,
      },
    });
  const ours = owner.status === "ours";
  const tag = resourceTag(resource);
  const set: Record<string, string | null> = {};
  const changes: AttributeChange[] = [];
  if (deletionPolicy === "Delete" && !ours) {
    if (key.guid === undefined)
      return resourceDiff(resource, key.dn, mode, {
        blocker: {
          outcome: "stalled",
          reason: "NotOwned",
          message: `the objectGUID of ${key.dn} cannot be read, so no ownership marker can be bound to it`,
        },
      });
    set["adminDescription"] = ctx.options.owner.markerFor(key.guid);
    changes.push({ attribute: "adminDescription", from: key.adminDescription, to: MARKER_LABEL });
    if (key.adminDisplayName !== tag) {
      set["adminDisplayName"] = tag;
      changes.push({ attribute: "adminDisplayName", from: key.adminDisplayName, to: tag });
    }
  } else if (deletionPolicy === "Retain" && ours) {
    // Retain takes the key out of prune's reach: the marker is what makes it deletable.
    set["adminDescription"] = null;
    changes.push({ attribute: "adminDescription", from: MARKER_LABEL, to: undefined });
  }
  if (changes.length === 0) {
    const waiting = notEffective(keyEffectiveAt(key), ctx);
    // A resource asking for any key asks for an effective one; a named or scheduled key is as
    // declared once it exists, and its start time is only news.
    if (res.spec.keyId === undefined && effectiveTime === undefined)
      return resourceDiff(resource, key.dn, mode, { blocker: waiting });
    return resourceDiff(resource, key.dn, mode, { notes: waiting ? [waiting.message] : [] });
  }
  return resourceDiff(resource, key.dn, mode, {
    drift: new Set(["attribute"]),
    changes,
    fixes: [{ type: "update-kds-root-key", resource, dn: key.dn, set, changes }],
  });
}

const keyEffectiveAt = (key: ObservedKdsRootKey): Date | undefined => kdsState([key], new Date(0)).effectiveAt;

function notEffective(at: Date | undefined, ctx: Context): Blocker | undefined {
  if (!at || at.getTime() <= ctx.options.now.getTime()) return undefined;
  return {
    outcome: "waiting",
    reason: "KdsRootKeyNotEffective",
    message: `the KDS root key becomes effective at ${at.toISOString()}`,
    until: at,
  };
}

/**
 * Root keys carrying this controller's marker (written only for deletionPolicy: Delete) whose
 * resource left the repository. Deleted only with --prune, within the budget, and never the
 * last effective key: gMSAs could no longer get passwords.
 */
export function kdsPruneCandidates(ctx: Context): ResourceDiff[] {
  const keys = ctx.observed.kdsRootKeys;
  const wanted = new Set<ObservedKdsRootKey>();
  for (const res of ctx.desired.kdsRootKeys.values()) {
    const key = keyOf(res, keys);
    if (key) wanted.add(key);
  }
  const gone = keys.filter(
    (k) => !wanted.has(k) && ctx.options.owner.check(k.adminDescription, k.guid).status === "ours",
  );
  if (gone.length === 0) return [];
  const remaining = keys.filter((k) => !gone.includes(k));
  const lastEffective = !kdsState(remaining, ctx.options.now).effective && ctx.kds.effective;
  return gone.map((k) => {
    const name = k.adminDisplayName?.startsWith("gmsa-gitops:KdsRootKey/")
      ? k.adminDisplayName.slice("gmsa-gitops:KdsRootKey/".length)
      : k.id;
    const resource: ResourceRef = { kind: "KdsRootKey", name };
    const changes = [{ attribute: "distinguishedName", from: k.dn, to: undefined }];
    if (lastEffective)
      return resourceDiff(resource, k.dn, undefined, {
        drift: new Set(["unexpected"]),
        blocker: {
          outcome: "stalled",
          reason: "PruneRefused",
          message: `key ${k.id} left the repository, but deleting it would leave the forest without an effective KDS root key; it is kept`,
        },
      });
    return resourceDiff(resource, k.dn, undefined, {
      drift: new Set(["unexpected"]),
      changes,
      fixes: [{ type: "delete", resource, dn: k.dn, replacement: false, changes }],
      prunable: true,
    });
  });
}

/** Why a gMSA cannot be created yet: waiting for the key's effective time, or stalled without any key. */
export function kdsBlocker(ctx: Context): Blocker {
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
