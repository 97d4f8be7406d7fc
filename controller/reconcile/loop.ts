/**
 * The controller loop: level-based reconciles of Git against AD. Every cycle re-reads the
 * source and the directory and acts on the difference, also when Git did not change, so hand
 * edits in AD are reverted (or reported, in observe mode). A cycle is a short list of named
 * steps (source → one reconcile pass → status); status and metrics are published in one place
 * at the end (publish.ts, through `summarize`).
 */
import type { DesiredState } from "../manifests/index.ts";
import type { MetricsRecorder } from "../metrics/index.ts";
import { resourceKey } from "../vocabulary.ts";
import type { BindBackoffOptions, DirectoryCondition } from "./bind.ts";
import { BindGuard, bindRefusal } from "./bind.ts";
import type { HostSettings } from "./hosts.ts";
import { hostMemory } from "./hosts.ts";
import type { Plan, ResourcePlan } from "./model.ts";
import type { OpenDirectory, PassResult } from "./pass.ts";
import { reconcilePass } from "./pass.ts";
import type { Policy } from "./plan.ts";
import { CyclePublisher, cycleHealthy } from "./publish.ts";
import type { Logger, Source, SourceStatus } from "./revision.ts";
import { RevisionInForce } from "./revision.ts";
import { Backoff, BACKOFF_BASE_MS, exponentialBackoff, jitter, JITTER_FRACTION } from "./schedule.ts";
import type { Attempt, ResourceStatus } from "./status.ts";
import { StatusStore } from "./status.ts";
import { WriteLedger } from "./attribution.ts";

export type { Logger, RejectedRevision, Source, SourceStatus } from "./revision.ts";
export type { DirectoryCondition } from "./bind.ts";

/** Everything the loop needs, passed in: no module-level singletons, so tests pass fakes. */
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
  /** Called after every status update (each resource, each cycle) with the status before it; must not throw. */
  readonly onStatusChange?: (previous: ResourceStatus | undefined, next: ResourceStatus) => void;
  /** Back-off after the DC refused the bind account's credentials (defaults in bind.ts). */
  readonly bindBackoff?: BindBackoffOptions;
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
  /** Null for the host agent, which never talks to AD. */
  readonly directory: DirectoryCondition | null;
}

