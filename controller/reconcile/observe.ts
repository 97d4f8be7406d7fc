/**
 * observe: reads what the desired state needs from AD in one pass, one paged search per kind
 * (gMSAs, groups, computers, KDS keys), so a plan of 5,000 accounts costs a handful of
 * searches, not 5,000.
 */
import type { DesiredState } from "../manifests/index.ts";
import type {
  ObservedComputer,
  ObservedGmsa,
  ObservedGroup,
  ObservedKdsRootKey,
  ResolvedPrincipal,
} from "../directory/index.ts";
import { allowedDelegators, allowedReaders } from "../directory/index.ts";
import type { ObservedDirectory } from "./model.ts";

/** What observe needs from the directory (the LDAP client implements it). */
export interface DirectoryReader {
  readGmsas(baseDn: string): Promise<ObservedGmsa[]>;
  readGroups(baseDn: string, samAccountNames: readonly string[]): Promise<ObservedGroup[]>;
  readComputers(baseDn: string, names: readonly string[]): Promise<ObservedComputer[]>;
  readKdsRootKeys(configDn: string): Promise<ObservedKdsRootKey[]>;
  /** Names for SIDs (sAMAccountName), for SIDs seen in descriptors that nothing else named. */
  resolveSids(baseDn: string, sids: readonly string[]): Promise<Map<string, string>>;
  /** Principals of any kind by sAMAccountName, SID or DN, in one search (not one per name). */
  readPrincipals(baseDn: string, names: PrincipalNames): Promise<ResolvedPrincipal[]>;
}

/** Principals the repository names by user name (sAMAccountName or userPrincipalName), SID or DN. */
export interface PrincipalNames {
  readonly samAccountNames: readonly string[];
  readonly userPrincipalNames: readonly string[];
  readonly sids: readonly string[];
  readonly dns: readonly string[];
}

/** A reference to a principal, whichever list it sits in. */
interface AnyRef {
  readonly externalGroup?: string;
  readonly computer?: string;
  readonly user?: string;
  readonly sid?: string;
  readonly dn?: string;
}

/** Names the desired state refers to, by kind of AD object. */
export function referencedNames(desired: DesiredState): {
  groups: string[];
  computers: string[];
  principals: PrincipalNames;
} {
  const groups = new Set<string>();
  const computers = new Set<string>();
  const users = new Set<string>();
  const upns = new Set<string>();
  const sids = new Set<string>();
  const dns = new Set<string>();
  const visit = (ref: AnyRef): void => {
    if (ref.externalGroup !== undefined) groups.add(ref.externalGroup);
    if (ref.computer !== undefined) computers.add(ref.computer);
    // A sAMAccountName never holds '@' (the schema says so): the '@' makes it a UPN.
    if (ref.user !== undefined) (ref.user.includes("@") ? upns : users).add(ref.user);
    if (ref.sid !== undefined) sids.add(ref.sid);
    if (ref.dn !== undefined) dns.add(ref.dn);
  };
  for (const g of desired.groups.values()) {
    groups.add(g.spec.accountName);
    // Members to remove are read too: only an object read can be found among the members.
    [...g.spec.members, ...g.spec.removeMembers, ...(g.spec.managedBy ? [g.spec.managedBy] : [])].forEach(visit);
  }
  for (const g of desired.gmsas.values())
    [
      ...g.spec.principalsAllowedToRetrieveManagedPassword,
      ...g.spec.removePrincipals,
      ...(g.spec.principalsAllowedToDelegateToAccount ?? []),
    ].forEach(visit);
  for (const b of desired.bindings.values()) computers.add(b.spec.host);
  // An sMSA's computer: it must exist, and its msDS-HostServiceAccount is the link diff keeps.
  for (const s of desired.smsas.values()) computers.add(s.spec.computer);
  const principals = {
    samAccountNames: [...users].sort(),
    userPrincipalNames: [...upns].sort(),
    sids: [...sids].sort(),
    dns: [...dns].sort(),
  };
  return { groups: [...groups].sort(), computers: [...computers].sort(), principals };
}

/** Reads the observed directory for a desired state. */
export async function observeDirectory(
  desired: DesiredState,
  reader: DirectoryReader,
  scope: { baseDn: string; configDn: string },
): Promise<ObservedDirectory> {
  const names = referencedNames(desired);
  const { samAccountNames, userPrincipalNames, sids, dns } = names.principals;
  const anyPrincipal = samAccountNames.length + userPrincipalNames.length + sids.length + dns.length > 0;
  const [gmsas, groups, computers, kdsRootKeys, principals] = await Promise.all([
    reader.readGmsas(scope.baseDn),
    reader.readGroups(scope.baseDn, names.groups),
    reader.readComputers(scope.baseDn, names.computers),
    reader.readKdsRootKeys(scope.configDn),
    anyPrincipal ? reader.readPrincipals(scope.baseDn, names.principals) : Promise.resolve([]),
  ]);
  const known = new Set<string>([...groups, ...computers, ...gmsas].map((o) => o.sid));
  const unknown = new Set<string>();
  for (const g of gmsas) {
    const sids = [
      ...(g.groupMsaMembership ? allowedReaders(g.groupMsaMembership) : []),
      ...(g.allowedToActOnBehalf ? allowedDelegators(g.allowedToActOnBehalf) : []),
    ];
    for (const sid of sids) if (!known.has(sid)) unknown.add(sid);
  }
  const sidNames = unknown.size > 0 ? await reader.resolveSids(scope.baseDn, [...unknown]) : new Map<string, string>();
  return {
    baseDn: scope.baseDn,
    configDn: scope.configDn,
    gmsas,
    groups,
    computers,
    kdsRootKeys,
    principals,
    sidNames,
  };
}
