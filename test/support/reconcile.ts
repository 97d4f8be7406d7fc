/**
 * Builders for reconcile's unit tests: desired resources with the CRD defaults filled in,
 * observed directory objects, a recording DirectoryWriter that also plays the writes back onto
 * an observed directory so a second plan can be checked for idempotence, and a fake directory
 * the loop can open, with failures injected per DN and outcome.
 */
import type {
  ADGroupSpec,
  DesiredState,
  GroupManagedServiceAccountSpec,
  ManagedServiceAccountSpec,
  HostBindingSpec,
  KdsRootKeySpec,
  Resource,
} from "../../controller/manifests/index.ts";
import type { ObservedGmsa, ObservedGroup, ObservedKdsRootKey } from "../../controller/directory/index.ts";
import { encodeGroupMsaMembership, OwnershipKey } from "../../controller/directory/index.ts";
import type { DirectoryWriter, Modification } from "../../controller/directory/index.ts";
import { InvalidCredentialsError } from "ldapts";
import { toDirectoryError } from "../../controller/directory/index.ts";
import type { ObservedDirectory, Outcome, Plan, ResourcePlan } from "../../controller/reconcile/model.ts";
import type { DirectorySession, OpenDirectory } from "../../controller/reconcile/pass.ts";
import type { BindingRequest, BindingResult, HostDriver, HostRequest } from "../../controller/hosts/index.ts";

export const BASE = "DC=company,DC=local";
export const CONFIG = `CN=Configuration,${BASE}`;
const source = { file: "test.yaml", line: 1, column: 1 };

/** A gMSA resource with CRD defaults. */
export function gmsa(
  name: string,
  spec: Partial<GroupManagedServiceAccountSpec> & Pick<GroupManagedServiceAccountSpec, "accountName">,
): Resource<"GroupManagedServiceAccount", GroupManagedServiceAccountSpec> {
  return {
    kind: "GroupManagedServiceAccount",
    name,
    source,
    labels: {},
    annotations: {},
    spec: {
      ...(spec.restrictToOutboundAuthenticationOnly
        ? {}
        : { dnsHostName: `${spec.accountName.toLowerCase()}.company.local` }),
      restrictToOutboundAuthenticationOnly: false,
      principalsAllowedToRetrieveManagedPassword: [],
      principalsPolicy: "exact",
      removePrincipals: [],
      kerberosEncryptionTypes: ["AES128", "AES256"],
      allowWeakEncryption: false,
      allowDefaultEncryptionTypes: false,
      allowUnconstrainedDelegation: false,
      servicePrincipalNames: [],
      servicePrincipalNamesPolicy: "additive",
      enabled: true,
      removeServicePrincipalNames: [],
      managedPasswordIntervalInDays: 30,
      allowReplacement: false,
      path: "CN=Managed Service Accounts",
      suspend: false,
      ...spec,
    },
  };
}

/** A ManagedServiceAccount (sMSA) resource with CRD defaults: MSA-SQL1, restricted to SQL1. */
export function smsa(
  spec: Partial<ManagedServiceAccountSpec> = {},
  name = "sql1-svc",
): Resource<"ManagedServiceAccount", ManagedServiceAccountSpec> {
  return {
    kind: "ManagedServiceAccount",
    name,
    source,
    labels: {},
    annotations: {},
    spec: {
      accountName: "MSA-SQL1",
      computer: "SQL1",
      enabled: true,
      kerberosEncryptionTypes: ["AES128", "AES256"],
      allowWeakEncryption: false,
      allowDefaultEncryptionTypes: false,
      servicePrincipalNames: [],
      servicePrincipalNamesPolicy: "additive",
      removeServicePrincipalNames: [],
      path: "CN=Managed Service Accounts",
      suspend: false,
      ...spec,
    },
  };
}

/** A HostBinding resource with CRD defaults. */
export function hostBinding(
  name: string,
  spec: Partial<HostBindingSpec> & Pick<HostBindingSpec, "host" | "account">,
): Resource<"HostBinding", HostBindingSpec> {
  return {
    kind: "HostBinding",
    name,
    source,
    labels: {},
    annotations: {},
    spec: {
      localGroups: [],
      logonRights: [],
      purgeKerberosTickets: false,
      services: [],
      scheduledTasks: [],
      iisAppPools: [],
      fileSystemAccess: [],
      fileSystemAccessPolicy: "additive",
      suspend: false,
      ...spec,
    },
  };
}