const MIN_DELAY_MS = 1_000;

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
  readonly #publish: CyclePublisher;
  readonly #backoff: Backoff;
  /** Resources whose write failed as stalled, with the revision it failed at: no retry before Git changes. */
  readonly #stalledAt = new Map<string, { readonly revision: string; readonly message: string }>();
  readonly #source: RevisionInForce;
  #lastReconcile: ControllerStatus["lastReconcile"] = null;
  #kds: ControllerStatus["kdsRootKey"] = null;
  #completed = false;
  readonly #hostMemory = hostMemory();
  readonly #bind: BindGuard;
  /** What the controller wrote itself, to tell its changes from another writer's (attribution). */
  readonly #writes = new WriteLedger();
  #consecutiveFailures = 0;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#backoff = new Backoff(deps.random ?? Math.random);
    this.#source = new RevisionInForce(deps.source, deps.metrics, deps.logger, this.#now);
    this.#publish = new CyclePublisher(this.#statuses, deps.metrics, deps.logger, deps.onStatusChange);
    this.#bind = new BindGuard(deps.metrics, deps.logger, deps.intervalMs, deps.bindBackoff);
  }

  /** The bind password file changed: the next cycle (the caller triggers it) binds at once. */
  credentialsChanged(): void {
    this.#bind.credentialsChanged(this.#now().getTime());
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
        directory: this.#deps.openDirectory ? this.#bind.condition() : null,
      },
      resources: this.#statuses.all(),
    };
  }

  /** Runs one cycle: source → revision → one reconcile pass → status. Returns the next delay in ms. */
  async reconcile(signal?: AbortSignal): Promise<number> {
    // While the DC refuses the bind account, no cycle binds before the back-off ends (a new
    // password file does shorten it: credentialsChanged).
    const heldUntil = this.#bind.heldUntil(this.#now().getTime());
    if (heldUntil !== undefined) return Math.max(MIN_DELAY_MS, heldUntil - this.#now().getTime());
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
      if (this.#deps.openDirectory) this.#bind.succeeded();
      const published = this.#publish.cycle({
        desired,
        pass,
        revision: this.#source.revision ?? null,
        now,
        enforce: this.#deps.policy.mode === "enforce",
        remember: (entry, attempts) => this.#remember(entry, attempts, now.getTime()),
      });
      nextAt = published.nextAt;
      if (published.kds) this.#kds = published.kds;
      this.#backoff.retain(published.keep);
      for (const key of this.#stalledAt.keys()) if (!published.keep.has(key)) this.#stalledAt.delete(key);
      if (pass.afterApply) {
        this.#deps.logger.error(
          { step: pass.afterApply.step, err: message(pass.afterApply.error) },
          "reconcile stopped after apply; the host side did not run",
        );
      }
      if (!cycleHealthy(pass, this.#statuses)) result = "partial";
      this.#consecutiveFailures = 0;
      this.#completed = true;
    } catch (caught) {
      result = "failure";
      if (signal?.aborted) {
        // Stopping (SIGTERM) cut this cycle short: not a failure of Git or AD, so no error
        // line on every clean shutdown and no backoff.
        error = "interrupted: stopping";
        this.#deps.logger.info({}, "reconcile interrupted: stopping");
      } else if (bindRefusal(caught) !== undefined) {
        error = message(caught);
        nextAt = this.#bind.failed(bindRefusal(caught)!, caught, this.#now().getTime());
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
        onResult: (r) => this.#publish.actionDone(r),
        ...(openDirectory ? { openDirectory } : {}),
        ...(hosts ? { hosts } : {}),
        ...(onlyHost !== undefined ? { onlyHost } : {}),
        ...(baseDn !== undefined ? { baseDn } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (caught) {
      if (!signal?.aborted) {
        const why = `not observed: ${message(caught)}`;
        for (const status of this.#statuses.markUnknown("ObservationFailed", why, now))
          this.#publish.conditions(status);
      }
      throw caught;
    }
  }

  #nextDelay(nextAt: number | undefined): number {
    const now = this.#now().getTime();
    const held = this.#bind.heldUntil(now);
    if (held !== undefined) return Math.max(MIN_DELAY_MS, held - now);
    if (this.#consecutiveFailures > 0) {
      const backoff = exponentialBackoff(this.#consecutiveFailures, BACKOFF_BASE_MS, this.#deps.intervalMs);
      return Math.max(MIN_DELAY_MS, backoff);
    }
    let delay = jitter(this.#deps.intervalMs, this.#deps.jitterFraction ?? JITTER_FRACTION, this.#deps.random);
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

  /**
   * Remembers a resource's failed writes for the gate; returns when it is due again, if backing
   * off. A resource whose writes all went through, or that is in sync again without any (a person
   * fixed AD by hand), is forgotten: a later drift at the same revision is corrected at once.
   */
  #remember(entry: ResourcePlan, attempts: readonly Attempt[], now: number): number | undefined {
    const key = resourceKey(entry.resource);
    const stalled = attempts.find((r) => r.status === "failed" && r.outcome === "stalled");
    const failed = attempts.find((r) => r.status === "failed");
    if (stalled && this.#source.revision !== undefined) {
      this.#stalledAt.set(key, { revision: this.#source.revision, message: stalled.message ?? "write refused" });
      return undefined;
    }
    if (failed) return this.#backoff.failed(key, now, failed.message ?? "write failed");
    const inSync = attempts.length === 0 && entry.drift.size === 0 && entry.blocker === undefined;
    if (inSync || (attempts.length > 0 && attempts.every((r) => r.status === "applied"))) {
      this.#backoff.succeeded(key);
      this.#stalledAt.delete(key);
    }
    return undefined;
  }
}
