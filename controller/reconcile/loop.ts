/**
 * The controller loop: level-based reconciles of Git against AD. Every cycle re-reads the
 * source and the directory and acts on the difference, also when Git did not change, so hand
 * edits in AD are reverted (or reported, in observe mode). A cycle is a short list of named
 * steps; status and metrics are summarised in one place at the end.
 */
import type { LdapDirectory } from "../directory/index.ts";
import { directoryWriter } from "../directory/index.ts";
import type { DesiredState, ManifestError } from "../manifests/index.ts";
import { parseManifests } from "../manifests/index.ts";
import type { ActionType, MetricsRecorder, ResourceKind } from "../metrics/index.ts";
import type { Snapshot } from "../source/index.ts";
import { jitter, SourceError } from "../source/index.ts";
import type { ActionResult } from "./apply.ts";
import { applyPlan } from "./apply.ts";
import type { Action, Kind, ObservedDirectory, Plan, ResourcePlan } from "./model.ts";
import type { HostBindingOutcome, HostOutcome, HostSettings } from "./hosts.ts";
import { hostConditions, hostMemory, reconcileHosts } from "./hosts.ts";
import { observeDirectory } from "./observe.ts";
import type { Policy } from "./plan.ts";
import { planDirectory } from "./plan.ts";
import type { ResourceStatus } from "./status.ts";
import { conditionsFor, StatusStore } from "./status.ts";

/** The logger the loop writes to (pino's shape). Never given a secret. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Where manifests come from: a Git branch or a local folder. */
export interface Source {
  sync(signal?: AbortSignal): Promise<Snapshot>;
  /** Shown in status and the source info metric; never holds credentials. */
  readonly url: string;
}

/** Everything the loop needs, passed in (STYLE.md: no singletons). */
export interface ControllerDeps {
  readonly source: Source;
  /** Opens a bound LDAP connection; absent for the host agent, which never talks to AD. */
  readonly openDirectory?: (signal?: AbortSignal) => Promise<LdapDirectory>;
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
  /** Called after every status update (each resource, each cycle) with the status before it; must not throw. */
  readonly onStatusChange?: (previous: ResourceStatus | undefined, next: ResourceStatus) => void;
}

/** Why the revision in force is not the newest one. */
export interface RejectedRevision {
  readonly revision: string;
  readonly reason: "ValidationFailed" | "Unverified";
  readonly message: string;
  readonly errors: readonly ManifestError[];
}

/** The controller's own status, beside the resources'. */
export interface ControllerStatus {
  readonly source: {
    readonly url: string;
    readonly revision: string | null;
    readonly lastFetchedAt: string | null;
    readonly lastFetchError: string | null;
    readonly rejected: RejectedRevision | null;
  };
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
const BACKOFF_MAX_MS = 5 * 60_000;

/** Exponential backoff per key, with jitter; forgets a key on success. */
class Backoff {
  readonly #state = new Map<string, { failures: number; dueAt: number }>();
  readonly #random: () => number;
  constructor(random: () => number) {
    this.#random = random;
  }

  due(key: string, now: number): boolean {
    const s = this.#state.get(key);
    return s === undefined || s.dueAt <= now;
  }
  failed(key: string, now: number): void {
    const failures = (this.#state.get(key)?.failures ?? 0) + 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
    this.#state.set(key, { failures, dueAt: now + jitter(delay, 0.2, this.#random) });
  }
  succeeded(key: string): void {
    this.#state.delete(key);
  }
  nextDue(now: number): number | undefined {
    let next: number | undefined;
    for (const s of this.#state.values()) if (s.dueAt > now && (next === undefined || s.dueAt < next)) next = s.dueAt;
    return next;
  }
}

/** What the AD half of a cycle saw and did. */
interface AdRun {
  readonly observed: ObservedDirectory;
  readonly plan: Plan;
  readonly results: readonly ActionResult[];
}

const keyOf = (r: { kind: Kind; name: string }): string => `${r.kind}/${r.name}`;

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
  /** Resources whose apply failed as stalled, with the revision it failed at: no retry before Git changes. */
  readonly #stalledAt = new Map<string, string>();
  #desired: DesiredState | undefined;
  #revision: string | undefined;
  #lastSeenRevision: string | undefined;
  #rejected: RejectedRevision | undefined;
  #lastFetchedAt: Date | undefined;
  #lastFetchError: string | undefined;
  #lastReconcile: ControllerStatus["lastReconcile"] = null;
  #kds: ControllerStatus["kdsRootKey"] = null;
  #completed = false;
  readonly #hostMemory = hostMemory();
  #consecutiveFailures = 0;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#backoff = new Backoff(deps.random ?? Math.random);
  }

