/**
 * observe: reads what the desired state needs from AD in one pass, one paged search per kind
 * (gMSAs, groups, computers, KDS keys), so a plan of 5,000 accounts costs a handful of
 * searches, not 5,000.
 */
import type { DesiredState } from "../manifests/index.ts";
import type { ObservedComputer, ObservedGmsa, ObservedGroup, ObservedKdsRootKey } from "../directory/index.ts";
import { allowedReaders } from "../directory/index.ts";
import type { ObservedDirectory } from "./model.ts";

/** What observe needs from the directory (the LDAP client implements it). */
export interface DirectoryReader {
  readGmsas(baseDn: string): Promise<ObservedGmsa[]>;
  readGroups(baseDn: string, samAccountNames: readonly string[]): Promise<ObservedGroup[]>;
  readComputers(baseDn: string, names: readonly string[]): Promise<ObservedComputer[]>;
  readKdsRootKeys(configDn: string): Promise<ObservedKdsRootKey[]>;
  /** Names for SIDs (sAMAccountName), for SIDs seen in descriptors that nothing else named. */
  resolveSids(baseDn: string, sids: readonly string[]): Promise<Map<string, string>>;
}

/** Names the desired state refers to, by kind of AD object. */
export function referencedNames(desired: DesiredState): { groups: string[]; computers: string[] } {
  const groups = new Set<string>();
  const computers = new Set<string>();
  for (const g of desired.groups.values()) {
    groups.add(g.spec.accountName);
    // Members to remove are read too: only an object read can be found among the members.
    for (const m of [...g.spec.members, ...g.spec.removeMembers])
      if (m.computer !== undefined) computers.add(m.computer);
  }
  for (const g of desired.gmsas.values())
    for (const p of [...g.spec.principalsAllowedToRetrieveManagedPassword, ...g.spec.removePrincipals]) {
      if (p.externalGroup !== undefined) groups.add(p.externalGroup);
      if (p.computer !== undefined) computers.add(p.computer);
    }
  for (const b of desired.bindings.values()) computers.add(b.spec.host);
  return { groups: [...groups].sort(), computers: [...computers].sort() };
}

/** Reads the observed directory for a desired state. */
export async function observeDirectory(
  desired: DesiredState,
  reader: DirectoryReader,
  scope: { baseDn: string; configDn: string },
): Promise<ObservedDirectory> {
  const names = referencedNames(desired);
  const [gmsas, groups, computers, kdsRootKeys] = await Promise.all([
    reader.readGmsas(scope.baseDn),
    reader.readGroups(scope.baseDn, names.groups),
    reader.readComputers(scope.baseDn, names.computers),
    reader.readKdsRootKeys(scope.configDn),
  ]);
  const known = new Set<string>([...groups, ...computers, ...gmsas].map((o) => o.sid));
  const unknown = new Set<string>();
  for (const g of gmsas)
    if (g.groupMsaMembership)
      for (const sid of allowedReaders(g.groupMsaMembership)) if (!known.has(sid)) unknown.add(sid);
  const sidNames = unknown.size > 0 ? await reader.resolveSids(scope.baseDn, [...unknown]) : new Map<string, string>();
  return { baseDn: scope.baseDn, configDn: scope.configDn, gmsas, groups, computers, kdsRootKeys, sidNames };
}
