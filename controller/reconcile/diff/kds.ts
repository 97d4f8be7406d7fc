/** diff for the KdsRootKey resource, and the blocker a gMSA gets while no root key is effective. */
import { kdsRootKeyContainerDn } from "../../directory/index.ts";
import type { Blocker, ResourceRef } from "../model.ts";
import type { Context } from "./references.ts";
import { resourceDiff } from "./resource-diff.ts";
import type { ResourceDiff } from "./resource-diff.ts";

/** The KDS root key: created when the forest has none; waiting while the existing one is not yet effective. */
export function diffKds(ctx: Context): ResourceDiff | undefined {
  const res = ctx.desired.kdsRootKey;
  if (!res || res.spec.suspend) return undefined;
  const resource: ResourceRef = { kind: "KdsRootKey", name: res.name };
  const dn = kdsRootKeyContainerDn(ctx.observed.configDn);
  const mode = res.spec.mode;
  if (ctx.observed.kdsRootKeys.length === 0) {
    return resourceDiff(resource, dn, mode, {
      drift: new Set(["missing"]),
      changes: [
        {
          attribute: "msKds-UseStartTime",
          from: undefined,
          to: res.spec.effectiveImmediately ? "now - 10h05m (effective immediately)" : "now (effective in 10h05m)",
        },
      ],
      fixes: [{ type: "create-kds-root-key", resource, effectiveImmediately: res.spec.effectiveImmediately }],
    });
  }
  const { effective, effectiveAt } = ctx.kds;
  return resourceDiff(resource, dn, mode, {
    blocker:
      !effective && effectiveAt
        ? {
            outcome: "waiting",
            reason: "KdsRootKeyNotEffective",
            message: `the KDS root key becomes effective at ${effectiveAt.toISOString()}`,
            until: effectiveAt,
          }
        : undefined,
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