/** An ADGroup resource with CRD defaults. */
export function group(
  name: string,
  spec: Partial<ADGroupSpec> & Pick<ADGroupSpec, "accountName">,
): Resource<"ADGroup", ADGroupSpec> {
  return {
    kind: "ADGroup",
    name,
    source,
    labels: {},
    annotations: {},
    spec: {
      scope: "Global",
      category: "Security",
      path: "CN=Users",
      members: [],
      membership: "additive",
      removeMembers: [],
      allowReplacement: false,
      suspend: false,
      ...spec,
    },
  };
}

/** A KdsRootKey resource. */
export function kdsKey(spec: Partial<KdsRootKeySpec> = {}, name = "default"): Resource<"KdsRootKey", KdsRootKeySpec> {
  return {
    kind: "KdsRootKey",
    name,
    source,
    labels: {},
    annotations: {},
    spec: { effectiveImmediately: false, suspend: false, deletionPolicy: "Retain", ...spec },
  };
}

/** A desired state from a list of resources. */
export function desiredOf(
  ...resources: Array<
    | Resource<"GroupManagedServiceAccount", GroupManagedServiceAccountSpec>
    | Resource<"ADGroup", ADGroupSpec>
    | Resource<"HostBinding", HostBindingSpec>
    | Resource<"KdsRootKey", KdsRootKeySpec>
    | Resource<"ManagedServiceAccount", ManagedServiceAccountSpec>
  >
): DesiredState {
  const smsas = new Map<string, Resource<"ManagedServiceAccount", ManagedServiceAccountSpec>>();
  const gmsas = new Map<string, Resource<"GroupManagedServiceAccount", GroupManagedServiceAccountSpec>>();
  const groups = new Map<string, Resource<"ADGroup", ADGroupSpec>>();
  const bindings = new Map<string, Resource<"HostBinding", HostBindingSpec>>();
  const kdsRootKeys = new Map<string, Resource<"KdsRootKey", KdsRootKeySpec>>();
  for (const r of resources) {
    if (r.kind === "GroupManagedServiceAccount") gmsas.set(r.name, r);
    else if (r.kind === "ADGroup") groups.set(r.name, r);
    else if (r.kind === "HostBinding") bindings.set(r.name, r);
    else if (r.kind === "ManagedServiceAccount") smsas.set(r.name, r);
    else kdsRootKeys.set(r.name, r);
  }
  return { gmsas, smsas, groups, bindings, kdsRootKeys };
}

let nextRid = 1100;
/** A fresh domain SID for a test object. */
export const newSid = (): string => `S-1-5-21-1-2-3-${nextRid++}`;

let nextGuid = 1;
/** A fresh objectGUID (canonical text) for a test object. */
export const newGuid = (): string => `00000000-0000-4000-8000-${(nextGuid++).toString(16).padStart(12, "0")}`;

/** The owner id and key the unit tests' controller marks and checks objects with. */
export const OWNER = new OwnershipKey("test", Buffer.from("unit-test-ownership-key-0123456789abcdef"));

/** A computer as observe returns it. */
export function computer(name: string): { dn: string; samAccountName: string; sid: string; dnsHostName: string } {
  return {
    dn: `CN=${name},CN=Computers,${BASE}`,
    samAccountName: name,
    sid: newSid(),
    dnsHostName: `${name.toLowerCase()}.company.local`,
  };
}

/** A KDS root key whose use start time is `hoursAgo` hours in the past. */
export function kdsObserved(now: Date, hoursAgo: number): ObservedKdsRootKey {
  const t = new Date(now.getTime() - hoursAgo * 3_600_000);
  return { dn: `CN=k,CN=Master Root Keys,${CONFIG}`, id: "k", useStartTime: t, createTime: t };
}

/** An empty observed directory with one effective KDS key. */
export function emptyDirectory(now: Date, extra: Partial<ObservedDirectory> = {}): ObservedDirectory {
  return {
    baseDn: BASE,
    configDn: CONFIG,
    gmsas: [],
    groups: [],
    computers: [],
    kdsRootKeys: [kdsObserved(now, 11)],
    principals: [],
    sidNames: new Map(),
    ...extra,
  };
}

