/**
 * apply: the only writer. Executes a plan's actions in order through a narrow directory port,
 * continuing past a failed resource to those that do not depend on it.
 */
import type { DirectoryWriter, Modification, OwnershipKey } from "../directory/index.ts";
import { encodeGroupMsaMembership } from "../directory/index.ts";
import type { Action, Outcome, Plan, PrincipalTarget, ResourceRef } from "./model.ts";
import { resourceTag } from "./ownership.ts";

/** The result of one action. */
export interface ActionResult {
  readonly action: Action;
  readonly status: "applied" | "failed" | "skipped";
  /** For failures: the typed outcome, decided by the writer's error type. */
  readonly outcome?: Outcome;
  readonly message?: string;
}

/** Everything apply did. */
export interface ApplyResult {
  readonly results: readonly ActionResult[];
  /** True when the signal stopped apply between two actions. */
  readonly aborted: boolean;
}

/** Options: clock, ownership key, cancellation, and a hook called after each action (metrics, logs). */
export interface ApplyOptions {
  readonly now: Date;
  /** Marks what apply creates (the marker is bound to the new object's objectGUID). */
  readonly owner: OwnershipKey;
  readonly signal?: AbortSignal;
  readonly onResult?: (result: ActionResult) => void;
}

/** Classifies an error thrown by the writer; the directory's errors carry `outcome`. */
function outcomeOf(error: unknown): Outcome {
  if (typeof error === "object" && error !== null && "outcome" in error) {
    const o = error.outcome;
    if (o === "stalled" || o === "waiting" || o === "transient") return o;
  }
  return "transient";
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const key = (r: ResourceRef): string => `${r.kind}/${r.name}`;

/**
 * Executes the plan. Observe-only resources are never written. A failed action marks its
 * resource failed: its later actions, and actions of resources that name it as a principal
 * or member, are skipped (reported as such); everything else goes on. The signal is checked
 * between actions, so the action in flight always completes.
 */
export async function applyPlan(plan: Plan, writer: DirectoryWriter, options: ApplyOptions): Promise<ApplyResult> {
  const { owner } = options;
  const results: ActionResult[] = [];
  const failed = new Set<string>();
  /** Repo groups created in this run: name → DN and SID. */
  const created = new Map<string, { dn: string; sid: string }>();
  let aborted = false;

  const record = (r: ActionResult): void => {
    results.push(r);
    options.onResult?.(r);
  };

  const resolve = (targets: readonly PrincipalTarget[]): { dn: string | undefined; sid: string }[] =>
    targets.map((t) => {
      if (t.type === "object") return { dn: t.dn, sid: t.sid };
      if (t.type === "sid") return { dn: undefined, sid: t.sid };
      const c = created.get(t.name);
      if (!c) throw new DependencyError(t.name);
      return c;
    });

  for (const resourcePlan of plan.resources) {
    if (resourcePlan.observeOnly) continue;
    for (const action of resourcePlan.actions) {
      if (options.signal?.aborted) {
        aborted = true;
        break;
      }
      const k = key(action.resource);
      const deps = dependencies(action);
      const blockedBy = failed.has(k) ? k : deps.find((d) => failed.has(`ADGroup/${d}`));
      if (blockedBy !== undefined) {
        record({ action, status: "skipped", message: `skipped: ${blockedBy} failed earlier in this run` });
        failed.add(k);
        continue;
      }
      try {
        await execute(action, writer, { owner, now: options.now, resolve, created });
        record({ action, status: "applied" });
      } catch (error) {
        failed.add(k);
        if (error instanceof DependencyError) {
          record({ action, status: "skipped", message: error.message });
        } else {
          record({ action, status: "failed", outcome: outcomeOf(error), message: messageOf(error) });
        }
      }
    }
    if (aborted) break;
  }
  return { results, aborted };
}

class DependencyError extends Error {
  constructor(group: string) {
    super(`skipped: ADGroup/${group} does not exist yet`);
  }
}

/** Repo groups an action needs to exist. */
function dependencies(action: Action): string[] {
  const targets: readonly PrincipalTarget[] =
    action.type === "create-gmsa"
      ? action.principals
      : action.type === "add-members"
        ? action.members
        : action.type === "update-gmsa"
          ? (action.principals ?? [])
          : [];
  return targets.flatMap((t) => (t.type === "repo-group" ? [t.name] : []));
}

interface ExecContext {
  readonly owner: OwnershipKey;
  readonly now: Date;
  readonly resolve: (targets: readonly PrincipalTarget[]) => { dn: string | undefined; sid: string }[];
  readonly created: Map<string, { dn: string; sid: string }>;
}

/**
 * Writes the ownership marker on an object just added. The marker's MAC covers the objectGUID,
 * which the DC assigns at the add, so marking is a second write: should it fail, the object stays
 * unmarked and the next plan reports it as a conflict (fail safe: never treated as ours unproven).
 */
async function mark(dn: string, writer: DirectoryWriter, ctx: ExecContext): Promise<void> {
  const marker = ctx.owner.markerFor(await writer.readGuid(dn));
  await writer.modify(dn, [{ operation: "replace", attribute: "adminDescription", values: [marker] }]);
}

async function execute(action: Action, writer: DirectoryWriter, ctx: ExecContext): Promise<void> {
  switch (action.type) {
    case "create-kds-root-key": {
      // The start time diff chose (effectiveTime, now, or backdated for effectiveImmediately).
      const dn = await writer.createKdsRootKey({
        effectiveImmediately: false,
        now: ctx.now,
        effectiveTime: new Date(action.useStartTime),
      });
      // The tag finds the key again next cycle; the marker makes it deletable (deletionPolicy: Delete).
      await writer.modify(dn, [{ operation: "replace", attribute: "adminDisplayName", values: [action.tag] }]);
      if (action.mark) await mark(dn, writer, ctx);
      return;
    }
    case "update-kds-root-key": {
      const changes: Modification[] = Object.entries(action.set).map(([attribute, value]) => ({
        operation: "replace",
        attribute,
        values: value === null ? [] : [value],
      }));
      await writer.modify(action.dn, changes);
      return;
    }
    case "create-group": {
      const attributes: Record<string, string> = {
        objectClass: "group",
        sAMAccountName: action.accountName,
        groupType: String(action.groupType),
      };
      if (action.description !== undefined) attributes["description"] = action.description;
      await writer.add(action.dn, attributes);
      await mark(action.dn, writer, ctx);
      ctx.created.set(action.resource.name, { dn: action.dn, sid: await writer.readSid(action.dn) });
      return;
    }
    case "update-group": {
      for (const step of action.groupTypeSteps)
        await writer.modify(action.dn, [{ operation: "replace", attribute: "groupType", values: [String(step)] }]);
      const changes: Modification[] = [];
      if (action.description !== undefined)
        changes.push(
          action.description === null
            ? { operation: "replace", attribute: "description", values: [] }
            : { operation: "replace", attribute: "description", values: [action.description] },
        );
      if (action.adopt && action.marker !== undefined)
        changes.push({ operation: "replace", attribute: "adminDescription", values: [action.marker] });
      if (changes.length > 0) await writer.modify(action.dn, changes);
      return;
    }
    case "add-members":
      await writer.addMembers(
        action.dn,
        ctx.resolve(action.members).map((m) => {
          // Diff names group members by DN; a reader known only by SID never becomes a member.
          if (m.dn === undefined) throw new Error(`member ${m.sid} has no DN`);
          return m.dn;
        }),
      );
      return;
    case "remove-members":
      await writer.removeMembers(action.dn, action.memberDns);
      return;
    case "create-gmsa": {
      const principals = ctx.resolve(action.principals);
      const attributes: Record<string, string | Buffer | string[]> = {
        objectClass: "msDS-GroupManagedServiceAccount",
        sAMAccountName: `${action.accountName}$`,
        // 0x1000 WORKSTATION_TRUST_ACCOUNT, as New-ADServiceAccount leaves a gMSA (docs/active-directory.md).
        userAccountControl: String(action.userAccountControl),
        "msDS-ManagedPasswordInterval": String(action.passwordIntervalDays),
        "msDS-SupportedEncryptionTypes": String(action.encryptionTypes),
        "msDS-GroupMSAMembership": encodeGroupMsaMembership(principals.map((p) => p.sid)),
        // Ties the object to its resource, so a new accountName renames it (docs/decisions/renames.md).
        adminDisplayName: resourceTag(action.resource),
      };
      // Left out for an outbound-only account, as New-ADServiceAccount -RestrictToOutboundAuthenticationOnly does.
      if (action.dnsHostName !== undefined) attributes["dNSHostName"] = action.dnsHostName;
      if (action.servicePrincipalNames.length > 0)
        attributes["servicePrincipalName"] = [...action.servicePrincipalNames];
      if (action.description !== undefined && action.description !== "") attributes["description"] = action.description;
      if (action.displayName !== undefined && action.displayName !== "") attributes["displayName"] = action.displayName;
      await writer.add(action.dn, attributes);
      await mark(action.dn, writer, ctx);
      return;
    }
    case "update-gmsa": {
      const changes: Modification[] = [];
      for (const [attribute, value] of Object.entries(action.set))
        changes.push(
          // Samba 4.22 answers a replace of dNSHostName with no values with LDAP 1 ("ldb out of
          // memory", samldb.c); deleting the attribute (present, or diff would not clear it) works.
          value === null && attribute === "dNSHostName"
            ? { operation: "delete", attribute, values: [] }
            : { operation: "replace", attribute, values: value === null ? [] : [value] },
        );
      // Multi-valued attributes change by value, never by replace (docs/active-directory.md).
      if (action.addSpns.length > 0)
        changes.push({ operation: "add", attribute: "servicePrincipalName", values: action.addSpns });
      if (action.removeSpns.length > 0)
        changes.push({ operation: "delete", attribute: "servicePrincipalName", values: action.removeSpns });
      if (action.principals) {
        // msDS-GroupMSAMembership is single-valued: the whole descriptor is rewritten.
        const sids = ctx.resolve(action.principals).map((p) => p.sid);
        changes.push({
          operation: "replace",
          attribute: "msDS-GroupMSAMembership",
          values: [encodeGroupMsaMembership(sids)],
        });
      }
      if (changes.length > 0) await writer.modify(action.dn, changes);
      return;
    }
    case "rename":
      await writer.modify(action.dn, [
        { operation: "replace", attribute: "sAMAccountName", values: [action.samAccountName] },
      ]);
      if (action.newDn !== action.dn) await writer.move(action.dn, action.newDn);
      return;
    case "move":
      await writer.move(action.dn, action.newDn);
      return;
    case "delete":
      await writer.delete(action.dn);
      return;
  }
}
