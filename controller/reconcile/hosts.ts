/**
 * The host side of a reconcile: HostBindings grouped per host, run through a HostDriver (ssh or
 * local) with bounded concurrency, and mapped onto the same vocabulary as AD drift — ResourcePlan
 * entries for the plan output, conditions for status, drift types for metrics. A host is only
 * touched once its AD prerequisites (the gMSA in AD, the computer account) are in place, and one
 * unreachable host never holds up the others.
 */
import type {
  AccountKind,
  BindingResult,
  FleetJob,
  HostDriver,
  HostError,
  HostTarget,
  LogonRight,
} from "../hosts/index.ts";
import { bindingRequest, HOST_CONTRACT_VERSION, runFleet } from "../hosts/index.ts";
import { normalizeDn } from "../directory/index.ts";
import type { DesiredState } from "../manifests/index.ts";
import type { Blocker, ObservedDirectory, Plan, ResourcePlan } from "./model.ts";
import { bindingOutcome } from "./host-outcome.ts";

/** How hosts are reached and driven. */
export interface HostSettings {
  readonly driver: HostDriver;
  /** NetBIOS domain name for DOMAIN\account$ identities; default: derived from the base DN. */
  readonly domain: string | undefined;
  readonly concurrency: number;
  /** Builds the connection target of a host from its computer account. */
  readonly target: (host: string, dnsHostName: string | undefined) => HostTarget;
}

/** What one host-side reconcile found (and did) for one binding. */
export interface HostBindingOutcome {
  readonly plan: ResourcePlan;
  readonly host: string;
  readonly account: string;
  readonly retrievable: "yes" | "no" | "pending" | undefined;
  readonly error: HostError | undefined;
  readonly result: BindingResult | undefined;
}

/** Per host: reachable or not (and why). */
export interface HostOutcome {
  readonly host: string;
  readonly reachable: boolean;
  readonly error: HostError | undefined;
}

/**
 * State kept across cycles by the caller: rights held before (GPO detection), recent AD changes;
 * per binding, forgotten when the binding leaves Git.
 */
export interface HostMemory {
  readonly rightsHeld: Map<string, LogonRight[]>;
  /** Binding name → when the AD side last changed who may retrieve its account's password. */
  readonly allowedAt: Map<string, number>;
}

/** A fresh memory. */
export function hostMemory(): HostMemory {
  return { rightsHeld: new Map(), allowedAt: new Map() };
}

/** Forgets the bindings that left Git: one added back starts afresh (no right "granted before"). */
export function forgetRemovedBindings(memory: HostMemory, desired: DesiredState): void {
  for (const map of [memory.rightsHeld, memory.allowedAt])
    for (const name of map.keys()) if (!desired.bindings.has(name)) map.delete(name);
}

/** Kerberos tickets live 10 hours by default: until then a retrieval failure may only be an old ticket. */
const TICKET_LIFETIME_MS = 10 * 3_600_000;

/** Derives the NetBIOS domain from a base DN's first DC= part (DC=company,DC=local → COMPANY). */
function netbiosFromBaseDn(baseDn: string): string {
  const m = /^\s*DC=([^,]+)/i.exec(baseDn);
  return (m?.[1] ?? "").toUpperCase();
}

/** Why an sMSA is not usable on `host` yet: not linked at all, or linked to another computer. */
function notLinked(account: string, host: string, linkedFrom: readonly string[]): string {
  const names = linkedFrom.map((dn) => /^CN=((?:\\.|[^,])+)/i.exec(dn)?.[1] ?? dn);
  if (names.length === 0) return `sMSA ${account} is not linked to computer ${host} yet (msDS-HostServiceAccount)`;
  return `sMSA ${account} is linked to computer ${names.join(", ")} in AD, not to ${host} (msDS-HostServiceAccount), and Windows installs it only where it is linked`;
}

function dependencyBlocker(message: string): Blocker {
  return { outcome: "waiting", reason: "DependencyNotReady", message };
}

/**
 * Runs the host side for every HostBinding of `desired` (or only those `only` selects): observe
 * with `mode: "observe"`, observe and fix with `"apply"`. `adPlan` is this cycle's AD plan: a
 * binding whose gMSA or groups changed in it counts as recently allowed.
 */