/** A recorded write. */
export type Write =
  | { op: "add"; dn: string; attributes: Record<string, unknown> }
  | { op: "modify"; dn: string; changes: readonly Modification[] }
  | { op: "move"; dn: string; newDn: string }
  | { op: "delete"; dn: string }
  | { op: "addMembers" | "removeMembers"; dn: string; members: readonly string[] }
  | { op: "createKdsRootKey"; effectiveImmediately: boolean; effectiveTime?: string };

/** Writes to DNs matching `match` throw an error with this outcome (as the directory's typed errors do). */
export interface InjectedFailure {
  match: RegExp;
  outcome: Outcome;
}

/**
 * A DirectoryWriter that records every write and applies it to an in-memory copy of the
 * observed directory, so tests can plan again and expect no changes. `failOn` makes writes
 * to DNs matching it throw a transient error; `failures` can be changed between cycles.
 */
export function recordingWriter(start: ObservedDirectory, failOn?: RegExp) {
  const writes: Write[] = [];
  const failures: InjectedFailure[] = failOn ? [{ match: failOn, outcome: "transient" }] : [];
  const gmsas = new Map<string, ObservedGmsa>(start.gmsas.map((g) => [g.dn.toLowerCase(), { ...g }]));
  const groups = new Map<string, ObservedGroup>(
    start.groups.map((g) => [g.dn.toLowerCase(), { ...g, members: [...g.members] }]),
  );
  let kdsRootKeys = [...start.kdsRootKeys];
  const fail = (dn: string): void => {
    const f = failures.find((x) => x.match.test(dn));
    if (f)
      throw Object.assign(new Error(`simulated ${f.outcome} failure on ${dn}`), { outcome: f.outcome, reason: "Test" });
  };
  const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

  const writer: DirectoryWriter = {
    add(dn, attributes) {
      fail(dn);
      writes.push({ op: "add", dn, attributes: { ...attributes } });
      const sid = newSid();
      const guid = newGuid();
      if (attributes["objectClass"] === "group") {
        groups.set(dn.toLowerCase(), {
          dn,
          sid,
          guid,
          samAccountName: String(attributes["sAMAccountName"]),
          groupType: Number(attributes["groupType"]),
          description: text(attributes["description"]),
          members: [],
          adminDescription: text(attributes["adminDescription"]),
          adminDisplayName: text(attributes["adminDisplayName"]),
          managed: true,
        });
      } else {
        const spns = attributes["servicePrincipalName"];
        gmsas.set(dn.toLowerCase(), {
          dn,
          sid,
          guid,
          samAccountName: String(attributes["sAMAccountName"]).replace(/\$$/, ""),
          dnsHostName: text(attributes["dNSHostName"]),
          description: text(attributes["description"]),
          displayName: text(attributes["displayName"]),
          servicePrincipalNames: Array.isArray(spns) ? spns.map(String) : [],
          encryptionTypes: Number(attributes["msDS-SupportedEncryptionTypes"]),
          passwordIntervalDays: Number(attributes["msDS-ManagedPasswordInterval"]),
          groupMsaMembership: attributes["msDS-GroupMSAMembership"] as Buffer,
          userAccountControl: Number(attributes["userAccountControl"]),
          adminDescription: text(attributes["adminDescription"]),
          managed: true,
        });
      }
      return Promise.resolve();
    },
    modify(dn, changes) {
      fail(dn);
      writes.push({ op: "modify", dn, changes });
      const g = gmsas.get(dn.toLowerCase());
      const gr = groups.get(dn.toLowerCase());
      const key = kdsRootKeys.find((k) => k.dn.toLowerCase() === dn.toLowerCase());
      for (const c of changes) {
        if (key && (c.attribute === "adminDescription" || c.attribute === "adminDisplayName"))
          key[c.attribute] = text(c.values[0]);
        const first = c.values[0];
        if (g) {
          if (c.attribute === "servicePrincipalName") {
            const vals = c.values.map(String);
            g.servicePrincipalNames =
              c.operation === "add"
                ? [...g.servicePrincipalNames, ...vals]
                : g.servicePrincipalNames.filter((s) => !vals.includes(s));
          } else if (c.attribute === "msDS-GroupMSAMembership") g.groupMsaMembership = first as Buffer;
          else if (c.attribute === "msDS-SupportedEncryptionTypes") g.encryptionTypes = Number(first);
          else if (c.attribute === "userAccountControl") g.userAccountControl = Number(first);
          else if (c.attribute === "sAMAccountName") g.samAccountName = text(first)?.replace(/\$$/, "") ?? "";
          else if (c.attribute === "adminDisplayName") g.adminDisplayName = text(first);
          else if (c.attribute === "dNSHostName") g.dnsHostName = text(first);
          else if (c.attribute === "description") g.description = text(first);
          else if (c.attribute === "displayName") g.displayName = text(first);
          else if (c.attribute === "adminDescription") g.adminDescription = text(first);
        }
        if (gr) {
          if (c.attribute === "groupType") gr.groupType = Number(first);
          else if (c.attribute === "description") gr.description = text(first);
          else if (c.attribute === "adminDescription") gr.adminDescription = text(first);
          else if (c.attribute === "adminDisplayName") gr.adminDisplayName = text(first);
          else if (c.attribute === "sAMAccountName") gr.samAccountName = text(first) ?? "";
        }
      }
      return Promise.resolve();
    },
    move(dn, newDn) {
      fail(dn);
      writes.push({ op: "move", dn, newDn });
      for (const map of [gmsas, groups] as Map<string, { dn: string }>[]) {
        const o = map.get(dn.toLowerCase());
        if (o) {
          map.delete(dn.toLowerCase());
          o.dn = newDn;
          map.set(newDn.toLowerCase(), o);
        }
      }
      // As AD does for a linked attribute: member values follow the object.
      for (const g of groups.values())
        g.members = g.members.map((m) => (m.toLowerCase() === dn.toLowerCase() ? newDn : m));
      return Promise.resolve();
    },
    delete(dn) {
      fail(dn);
      writes.push({ op: "delete", dn });
      gmsas.delete(dn.toLowerCase());
      groups.delete(dn.toLowerCase());
      for (const g of groups.values()) g.members = g.members.filter((m) => m.toLowerCase() !== dn.toLowerCase());
      kdsRootKeys = kdsRootKeys.filter((k) => k.dn.toLowerCase() !== dn.toLowerCase());
      return Promise.resolve();
    },
    addMembers(dn, members) {
      fail(dn);
      writes.push({ op: "addMembers", dn, members });
      const g = groups.get(dn.toLowerCase())!;
      for (const m of members) if (!g.members.some((x) => x.toLowerCase() === m.toLowerCase())) g.members.push(m);
      return Promise.resolve();
    },
    removeMembers(dn, members) {
      fail(dn);
      writes.push({ op: "removeMembers", dn, members });
      const g = groups.get(dn.toLowerCase())!;
      g.members = g.members.filter((x) => !members.some((m) => m.toLowerCase() === x.toLowerCase()));
      return Promise.resolve();
    },
    readSid(dn) {
      const o = groups.get(dn.toLowerCase()) ?? gmsas.get(dn.toLowerCase());
      return o ? Promise.resolve(o.sid) : Promise.reject(new Error(`no such object ${dn}`));
    },
    readGuid(dn) {
      const o =
        groups.get(dn.toLowerCase()) ??
        gmsas.get(dn.toLowerCase()) ??
        kdsRootKeys.find((k) => k.dn.toLowerCase() === dn.toLowerCase());
      return o?.guid ? Promise.resolve(o.guid) : Promise.reject(new Error(`no such object ${dn}`));
    },
    createKdsRootKey({ effectiveImmediately, now, effectiveTime }) {
      writes.push({
        op: "createKdsRootKey",
        effectiveImmediately,
        ...(effectiveTime ? { effectiveTime: effectiveTime.toISOString() } : {}),
      });
      const t = effectiveImmediately
        ? new Date(now.getTime() - (10 * 3_600_000 + 300_000))
        : (effectiveTime ?? new Date(now.getTime() + 10 * 24 * 3_600_000));
      const id = newGuid();
      const dn = `CN=${id},CN=Master Root Keys,${CONFIG}`;
      kdsRootKeys = [...kdsRootKeys, { dn, id, guid: id, useStartTime: t, createTime: now }];
      return Promise.resolve(dn);
    },
  };
  const observed = (): ObservedDirectory => ({
    ...start,
    gmsas: [...gmsas.values()],
    groups: [...groups.values()],
    kdsRootKeys,
  });
  return { writer, writes, observed, failures };
}

