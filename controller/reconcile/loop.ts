/**
 * The controller loop: level-based reconciles of Git against AD. Every cycle re-reads the
 * source and the directory and acts on the difference, also when Git did not change, so hand
 * edits in AD are reverted (or reported, in observe mode). A cycle is a short list of named
 * steps (source → one reconcile pass → status); status and metrics are summarised in one place
 * at the end, by `summarize`.
 */
import type { DesiredState } from "../manifests/index.ts";
import type { ActionType, MetricsRecorder, ResourceKind } from "../metrics/index.ts";
import type { Kind } from "../vocabulary.ts";
import { resourceKey } from "../vocabulary.ts";
import type { ActionResult } from "./apply.ts";
import type { HostSettings } from "./hosts.ts";
import { hostAttempts, hostMemory } from "./hosts.ts";
import type { Action, Plan, ResourcePlan } from "./model.ts";
import type { OpenDirectory, PassResult } from "./pass.ts";
import { reconcilePass } from "./pass.ts";
import type { Policy } from "./plan.ts";
import type { Logger, Source, SourceStatus } from "./revision.ts";
import { RevisionInForce } from "./revision.ts";
import { Backoff, jitter } from "./schedule.ts";
import type { Cycle, ResourceStatus } from "./status.ts";
import { StatusStore, summarize } from "./status.ts";
import { resourceOf } from "./target.ts";
import { WriteLedger } from "./attribution.ts";
import { passwordSchedule, RotationWatch } from "./rotation.ts";

export type { Logger, RejectedRevision, Source, SourceStatus } from "./revision.ts";

/** Everything the loop needs, passed in (STYLE.md: no singletons). */
export interface ControllerDeps {
  readonly source: Source;
  /** Opens a bound directory session; absent for the host agent, which never talks to AD. */
  readonly openDirectory?: OpenDirectory;
  /** The agent reconciles only the bindings of its own host. */
  readonly onlyHost?: string;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly policy: Policy;
  readonly baseDn?: string;
  /** When set, HostBindings are reconciled on the hosts after AD. */
  readonly hosts?: HostSettings;
  readonly intervalMs: number;
  readonly jitterFraction?: number;
  readonly now?: () => Date;
  readonly random?: () => number;
}

/** The controller's own status, beside the resources'. */
export interface ControllerStatus {
  readonly source: SourceStatus;
  readonly mode: Policy["mode"];
  readonly lastReconcile: {
    readonly startedAt: string;
    readonly durationSeconds: number;
    readonly result: "success" | "failure" | "partial";
    readonly error: string | null;
  } | null;
  readonly kdsRootKey: { readonly effective: boolean; readonly effectiveAt: string | null } | null;
}

const MIN_DELAY_MS = 1_000;
const BACKOFF_BASE_MS = 5_000;

