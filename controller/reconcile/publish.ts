/**
 * The loop's last step, in one place: each resource's cycle summarised into its status
 * (`summarize`), and the metrics and log lines that go with it; per-host series; the kind
 * counts, the KDS key and the password deadlines. Series of resources and hosts that left the
 * repository are removed.
 */
import type { DesiredState } from "../manifests/index.ts";
import type { MetricsRecorder } from "../metrics/index.ts";
import type { Kind } from "../vocabulary.ts";
import { KINDS, METRIC_CONDITIONS, resourceKey } from "../vocabulary.ts";
import type { ActionResult } from "./apply.ts";
import { hostAttempts } from "./host-outcome.ts";
import type { ResourcePlan } from "./model.ts";
import type { PassResult } from "./pass.ts";
import type { Logger } from "./revision.ts";
import type { Attempt, Cycle, ResourceStatus, StatusStore } from "./status.ts";
import { summarize } from "./status.ts";
import { unreachedBinding } from "./untransported.ts";
import { RotationWatch } from "./rotation.ts";
import { PasswordSeries, UnchangedResources } from "./republish.ts";
import { resourceOf } from "./target.ts";
import { metricAction } from "./cycle-outcome.ts";

export { cycleHealthy } from "./cycle-outcome.ts";

/** What one published cycle tells the loop. */
export interface Published {
  /** Every resource key still in Git or AD (the loop forgets back-off state of the others). */
  readonly keep: ReadonlySet<string>;
  /** The earliest time a resource is waiting for, if any. */
  readonly nextAt: number | undefined;
  readonly kds: { readonly effective: boolean; readonly effectiveAt: string | null } | null;
}

/** The cycle being published. */
export interface CycleInput {
  readonly desired: DesiredState;
  readonly pass: PassResult;
  readonly revision: string | null;
  readonly now: Date;
  /** False when this replica only observed (a follower of the leader lease): nothing was executed. */
  readonly executed: boolean;
  /** Global enforce mode: a host binding's changes were made (not only reported). */
  readonly enforce: boolean;
  /** False when no host transport is configured: HostBindings are listed, not observed. */
  readonly hostTransport: boolean;
  /**
   * The loop's gate bookkeeping for one resource (AD or host binding): its plan entry and what its
   * writes came to. Returns when it is due again, if backing off.
   */
  readonly remember: (entry: ResourcePlan, attempts: readonly Attempt[]) => number | undefined;
}

const retry = (at: number | undefined): { retryAt?: Date } => (at === undefined ? {} : { retryAt: new Date(at) });

/** Where a resource is declared in the revision in force, for status. */
function sourceOf(desired: DesiredState, ref: { kind: Kind; name: string }): ResourceStatus["source"] {
  const res = resourceOf(desired, ref);
  return res ? { file: res.source.file, line: res.source.line } : null;
}

/** Publishes cycles into the status store, the metrics and the log. */
export class CyclePublisher {
  readonly #statuses: StatusStore;
  readonly #metrics: MetricsRecorder;
  readonly #logger: Logger;
  /** Host → the accounts it had retrievability series for, so a removed host's series go too. */
  #hosts = new Map<string, Set<string>>();
  /** Per binding: could the host retrieve before and after the gMSA's last password change. */
  readonly #rotations = new RotationWatch();
  readonly #onChange: ((previous: ResourceStatus | undefined, next: ResourceStatus) => void) | undefined;
  /** What a publication keeps from the last one (republish.ts). */
  readonly #unchanged = new UnchangedResources();
  readonly #passwords = new PasswordSeries();
  /** The HostBindings last logged as without a transport: logged again only when they change. */
  #unreached = "";

  /** `onChange` sees every status update with the status before it (notifications); it must not throw. */
  constructor(
    statuses: StatusStore,
    metrics: MetricsRecorder,
    logger: Logger,
    onChange?: (previous: ResourceStatus | undefined, next: ResourceStatus) => void,
  ) {
    this.#statuses = statuses;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#onChange = onChange;
  }

  /** One action's result, as it completes: the actions counter and a log line. */
  actionDone(r: ActionResult): void {
    const a = r.action;
    // How long its writes took: what an operator compares with the cycle's own time.
    const fields = {
      kind: a.resource.kind,
      resource: a.resource.name,
      action: a.type,
      ...(r.seconds !== undefined ? { durationMs: Math.round(r.seconds * 1000) } : {}),
    };
    this.#metrics.actionApplied(a.resource.kind, metricAction(a), r.status === "applied" ? "success" : "failure");
    if (r.status === "applied") this.#logger.info(fields, "applied");
    else this.#logger.warn({ ...fields, status: r.status, outcome: r.outcome, err: r.message }, "action not applied");
  }