/**
 * The error a bind with refused credentials gives, made the way the client makes it: ldapts's
 * result-code error with Samba's (and Windows') diagnostic, through the directory's error mapping.
 * `data` is the Win32 reason: 52e a wrong password, 775 a locked account.
 */
export function bindRefused(data: "52e" | "775", bindDn = `CN=svc,CN=Users,${BASE}`): Error {
  return toDirectoryError(
    new InvalidCredentialsError(
      `80090308: LdapErr: DSID-0C0904DC, comment: AcceptSecurityContext error, data ${data}, v1db1 Code: 0x31`,
    ),
    { operation: "bind", bindDn, secrets: ["the-wrong-password"] },
  );
}

/**
 * A directory the loop and the reconcile pass can open: reads come from the recording writer's
 * in-memory state, writes go through it. `down` makes opening fail like an unreachable DC,
 * `refuseBind` like a DC refusing the credentials (LDAP 49); `binds` counts bind attempts.
 */
export function fakeDirectory(start: ObservedDirectory) {
  const recording = recordingWriter(start);
  const state: { down: boolean; opened: number; binds: number; refuseBind: "52e" | "775" | undefined } = {
    down: false,
    opened: 0,
    binds: 0,
    refuseBind: undefined,
  };
  const open: OpenDirectory = () => {
    state.binds++;
    if (state.refuseBind !== undefined) return Promise.reject(bindRefused(state.refuseBind));
    if (state.down)
      return Promise.reject(
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:636"), {
          outcome: "transient",
          reason: "ConnectionFailed",
        }),
      );
    state.opened++;
    const now = recording.observed;
    const session: DirectorySession = {
      // The writer's methods on the session too, so code that writes through the connection
      // object itself (as the loop did before the shared pass) runs against the same state.
      ...recording.writer,
      rootDse: () => Promise.resolve({ defaultNamingContext: BASE, configurationNamingContext: CONFIG }),
      readGmsas: () => Promise.resolve(now().gmsas.map((g) => ({ ...g }))),
      readGroups: (_base, names) =>
        Promise.resolve(
          now()
            .groups.filter((g) => g.managed || names.some((n) => n.toLowerCase() === g.samAccountName.toLowerCase()))
            .map((g) => ({ ...g, members: [...g.members] })),
        ),
      readComputers: (_base, names) =>
        Promise.resolve(
          now().computers.filter((c) => names.some((n) => n.toLowerCase() === c.samAccountName.toLowerCase())),
        ),
      readKdsRootKeys: () => Promise.resolve([...now().kdsRootKeys]),
      resolveSids: () => Promise.resolve(new Map<string, string>()),
      readPrincipals: (_base, names) =>
        Promise.resolve(
          now().principals.filter(
            (p) =>
              names.samAccountNames.some((n) => n.toLowerCase() === p.samAccountName.toLowerCase()) ||
              names.userPrincipalNames.some((n) => n.toLowerCase() === p.userPrincipalName?.toLowerCase()) ||
              names.sids.includes(p.sid) ||
              names.dns.some((d) => d.toLowerCase() === p.dn.toLowerCase()),
          ),
        ),
      writer: recording.writer,
      close: () => Promise.resolve(),
    };
    return Promise.resolve(session);
  };
  return { ...recording, open, state };
}