export async function reconcileHosts(
  desired: DesiredState,
  observed: ObservedDirectory | undefined,
  adPlan: Plan | undefined,
  mode: "observe" | "apply",
  globalMode: "enforce" | "observe",
  settings: HostSettings,
  memory: HostMemory,
  options: { readonly now: Date; readonly signal?: AbortSignal; readonly only?: (host: string) => boolean },
): Promise<{ bindings: HostBindingOutcome[]; hosts: HostOutcome[] }> {
  const outcomes: HostBindingOutcome[] = [];
  const now = options.now.getTime();
  const gmsaBySam = new Map((observed?.gmsas ?? []).map((g) => [g.samAccountName.toLowerCase(), g]));
  const computerBySam = new Map((observed?.computers ?? []).map((c) => [c.samAccountName.toLowerCase(), c]));
  const changedThisRun = new Set(
    (adPlan?.resources ?? [])
      .filter((r) => r.actions.length > 0 && !r.observeOnly)
      .map((r) => `${r.resource.kind}/${r.resource.name}`),
  );

  type Pending = {
    name: string;
    account: string;
    accountKind: AccountKind;
    observeOnly: boolean;
    dnsHostName: string | undefined;
  };
  const perHost = new Map<string, Pending[]>();
  for (const b of [...desired.bindings.values()].sort((x, y) => x.name.localeCompare(y.name))) {
    if (b.spec.suspend) continue;
    if (options.only && !options.only(b.spec.host)) continue;
    const gmsa = desired.gmsas.get(b.spec.account);
    const smsa = gmsa ? undefined : desired.smsas.get(b.spec.account);
    const observeOnly = (b.spec.mode ?? (globalMode === "observe" ? "Observe" : "Enforce")) === "Observe";
    const base = {
      resource: { kind: "HostBinding" as const, name: b.name },
      dn: undefined,
      actions: [],
      observeOnly,
      notes: [],
    };
    const resource = gmsa ?? smsa;
    if (!resource) continue; // validate refuses a dangling account; nothing to do here
    const account = resource.spec.accountName;
    const accountKind: AccountKind = smsa ? "smsa" : "gmsa";
    // With a directory: wait until the account and the computer exist (and an sMSA is linked to
    // the computer, which Windows needs to install it). Without one (the agent), the host's own
    // NetQueryServiceAccount is the judge.
    if (observed) {
      const related = gmsa
        ? [
            `GroupManagedServiceAccount/${gmsa.name}`,
            ...gmsa.spec.principalsAllowedToRetrieveManagedPassword.flatMap((p) =>
              p.group ? [`ADGroup/${p.group}`] : [],
            ),
          ]
        : [`ManagedServiceAccount/${resource.name}`];
      if (related.some((k) => changedThisRun.has(k))) memory.allowedAt.set(b.name, now);
      const inAd = gmsaBySam.get(account.toLowerCase());
      const computer = computerBySam.get(b.spec.host.toLowerCase());
      const linked =
        accountKind === "gmsa" ||
        (inAd !== undefined &&
          (computer?.hostServiceAccounts ?? []).some((dn) => normalizeDn(dn) === normalizeDn(inAd.dn)));
      const missing = !inAd
        ? `${accountKind === "gmsa" ? "gMSA" : "sMSA"} ${account} is not in AD yet`
        : !computer
          ? `computer ${b.spec.host} not found in AD`
          : !linked
            ? notLinked(account, b.spec.host, inAd.hostComputers ?? [])
            : undefined;
      if (missing) {
        outcomes.push({
          plan: {
            ...base,
            drift: new Set(),
            changes: [],
            blocker: dependencyBlocker(`${missing}; the host is not touched until it is`),
          },
          host: b.spec.host,
          account,
          retrievable: undefined,
          error: undefined,
          result: undefined,
        });
        continue;
      }
    }
    const list = perHost.get(b.spec.host.toUpperCase()) ?? [];
    list.push({
      name: b.name,
      account,
      accountKind,
      observeOnly,
      dnsHostName: computerBySam.get(b.spec.host.toLowerCase())?.dnsHostName,
    });
    perHost.set(b.spec.host.toUpperCase(), list);
  }

  const jobs: FleetJob[] = [...perHost].map(([host, pending]) => ({
    target: settings.target(host, pending[0]?.dnsHostName),
    request: {
      version: HOST_CONTRACT_VERSION,
      mode,
      host,
      domain: settings.domain ?? (observed ? netbiosFromBaseDn(observed.baseDn) : ""),
      bindings: pending.map((p) => {
        const spec = desired.bindings.get(p.name)!.spec;
        const allowedAt = memory.allowedAt.get(p.name);
        return bindingRequest(p.name, p.account, spec, {
          recentlyAllowed: allowedAt !== undefined && now - allowedAt < TICKET_LIFETIME_MS,
          rightsGrantedBefore: memory.rightsHeld.get(p.name) ?? [],
          observeOnly: p.observeOnly,
          accountKind: p.accountKind,
        });
      }),
    },
  }));
  const fleet = await runFleet(settings.driver, jobs, {
    concurrency: settings.concurrency,
    ...(options.signal ? { signal: options.signal } : {}),
  });

  const hosts: HostOutcome[] = [];
  for (const [i, outcome] of fleet.entries()) {
    const job = jobs[i]!;
    const pending = perHost.get(job.request.host)!;
    if (!outcome.ok) {
      hosts.push({ host: job.request.host, reachable: false, error: outcome.error });
      for (const p of pending)
        outcomes.push({
          plan: {
            resource: { kind: "HostBinding", name: p.name },
            dn: undefined,
            drift: new Set(),
            changes: [],
            actions: [],
            observeOnly: p.observeOnly,
            notes: [],
          },
          host: job.request.host,
          account: p.account,
          retrievable: undefined,
          error: outcome.error,
          result: undefined,
        });
      continue;
    }
    hosts.push({ host: job.request.host, reachable: true, error: undefined });
    for (const p of pending) outcomes.push(bindingOutcome(outcome.result, p.name, p.account, p.observeOnly, memory));
  }
  return { bindings: outcomes, hosts };
}