function metricAction(action: Action): ActionType {
  switch (action.type) {
    case "create-gmsa":
    case "create-group":
    case "create-kds-root-key":
      return "create";
    case "add-members":
      return "add-member";
    case "remove-members":
      return "remove-member";
    case "delete":
      return "delete";
    default:
      return "update";
  }
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * One controller. `reconcile()` runs one cycle and returns the delay until the next; the
 * caller schedules it (a poller that never runs two at once). `status()` and `ready()` feed
 * the HTTP server.
 */
export class Controller {
  readonly #deps: ControllerDeps;
  readonly #now: () => Date;
  readonly #statuses = new StatusStore();
  readonly #backoff: Backoff;
  /** Resources whose write failed as stalled, with the revision it failed at: no retry before Git changes. */
  readonly #stalledAt = new Map<string, { readonly revision: string; readonly message: string }>();
  readonly #source: RevisionInForce;
  #lastReconcile: ControllerStatus["lastReconcile"] = null;
  #kds: ControllerStatus["kdsRootKey"] = null;
  #completed = false;
  readonly #hostMemory = hostMemory();
  readonly #writes = new WriteLedger();
  readonly #rotations = new RotationWatch();
  #consecutiveFailures = 0;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#backoff = new Backoff(deps.random ?? Math.random);
    this.#source = new RevisionInForce(deps.source, deps.metrics, deps.logger, this.#now);
  }

  /** True once one reconcile has run to the end (success or partial). */
  ready(): boolean {
    return this.#completed;
  }

  /** The JSON /api/status serves. */
  status(): { controller: ControllerStatus; resources: ResourceStatus[] } {
    return {
      controller: {
        source: this.#source.status(),
        mode: this.#deps.policy.mode,
        lastReconcile: this.#lastReconcile,
        kdsRootKey: this.#kds,
      },
      resources: this.#statuses.all(),
    };
  }

  /** Runs one cycle: source → revision → one reconcile pass → status. Returns the next delay in ms. */
  async reconcile(signal?: AbortSignal): Promise<number> {
    const started = this.#now();
    const t0 = performance.now();
    let result: "success" | "failure" | "partial" = "success";
    let error: string | null = null;
    let nextAt: number | undefined;
    try {
      // A new revision releases every resource stalled at the old one.
      if (await this.#source.sync(signal)) this.#stalledAt.clear();
      const desired = this.#source.desired!;
      const now = this.#now();
      const pass = await this.#pass(desired, now, signal);
      nextAt = this.#record(desired, pass, now);
      if (pass.afterApply) {
        this.#deps.logger.error(
          { step: pass.afterApply.step, err: message(pass.afterApply.error) },
          "reconcile stopped after apply; the host side did not run",
        );
      }
      if (!this.#healthy(pass)) result = "partial";
      this.#consecutiveFailures = 0;
      this.#completed = true;
    } catch (caught) {
      result = "failure";
      if (signal?.aborted) {
        // Stopping (SIGTERM) cut this cycle short: not a failure of Git or AD, so no error
        // line on every clean shutdown and no backoff.
        error = "interrupted: stopping";
        this.#deps.logger.info({}, "reconcile interrupted: stopping");
      } else {
        error = message(caught);
        this.#consecutiveFailures++;
        this.#deps.logger.error({ err: error }, "reconcile failed");
      }
    } finally {
      const seconds = (performance.now() - t0) / 1000;
      this.#deps.metrics.reconcileFinished(seconds, result);
      if (result !== "failure") this.#deps.metrics.reconcileSucceededAt(this.#now());
      this.#lastReconcile = { startedAt: started.toISOString(), durationSeconds: seconds, result, error };
    }
    return this.#nextDelay(nextAt);
  }

  /**
   * Step 2: the reconcile pass shared with `plan` and `apply`. When AD cannot be observed, every
   * resource's last state stops being current: its conditions become Unknown, saying why.
   */
  async #pass(desired: DesiredState, now: Date, signal: AbortSignal | undefined): Promise<PassResult> {
    const { openDirectory, hosts, onlyHost, baseDn } = this.#deps;
    try {
      return await reconcilePass({
        desired,
        policy: this.#deps.policy,
        now,
        write: true,
        hostMemory: this.#hostMemory,
        writes: this.#writes,
        gate: (plan) => this.#gate(plan, now.getTime()),
        onResult: (r) => this.#logResult(r),
        ...(openDirectory ? { openDirectory } : {}),
        ...(hosts ? { hosts } : {}),
        ...(onlyHost !== undefined ? { onlyHost } : {}),
        ...(baseDn !== undefined ? { baseDn } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (caught) {
      if (!signal?.aborted) {
        const why = `not observed: ${message(caught)}`;
        for (const status of this.#statuses.markUnknown("ObservationFailed", why, now)) this.#publishConditions(status);
      }
      throw caught;
    }
  }

  /** True when every action applied, every host answered and no resource is stalled or failing. */
  #healthy(pass: PassResult): boolean {
    if (pass.aborted || pass.afterApply) return false;
    if (pass.results.some((r) => r.status !== "applied")) return false;
    if (pass.hosts?.hosts.some((h) => !h.reachable)) return false;
    return this.#statuses
      .all()
      .every(
        (s) => !s.conditions.some((c) => (c.type === "Stalled" || c.type === "ApplyFailed") && c.status === "True"),
      );
  }

  #nextDelay(nextAt: number | undefined): number {
    const now = this.#now().getTime();
    if (this.#consecutiveFailures > 0) {
      const backoff = BACKOFF_BASE_MS * 2 ** (this.#consecutiveFailures - 1);
      return Math.max(MIN_DELAY_MS, Math.min(backoff, this.#deps.intervalMs));
    }
    let delay = jitter(this.#deps.intervalMs, this.#deps.jitterFraction ?? 0.1, this.#deps.random);
    const due = this.#backoff.nextDue(now);
    for (const at of [due, nextAt]) if (at !== undefined) delay = Math.min(delay, at - now);
    return Math.max(MIN_DELAY_MS, delay);
  }

  /**
   * Holds back the actions of a resource whose write failed: as stalled until Git changes, or
   * backing off until its back-off is due. The resource gets a blocker saying so (and carrying
   * the failure), so its conditions stay what they were, not "drifted, no actions".
   */
  #gate(plan: Plan, now: number): Plan {
    return {
      ...plan,
      resources: plan.resources.map((r): ResourcePlan => {
        if (r.actions.length === 0 || r.observeOnly) return r;
        const key = resourceKey(r.resource);
        const stalled = this.#stalledAt.get(key);
        if (stalled !== undefined && stalled.revision === this.#source.revision)
          return {
            ...r,
            actions: [],
            blocker: {
              outcome: "stalled",
              reason: "ApplyFailed",
              message: `${stalled.message}; not retried until the revision in Git changes`,
              failure: stalled.message,
            },
          };
        const backoff = this.#backoff.pending(key, now);
        if (backoff !== undefined)
          return {
            ...r,
            actions: [],
            blocker: {
              outcome: "backing-off",
              reason: "RetryingAfterFailure",
              message: backoff.message,
              until: new Date(backoff.dueAt),
              failure: backoff.message,
            },
          };
        return r;
      }),
    };
  }

  #logResult(r: ActionResult): void {
    const a = r.action;
    const fields = { kind: a.resource.kind, resource: a.resource.name, action: a.type };
    this.#deps.metrics.actionApplied(a.resource.kind, metricAction(a), r.status === "applied" ? "success" : "failure");
    if (r.status === "applied") this.#deps.logger.info(fields, "applied");
    else
      this.#deps.logger.warn({ ...fields, status: r.status, outcome: r.outcome, err: r.message }, "action not applied");
  }

  /** The positive conditions (Ready, Stalled, Reconciling) as the per-resource condition metric. */
  #publishConditions(status: ResourceStatus): void {
    for (const c of status.conditions)
      if (c.type === "Ready" || c.type === "Stalled" || c.type === "Reconciling")
        this.#deps.metrics.setResourceCondition(status.kind, status.name, c.type, c.status === "True");
  }

  /** Remembers a resource's failed writes for the gate; returns when it is due again, if backing off. */
  #remember(key: string, results: readonly ActionResult[], now: number): number | undefined {
    const stalled = results.find((r) => r.status === "failed" && r.outcome === "stalled");
    const failed = results.find((r) => r.status === "failed");
    if (stalled && this.#source.revision !== undefined) {
      this.#stalledAt.set(key, { revision: this.#source.revision, message: stalled.message ?? "write refused" });
      return undefined;
    }
    if (failed) return this.#backoff.failed(key, now, failed.message ?? "write failed");
    if (results.length > 0 && results.every((r) => r.status === "applied")) {
      this.#backoff.succeeded(key);
      this.#stalledAt.delete(key);
    }
    return undefined;
  }

  /** Summarises one resource's cycle into its status, and publishes its metrics and log lines. */
  #publish(
    identity: Pick<ResourceStatus, "kind" | "name" | "dn" | "source">,
    cycle: Cycle,
    drifted: Record<ResourceKind, number>,
  ): void {
    const { kind, name } = identity;
    const previous = this.#statuses.get(kind, name);
    const summary = summarize(cycle, previous);
    if (cycle.entry.drift.size > 0) {
      drifted[kind]++;
      if (!previous?.drift.length)
        this.#deps.logger.info({ kind, resource: name, drift: summary.drift }, "drift detected");
    }
    const status = this.#statuses.update({ ...identity, ...summary }, cycle.now);
    const fixed = summary.lastDrift;
    if (fixed !== null && fixed.correctedAt === cycle.now.toISOString()) {
      // Evidence that lasts: the counter, and one warn line naming each attribute old → new
      // (values from AD and Git, never a secret: no attribute we manage holds one).
      for (const type of fixed.drift)
        if (type !== "conflict" && type !== "immutable") this.#deps.metrics.driftCorrected(kind, type);
      this.#deps.logger.warn(
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
    this.#deps.metrics.setDrift(kind, name, cycle.entry.drift);
    this.#publishConditions(status);
  }

  /** Final step: status, back-off bookkeeping and metrics, in one place. Returns the earliest waiting time. */
  #record(desired: DesiredState, pass: PassResult, now: Date): number | undefined {
    const { metrics } = this.#deps;
    const byResource = new Map<string, ActionResult[]>();
    for (const r of pass.results) {
      const key = resourceKey(r.action.resource);
      byResource.set(key, [...(byResource.get(key) ?? []), r]);
    }
    const keep = new Set<string>();
    const drifted: Record<ResourceKind, number> = {
      GroupManagedServiceAccount: 0,
      ADGroup: 0,
      HostBinding: 0,
      KdsRootKey: 0,
    };
    let nextAt: number | undefined;
    const earliest = (at: number | undefined): void => {
      if (at !== undefined) nextAt = Math.min(nextAt ?? Infinity, at);
    };
    const revision = this.#source.revision ?? null;

    for (const rp of pass.plan.resources) {
      const key = resourceKey(rp.resource);
      keep.add(key);
      const results = byResource.get(key) ?? [];
      earliest(this.#remember(key, results, now.getTime()));
      earliest(rp.blocker?.until?.getTime());
      this.#publish(
        { kind: rp.resource.kind, name: rp.resource.name, dn: rp.dn ?? null, source: sourceOf(desired, rp.resource) },
        { entry: rp, attempts: results, executed: !rp.observeOnly, revision, now },
        drifted,
      );
    }
    const enforce = this.#deps.policy.mode === "enforce";
    for (const o of pass.hosts?.bindings ?? []) {
      const name = o.plan.resource.name;
      keep.add(`HostBinding/${name}`);
      this.#publish(
        { kind: "HostBinding", name, dn: null, source: sourceOf(desired, o.plan.resource) },
        { entry: o.plan, attempts: hostAttempts(o), executed: enforce && !o.plan.observeOnly, revision, now },
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
    }
    this.#rotations.retain(keep);
    for (const h of pass.hosts?.hosts ?? []) {
      metrics.setHostReachable(h.host, h.reachable);
      if (h.error)
        this.#deps.logger.warn({ host: h.host, kind: h.error.kind, err: h.error.message }, "host not reconciled");
    }
    for (const gone of this.#statuses.retain(keep)) metrics.forgetResource(gone.kind, gone.name);
    this.#backoff.retain(keep);
    for (const key of this.#stalledAt.keys()) if (!keep.has(key)) this.#stalledAt.delete(key);

    metrics.setDriftedByKind(drifted);
    const observed = pass.observed;
    if (!observed) {
      // The agent manages only its own host's bindings and nothing in AD.
      metrics.setManagedByKind({
        GroupManagedServiceAccount: 0,
        ADGroup: 0,
        HostBinding: pass.hosts?.bindings.length ?? 0,
        KdsRootKey: 0,
      });
      return nextAt;
    }
    metrics.setManagedByKind({
      GroupManagedServiceAccount: desired.gmsas.size,
      ADGroup: desired.groups.size,
      HostBinding: desired.bindings.size,
      KdsRootKey: desired.kdsRootKey ? 1 : 0,
    });
    const kds = pass.plan.kds;
    metrics.setKdsKeyEffective(kds.effective);
    this.#kds = { effective: kds.effective, effectiveAt: kds.effectiveAt?.toISOString() ?? null };
    const observedBySam = new Map(observed.gmsas.map((g) => [g.samAccountName.toLowerCase(), g]));
    for (const g of desired.gmsas.values()) {
      const o = observedBySam.get(g.spec.accountName.toLowerCase());
      const interval = o?.passwordIntervalDays;
      metrics.setPasswordChangeAt(
        g.name,
        o?.pwdLastSet && interval ? new Date(o.pwdLastSet.getTime() + interval * 86_400_000) : undefined,
      );
      metrics.setPasswordTimes(g.name, passwordSchedule(o));
    }
    return nextAt;
  }
}

/** Where a resource is declared in the revision in force, for status. */
function sourceOf(desired: DesiredState, ref: { kind: Kind; name: string }): ResourceStatus["source"] {
  const res = resourceOf(desired, ref);
  return res ? { file: res.source.file, line: res.source.line } : null;
}