  /** Ready, Stalled, Reconciling and ApplyFailed (false when absent) as the per-resource condition metric. */
  conditions(status: ResourceStatus): void {
    for (const type of METRIC_CONDITIONS) {
      const c = status.conditions.find((x) => x.type === type);
      if (c === undefined && type !== "ApplyFailed") continue;
      this.#metrics.setResourceCondition(status.kind, status.name, type, c?.status === "True");
    }
  }

  /** Publishes a whole cycle; returns what the loop needs for its schedule and bookkeeping. */
  cycle(input: CycleInput): Published {
    const { desired, pass, revision, now } = input;
    const metrics = this.#metrics;
    const byResource = new Map<string, ActionResult[]>();
    for (const r of pass.results) {
      const key = resourceKey(r.action.resource);
      byResource.set(key, [...(byResource.get(key) ?? []), r]);
    }
    const keep = new Set<string>();
    const drifted = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
    let nextAt: number | undefined;
    const earliest = (at: number | undefined): void => {
      if (at !== undefined) nextAt = Math.min(nextAt ?? Infinity, at);
    };
    // Every resource kept is published below as observed now: those not summarised again too.
    this.#statuses.observedAll(now);

    for (const rp of pass.plan.resources) {
      const key = resourceKey(rp.resource);
      keep.add(key);
      const results = byResource.get(key) ?? [];
      const retryAt = input.remember(rp, results);
      earliest(retryAt);
      earliest(rp.blocker?.until?.getTime());
      const source = sourceOf(desired, rp.resource);
      const executed = input.executed && !rp.observeOnly;
      if (
        results.length === 0 &&
        this.#unchanged.reuse(key, { entry: rp, executed, source, revision }, this.#statuses)
      ) {
        if (rp.drift.size > 0) drifted[rp.resource.kind]++;
        continue;
      }
      const status = this.#resource(
        { kind: rp.resource.kind, name: rp.resource.name, dn: rp.dn ?? null, source },
        { entry: rp, attempts: results, executed, revision, now, ...retry(retryAt) },
        drifted,
      );
      this.#unchanged.summarised(key, { entry: rp, executed, status }, results.length, retryAt);
    }
    const unreached = input.hostTransport || !pass.observed ? [] : [...desired.bindings.values()];
    for (const b of unreached) {
      keep.add(`HostBinding/${b.name}`);
      const identity = { kind: "HostBinding" as const, name: b.name, dn: null, source: sourceOf(desired, b) };
      const host = { name: b.spec.host, reachable: null, retrievable: null };
      const status = this.#statuses.update({ ...identity, host, ...unreachedBinding(b.spec.host) }, now);
      this.conditions(status);
    }
    if (unreached.map((b) => b.name).join() !== this.#unreached && unreached.length > 0)
      this.#logger.warn({ bindings: unreached.map((b) => b.name) }, "host bindings with no host transport");
    this.#unreached = unreached.map((b) => b.name).join();
    const hosts = new Map<string, Set<string>>();
    for (const o of pass.hosts?.bindings ?? []) {
      const name = o.plan.resource.name;
      keep.add(`HostBinding/${name}`);
      // A host's failures are retried as an AD write's are: transient ones with back-off.
      const attempts = hostAttempts(o);
      const retryAt = input.remember(o.plan, attempts);
      earliest(retryAt);
      earliest(o.plan.blocker?.until?.getTime());
      this.#resource(
        {
          kind: "HostBinding",
          name,
          dn: null,
          source: sourceOf(desired, o.plan.resource),
          host: {
            name: o.host,
            reachable: o.error ? false : o.result ? true : null,
            retrievable: o.retrievable ?? null,
          },
        },
        {
          entry: o.plan,
          attempts,
          executed: input.enforce && !o.plan.observeOnly,
          revision,
          now,
          ...retry(retryAt),
        },
        drifted,
      );
      if (o.retrievable) metrics.setHostRetrievable(o.host, o.account, o.retrievable);
      const account = desired.gmsas.get(o.account)?.spec.accountName.toLowerCase();
      const gmsa = pass.observed?.gmsas.find((g) => g.samAccountName.toLowerCase() === account);
      metrics.setRetrievalAroundRotation(
        o.host,
        o.account,
        this.#rotations.observe(`HostBinding/${name}`, gmsa?.pwdLastSet, o.retrievable),
      );
      hosts.set(o.host, (hosts.get(o.host) ?? new Set()).add(o.account));
    }
    for (const h of pass.hosts?.hosts ?? []) {
      metrics.setHostReachable(h.host, h.reachable);
      if (h.error)
        this.#logger.warn({ host: h.host, reason: h.error.reason, err: h.error.message }, "host not reconciled");
    }
    this.#rotations.retain(keep);
    // The pass skips the host side when no binding is left: their hosts' series go all the same.
    if (pass.hosts || (input.hostTransport && desired.bindings.size === 0)) this.#forgetHosts(hosts);
    this.#unchanged.retain(keep);
    for (const gone of this.#statuses.retain(keep)) {
      metrics.forgetResource(gone.kind, gone.name);
      if (gone.kind === "GroupManagedServiceAccount") this.#passwords.forget(gone.name);
    }
    metrics.setDriftedByKind(drifted);