/** An observed gMSA created by the controller, allowing the given SIDs. */
export function observedGmsa(
  accountName: string,
  sids: readonly string[],
  extra: Partial<ObservedGmsa> = {},
): ObservedGmsa {
  const guid = newGuid();
  return {
    dn: `CN=${accountName},CN=Managed Service Accounts,${BASE}`,
    samAccountName: accountName,
    sid: newSid(),
    guid,
    dnsHostName: `${accountName.toLowerCase()}.company.local`,
    servicePrincipalNames: [],
    encryptionTypes: 0x18,
    passwordIntervalDays: 30,
    groupMsaMembership: encodeGroupMsaMembership(sids),
    userAccountControl: 4096,
    adminDescription: OWNER.markerFor(guid),
    managed: true,
    ...extra,
  };
}

/** An observed group created by the controller. */
export function observedGroup(
  accountName: string,
  members: readonly string[],
  extra: Partial<ObservedGroup> = {},
): ObservedGroup {
  const guid = newGuid();
  return {
    dn: `CN=${accountName},CN=Users,${BASE}`,
    samAccountName: accountName,
    sid: newSid(),
    guid,
    groupType: -2147483646,
    members: [...members],
    adminDescription: OWNER.markerFor(guid),
    managed: true,
    ...extra,
  };
}

