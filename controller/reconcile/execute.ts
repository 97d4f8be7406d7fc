/**
 * The writes of one action: the LDAP operations that carry out a plan's create, update, member,
 * rename, move and delete actions, with the ownership marker written after each add. apply.ts
 * decides the order and what to skip; this file only writes.
 */
import type { DirectoryWriter, Modification, OwnershipKey } from "../directory/index.ts";
import { encodeAllowedToActOnBehalfOfOtherIdentity, encodeGroupMsaMembership } from "../directory/index.ts";
import type { Action, PrincipalTarget } from "./model.ts";
import { resourceTag } from "./ownership.ts";

/** What an action's writes need: the owner's key, the clock, principal resolution, groups created in this run. */
export interface ExecContext {
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

/** managedBy holds a DN; diff resolves it to an object or a repo group, never to a bare SID. */
function managerDn(target: PrincipalTarget, ctx: ExecContext): string {
  const [resolved] = ctx.resolve([target]);
  if (resolved?.dn === undefined) throw new Error(`managedBy ${target.label} has no DN`);
  return resolved.dn;
}

export async function execute(action: Action, writer: DirectoryWriter, ctx: ExecContext): Promise<void> {
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
        // Ties the object to its resource, so a new accountName renames it (docs/decisions/renames.md).
        adminDisplayName: resourceTag(action.resource),
      };
      if (action.description !== undefined) attributes["description"] = action.description;
      Object.assign(attributes, action.text);
      if (action.managedBy) attributes["managedBy"] = managerDn(action.managedBy, ctx);
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
      for (const [attribute, value] of Object.entries(action.text ?? {}))
        changes.push({ operation: "replace", attribute, values: value === null ? [] : [value] });
      if (action.managedBy)
        changes.push({ operation: "replace", attribute: "managedBy", values: [managerDn(action.managedBy, ctx)] });
      if (action.adopt && action.marker !== undefined)
        changes.push(
          { operation: "replace", attribute: "adminDescription", values: [action.marker] },
          { operation: "replace", attribute: "adminDisplayName", values: [resourceTag(action.resource)] },
        );
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
        // An empty list (allowDefaultEncryptionTypes) leaves the attribute unset.
        ...(action.encryptionTypes !== 0 ? { "msDS-SupportedEncryptionTypes": String(action.encryptionTypes) } : {}),
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
      if (action.allowedToDelegateTo?.length) attributes["msDS-AllowedToDelegateTo"] = [...action.allowedToDelegateTo];
      if (action.delegators?.length)
        attributes["msDS-AllowedToActOnBehalfOfOtherIdentity"] = encodeAllowedToActOnBehalfOfOtherIdentity(
          ctx.resolve(action.delegators).map((p) => p.sid),
        );
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
      if (action.addDelegateTo?.length)
        changes.push({ operation: "add", attribute: "msDS-AllowedToDelegateTo", values: action.addDelegateTo });
      if (action.removeDelegateTo?.length)
        changes.push({ operation: "delete", attribute: "msDS-AllowedToDelegateTo", values: action.removeDelegateTo });

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
      if (action.delegators) {
        // A modify of its own, after the rest: Samba (4.22) refuses any change to this systemOnly
        // attribute after the add (constraint violation), and the other fixes must not fail with it.
        // Single-valued; nobody allowed is no descriptor, as the AD module leaves it.
        const sids = ctx.resolve(action.delegators).map((p) => p.sid);
        const values = sids.length > 0 ? [encodeAllowedToActOnBehalfOfOtherIdentity(sids)] : [];
        await writer.modify(action.dn, [
          { operation: "replace", attribute: "msDS-AllowedToActOnBehalfOfOtherIdentity", values },
        ]);
      }
      return;
    }
    case "create-smsa": {
      const attributes: Record<string, string | string[]> = {
        objectClass: "msDS-ManagedServiceAccount",
        sAMAccountName: `${action.accountName}$`,
        // 0x1000 WORKSTATION_TRUST_ACCOUNT, as New-ADServiceAccount -RestrictToSingleComputer leaves it.
        userAccountControl: String(action.userAccountControl),
        // An empty list (allowDefaultEncryptionTypes) leaves the attribute unset.
        ...(action.encryptionTypes !== 0 ? { "msDS-SupportedEncryptionTypes": String(action.encryptionTypes) } : {}),
        // Ties the object to its resource, so a new accountName renames it (docs/decisions/renames.md).
        adminDisplayName: resourceTag(action.resource),
      };
      if (action.servicePrincipalNames.length > 0)
        attributes["servicePrincipalName"] = [...action.servicePrincipalNames];
      if (action.description !== undefined && action.description !== "") attributes["description"] = action.description;
      if (action.displayName !== undefined && action.displayName !== "") attributes["displayName"] = action.displayName;
      await writer.add(action.dn, attributes);
      await mark(action.dn, writer, ctx);
      return;
    }
    case "link-host-account":
      // The computer's forward link; AD keeps the account's msDS-HostServiceAccountBL. By value,
      // never replace: the computer may host other sMSAs (docs/active-directory.md).
      await writer.modify(action.dn, [
        { operation: action.operation, attribute: "msDS-HostServiceAccount", values: [action.accountDn] },
      ]);
      return;
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