  /** True once one reconcile has run to the end (success or partial). */
  ready(): boolean {
    return this.#completed;
  }

  /** The JSON /api/status serves. */
  status(): { controller: ControllerStatus; resources: ResourceStatus[] } {
    return {
      controller: {
        source: {
          url: this.#deps.source.url,
          revision: this.#revision ?? null,
          lastFetchedAt: this.#lastFetchedAt?.toISOString() ?? null,
          lastFetchError: this.#lastFetchError ?? null,
          rejected: this.#rejected ?? null,
        },
        mode: this.#deps.policy.mode,
        lastReconcile: this.#lastReconcile,
        kdsRootKey: this.#kds,
      },
      resources: this.#statuses.all(),
    };
  }

  /** Runs one cycle: source → revision → observe → plan → apply → status. Returns the next delay in ms. */
  async reconcile(signal?: AbortSignal): Promise<number> {
    const started = this.#now();
    const t0 = performance.now();
    let result: "success" | "failure" | "partial" = "success";
    let error: string | null = null;
    let nextAt: number | undefined;
    try {
      await this.#syncSource(signal);
      const desired = this.#desired;
      if (!desired) throw new Error("no valid revision has been loaded yet");
      const now = this.#now();
      let ad: AdRun | undefined;
      if (this.#deps.openDirectory) {
        const dir = await this.#deps.openDirectory(signal);
        try {
          const rootDse = await dir.rootDse();
          const observed = await observeDirectory(desired, dir, {
            baseDn: this.#deps.baseDn ?? rootDse.defaultNamingContext,
            configDn: rootDse.configurationNamingContext,
          });
          const plan = this.#gate(planDirectory(desired, observed, this.#deps.policy, now), now.getTime());
          const applied = await applyPlan(plan, directoryWriter(dir), {
            now,
            ...(signal ? { signal } : {}),
            onResult: (r) => this.#logResult(r),
          });
          ad = { observed, plan, results: applied.results };
          if (applied.results.some((r) => r.status !== "applied") || applied.aborted) result = "partial";
        } finally {
          await dir.close();
        }
      }
      const only = this.#deps.onlyHost?.toLowerCase();
      const hostRun =
        this.#deps.hosts && !signal?.aborted
          ? await reconcileHosts(
              desired,
              ad?.observed,
              ad?.plan,
              this.#deps.policy.mode === "observe" ? "observe" : "apply",
              this.#deps.policy.mode,
              this.#deps.hosts,
              this.#hostMemory,
              {
                now,
                ...(signal ? { signal } : {}),
                ...(only !== undefined ? { only: (host: string) => host.toLowerCase() === only } : {}),
              },
            )
          : undefined;
      nextAt = this.#record(desired, ad, now, hostRun);
      if (hostRun?.hosts.some((h) => !h.reachable)) result = "partial";
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

  /** Step 1: fetch the source; load a new revision, or keep the last good one and say why. */
  async #syncSource(signal?: AbortSignal): Promise<void> {
    const { metrics, logger, source } = this.#deps;
    let snapshot: Snapshot;
    try {
      snapshot = await source.sync(signal);
    } catch (caught) {
      // An aborted sync is the controller stopping, not the source failing.
      if (signal?.aborted) throw caught;
      if (caught instanceof SourceError && caught.kind === "verify" && caught.revision !== undefined) {
        if (this.#rejected?.revision !== caught.revision) {
          metrics.revisionRejected("unverified");
          logger.warn(
            { revision: caught.revision, reason: caught.reason },
            "revision refused: signature not verified; the last good revision stays in force",
          );
        }
        this.#rejected = { revision: caught.revision, reason: "Unverified", message: caught.message, errors: [] };
      } else {
        metrics.fetchFailed(caught instanceof SourceError && caught.kind === "verify" ? "verify" : "network");
        this.#lastFetchError = message(caught);
        logger.warn({ err: this.#lastFetchError }, "source sync failed; the last good revision stays in force");
        if (this.#desired === undefined) throw caught;
      }
      metrics.setLastGoodRevisionInForce(this.#rejected !== undefined);
      return;
    }
    this.#lastFetchedAt = this.#now();
    this.#lastFetchError = undefined;
    metrics.fetchSucceeded(this.#lastFetchedAt);
    if (snapshot.revision !== this.#lastSeenRevision) {
      this.#lastSeenRevision = snapshot.revision;
      const loaded = parseManifests(snapshot.files);
      if (loaded.ok) {
        this.#desired = loaded.desired;
        this.#revision = snapshot.revision;
        this.#rejected = undefined;
        this.#stalledAt.clear();
        metrics.sourceRevision(snapshot.revision, source.url);
        logger.info({ revision: snapshot.revision, files: loaded.files }, "new revision loaded");
      } else {
        this.#rejected = {
          revision: snapshot.revision,
          reason: "ValidationFailed",
          message: `${loaded.errors.length} error(s) in the manifests`,
          errors: loaded.errors.slice(0, 50),
        };
        metrics.revisionRejected("invalid");
        logger.warn(
          {
            revision: snapshot.revision,
            errors: loaded.errors.slice(0, 10).map((e) => `${e.file}:${e.line}:${e.column}: ${e.message}`),
          },
          "revision rejected: invalid manifests; the last good revision stays in force",
        );
      }
    }
    metrics.setLastGoodRevisionInForce(this.#rejected !== undefined);
  }

  /** Drops actions of resources waiting for their backoff, or stalled until Git changes. */
  #gate(plan: Plan, now: number): Plan {
    return {
      ...plan,
      resources: plan.resources.map((r): ResourcePlan => {
        const key = keyOf(r.resource);
        if (r.actions.length === 0) return r;
        if (this.#stalledAt.get(key) === this.#revision)
          return { ...r, actions: [], notes: [...r.notes, "stalled at this revision: waits for a change in Git"] };
        if (!this.#backoff.due(key, now))
          return { ...r, actions: [], notes: [...r.notes, "backing off after a failure"] };
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

  #recordHost(
    o: HostBindingOutcome,
    keep: Set<string>,
    drifted: Record<ResourceKind, number>,
    desired: DesiredState,
    now: Date,
  ): void {
    const { metrics } = this.#deps;
    const name = o.plan.resource.name;
    keep.add(`HostBinding/${name}`);
    if (o.plan.drift.size > 0) drifted.HostBinding++;
    const applied = this.#deps.policy.mode === "enforce" && !o.plan.observeOnly;
    const previous = this.#statuses.get("HostBinding", name);
    const res = desired.bindings.get(name);
    const clean = !o.error && !o.plan.blocker && o.plan.notes.length === 0 && (applied || o.plan.drift.size === 0);
    const status = this.#statuses.update(
      {
        kind: "HostBinding",
        name,
        dn: null,
        source: res ? { file: res.source.file, line: res.source.line } : null,
        conditions: hostConditions(o, applied),
        drift: [...o.plan.drift].sort(),
        changes: o.plan.changes,
        observeOnly: o.plan.observeOnly,
        lastAppliedRevision: clean ? (this.#revision ?? null) : (previous?.lastAppliedRevision ?? null),
        lastObservedAt: now.toISOString(),
      },
      now,
    );
    this.#deps.onStatusChange?.(previous, status);
    metrics.setDrift("HostBinding", name, o.plan.drift);
    if (o.retrievable) metrics.setHostRetrievable(o.host, o.account, o.retrievable);
    this.#publishConditions(status);
  }

  /** The positive conditions (Ready, Stalled, Reconciling) as the per-resource condition metric. */
  #publishConditions(status: ResourceStatus): void {
    for (const c of status.conditions)
      if (c.type === "Ready" || c.type === "Stalled" || c.type === "Reconciling")
        this.#deps.metrics.setResourceCondition(status.kind, status.name, c.type, c.status === "True");
  }

  /** Final step: status, backoff bookkeeping and metrics, in one place. Returns the earliest waiting time. */
  #record(
    desired: DesiredState,
    ad: AdRun | undefined,
    now: Date,
    hostRun?: { bindings: HostBindingOutcome[]; hosts: HostOutcome[] },
  ): number | undefined {
    const { metrics } = this.#deps;
    const plan: Plan = ad?.plan ?? { resources: [], kds: { effective: false }, notes: [] };
    const results = ad?.results ?? [];
    const byResource = new Map<string, ActionResult[]>();
    for (const r of results) {
      const key = keyOf(r.action.resource);
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
    const sourceOf = (kind: Kind, name: string) => {
      const res =
        kind === "GroupManagedServiceAccount"
          ? desired.gmsas.get(name)
          : kind === "ADGroup"
            ? desired.groups.get(name)
            : kind === "KdsRootKey" && desired.kdsRootKey?.name === name
              ? desired.kdsRootKey
              : undefined;
      return res ? { file: res.source.file, line: res.source.line } : null;
    };

    for (const rp of plan.resources) {
      const key = keyOf(rp.resource);
      keep.add(key);
      const rs = byResource.get(key) ?? [];
      for (const r of rs) {
        if (r.status === "failed" && r.outcome === "stalled" && this.#revision)
          this.#stalledAt.set(key, this.#revision);
        else if (r.status === "failed") this.#backoff.failed(key, now.getTime());
      }
      if (rs.length > 0 && rs.every((r) => r.status === "applied")) this.#backoff.succeeded(key);
      if (rp.blocker?.until) nextAt = Math.min(nextAt ?? Infinity, rp.blocker.until.getTime());
      if (rp.drift.size > 0) {
        drifted[rp.resource.kind]++;
        if (!this.#statuses.get(rp.resource.kind, rp.resource.name)?.drift.length)
          this.#deps.logger.info(
            { kind: rp.resource.kind, resource: rp.resource.name, drift: [...rp.drift] },
            "drift detected",
          );
      }
      const previous = this.#statuses.get(rp.resource.kind, rp.resource.name);
      const clean = !rp.blocker && rs.every((r) => r.status === "applied") && !(rp.drift.size > 0 && rp.observeOnly);
      const status = this.#statuses.update(
        {
          kind: rp.resource.kind,
          name: rp.resource.name,
          dn: rp.dn ?? null,
          source: sourceOf(rp.resource.kind, rp.resource.name),
          conditions: conditionsFor(rp, rs, !rp.observeOnly),
          drift: [...rp.drift].sort(),
          changes: rp.changes,
          observeOnly: rp.observeOnly,
          lastAppliedRevision: clean ? (this.#revision ?? null) : (previous?.lastAppliedRevision ?? null),
          lastObservedAt: now.toISOString(),
        },
        now,
      );
      this.#deps.onStatusChange?.(previous, status);
      metrics.setDrift(rp.resource.kind, rp.resource.name, rp.drift);
      this.#publishConditions(status);
    }
    for (const o of hostRun?.bindings ?? []) this.#recordHost(o, keep, drifted, desired, now);
    for (const h of hostRun?.hosts ?? []) {
      metrics.setHostReachable(h.host, h.reachable);
      if (h.error)
        this.#deps.logger.warn({ host: h.host, kind: h.error.kind, err: h.error.message }, "host not reconciled");
    }
    for (const gone of this.#statuses.retain(keep)) metrics.forgetResource(gone.kind, gone.name);

    metrics.setDriftedByKind(drifted);
    if (!ad) {
      // The agent manages only its own host's bindings and nothing in AD.
      metrics.setManagedByKind({
        GroupManagedServiceAccount: 0,
        ADGroup: 0,
        HostBinding: hostRun?.bindings.length ?? 0,
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
    metrics.setKdsKeyEffective(plan.kds.effective);
    this.#kds = { effective: plan.kds.effective, effectiveAt: plan.kds.effectiveAt?.toISOString() ?? null };
    const observedBySam = new Map(ad.observed.gmsas.map((g) => [g.samAccountName.toLowerCase(), g]));
    for (const g of desired.gmsas.values()) {
      const o = observedBySam.get(g.spec.accountName.toLowerCase());
      const interval = o?.passwordIntervalDays;
      metrics.setPasswordChangeAt(
        g.name,
        o?.pwdLastSet && interval ? new Date(o.pwdLastSet.getTime() + interval * 86_400_000) : undefined,
      );
    }
    return nextAt;
  }
}