/** The plan's entry for KIND/NAME; throws when the plan has none. */
export function planEntry(plan: Plan, kind: string, name: string): ResourcePlan {
  const r = plan.resources.find((x) => x.resource.kind === kind && x.resource.name === name);
  if (!r) throw new Error(`no ${kind}/${name} in plan`);
  return r;
}

/** A host that records each request and answers every binding with `answer` (Windows PowerShell 5.1). */
export function recordingHost(
  requests: HostRequest[],
  answer: (binding: BindingRequest) => Omit<BindingResult, "name" | "account">,
): HostDriver {
  return {
    run: (_target, request) => {
      requests.push(request);
      return Promise.resolve({
        version: request.version,
        host: request.host,
        mode: request.mode,
        powershell: "5.1.20348.2849",
        bindings: request.bindings.map((b) => ({ name: b.name, account: b.account, ...answer(b) })),
      });
    },
  };
}

/**
 * Gives a fake directory's sessions the reads of an incremental observe: each object's
 * uSNChanged is raised whenever its content changed, deletions leave a tombstone with the USN.
 * As on a DC, any write moves the highest committed USN: a KDS root key or a principal changed
 * too, though neither is returned by `changedSince`.
 */
export function withUsns(open: OpenDirectory, state: () => ObservedDirectory): OpenDirectory {
  let usn = 100;
  const seen = new Map<string, { json: string; usn: number; dn: string; deleted: boolean }>();
  let others = "";
  const refresh = (): void => {
    const now = state();
    const json = JSON.stringify([now.kdsRootKeys, now.principals]);
    if (json !== others) {
      others = json;
      usn++;
    }
    const present = new Set<string>();
    for (const o of [...now.gmsas, ...now.groups, ...now.computers]) {
      present.add(o.sid);
      const json = JSON.stringify(o);
      if (seen.get(o.sid)?.json !== json) seen.set(o.sid, { json, usn: ++usn, dn: o.dn, deleted: false });
    }
    for (const [sid, s] of seen)
      if (!present.has(sid) && !s.deleted) seen.set(sid, { ...s, usn: ++usn, deleted: true });
  };
  const after = (sid: string, since: string): boolean => (seen.get(sid)?.usn ?? Infinity) > Number(since);
  return async (signal) => {
    const session = await open(signal);
    return {
      ...session,
      watermark: () => {
        refresh();
        return Promise.resolve({ dsServiceName: "CN=NTDS Settings,CN=DC1", invocationId: "dc1", usn: String(usn) });
      },
      readGmsas: async (base, since) =>
        (await session.readGmsas(base)).filter((g) => since === undefined || after(g.sid, since)),
      changedSince: async (base, since) => {
        const gmsas = (await session.readGmsas(base)).filter((g) => after(g.sid, since));
        const groups = state()
          .groups.filter((g) => after(g.sid, since))
          .map((g) => ({ ...g, members: [...g.members] }));
        const computers = state().computers.filter((c) => after(c.sid, since));
        const deleted = [...seen]
          .filter(([, s]) => s.deleted && s.usn > Number(since))
          .map(([sid, s]) => ({ sid, dn: s.dn }));
        return {
          gmsas,
          groups,
          computers,
          deleted,
          entries: gmsas.length + groups.length + computers.length + deleted.length,
        };
      },
    } satisfies DirectorySession;
  };
}