    const observed = pass.observed;
    if (!observed) {
      // The agent manages only its own host's bindings and nothing in AD.
      metrics.setManagedByKind({
        GroupManagedServiceAccount: 0,
        ADGroup: 0,
        HostBinding: pass.hosts?.bindings.length ?? 0,
        KdsRootKey: 0,
        ManagedServiceAccount: 0,
      });
      return { keep, nextAt, kds: null };
    }
    metrics.setManagedByKind({
      GroupManagedServiceAccount: desired.gmsas.size,
      ADGroup: desired.groups.size,
      HostBinding: desired.bindings.size,
      KdsRootKey: desired.kdsRootKeys.size,
      ManagedServiceAccount: desired.smsas.size,
    });
    const kds = pass.plan.kds;
    metrics.setKdsKeyEffective(kds.effective);
    this.#passwords.publish(metrics, desired, observed);
    return { keep, nextAt, kds: { effective: kds.effective, effectiveAt: kds.effectiveAt?.toISOString() ?? null } };
  }

  /** Removes the series of hosts no binding names any more, and of accounts a host no longer runs. */
  #forgetHosts(now: Map<string, Set<string>>): void {
    for (const [host, accounts] of this.#hosts) {
      const still = now.get(host);
      if (still === undefined) this.#metrics.forgetHost(host);
      else for (const account of accounts) if (!still.has(account)) this.#metrics.forgetHostRetrievable(host, account);
    }
    this.#hosts = now;
  }

  /** Summarises one resource's cycle into its status, and publishes its metrics and log lines. */
  #resource(
    identity: Pick<ResourceStatus, "kind" | "name" | "dn" | "source" | "host">,
    cycle: Cycle,
    drifted: Record<Kind, number>,
  ): ResourceStatus {
    const { kind, name } = identity;
    // As last summarised: every kept resource already reads as observed now (observedAll), which
    // would hide from onChange that this observation is a new one.
    const previous = this.#statuses.stored(kind, name);
    const summary = summarize(cycle, previous);
    if (cycle.entry.drift.size > 0) {
      drifted[kind]++;
      if (!previous?.drift.length) this.#logger.info({ kind, resource: name, drift: summary.drift }, "drift detected");
    }
    const status = this.#statuses.update({ ...identity, ...summary }, cycle.now);
    this.#onChange?.(previous, status);
    const fixed = summary.lastDrift;
    if (fixed !== null && fixed.correctedAt === cycle.now.toISOString()) {
      // Evidence that lasts: the counter, and one warn line naming each attribute old → new
      // (values from AD and Git, never a secret: no attribute we manage holds one).
      for (const type of fixed.drift)
        if (type !== "conflict" && type !== "immutable") this.#metrics.driftCorrected(kind, type);
      this.#logger.warn(
        {
          kind,
          resource: name,
          drift: fixed.drift,
          changes: fixed.changes.map((c) => ({
            attribute: c.attribute,
            from: c.from ?? null,
            to: c.to ?? null,
            ...(c.lastChange ? { lastChange: c.lastChange } : {}),
          })),
        },
        "drift corrected",
      );
    }
    this.#metrics.setDrift(kind, name, cycle.entry.drift);
    this.conditions(status);
    return status;
  }
}
