/**
 * The controller loop: level-based reconciles of Git against AD. Every cycle re-reads the
 * source and the directory and acts on the difference, also when Git did not change, so hand
 * edits in AD are reverted (or reported, in observe mode). A cycle is a short list of named
 * steps (source → one reconcile pass → status); status and metrics are published in one place
 * at the end (publish.ts, through `summarize`).
 */
import type { DesiredState } from "../manifests/index.ts";
import { BindGuard, bindRefusal } from "./bind.ts";
import { hostMemory } from "./hosts.ts";
import { DiffMemo } from "./diff/index.ts";
import type { EarlyRead } from "./early.ts";
import { beginRead, whileReading } from "./early.ts";
import { IncrementalObserver, observerFor } from "./incremental.ts";
import { fenced } from "./lease.ts";
import type { OpenDirectory, PassResult } from "./pass.ts";
import { reconcilePass } from "./pass.ts";
import { CyclePublisher, cycleHealthy } from "./publish.ts";
import { notReadyReason } from "./cycle-outcome.ts";
import { RevisionInForce } from "./revision.ts";
import { FailureGate } from "./gate.ts";
import { Backoff, BACKOFF_BASE_MS, exponentialBackoff, jitter, JITTER_FRACTION } from "./schedule.ts";
import type { ResourceStatus } from "./status.ts";
import { StatusStore } from "./status.ts";
import { WriteLedger } from "./attribution.ts";

export type { Logger, RejectedRevision, Source, SourceStatus } from "./revision.ts";
import type { ControllerDeps, ControllerStatus } from "./deps.ts";
import type { QuietCycle } from "./quiet.ts";
import { QuietCycles } from "./quiet.ts";
export type { ControllerDeps, ControllerStatus } from "./deps.ts";
export type { DirectoryCondition } from "./bind.ts";

export { READY_FAILURE_LIMIT } from "./cycle-outcome.ts";

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
  /** Holds back the writes of resources that failed: stalled ones and those backing off. */
  readonly #gate: FailureGate;
  readonly #source: RevisionInForce;
  #lastReconcile: ControllerStatus["lastReconcile"] = null;
  #kds: ControllerStatus["kdsRootKey"] = null;
  #completed = false;
  readonly #hostMemory = hostMemory();
  readonly #bind: BindGuard;
  /** What the controller wrote itself, to tell its changes from another writer's (attribution). */
  readonly #writes = new WriteLedger();
  #consecutiveFailures = 0;
  /** Failed cycles in a row, of any cause (readiness). */
  #failedInARow = 0;
  /** True while the last cycle could not observe AD: every resource's conditions are Unknown. */
  #unobserved = false;
  readonly #observer: IncrementalObserver | undefined;
  readonly #quiet = new QuietCycles();
  /** Each resource's last diff, reused while nothing it reads changes (diff/memo.ts). */
  readonly #memo = new DiffMemo();
  /** The pass's observe step (incremental.ts). */
  readonly #observe: ReturnType<typeof observerFor>;

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#gate = new FailureGate(new Backoff(deps.random ?? Math.random));
    this.#source = new RevisionInForce(deps.source, deps.metrics, deps.logger);
    this.#publish = new CyclePublisher(this.#statuses, deps.metrics, deps.logger, deps.onStatusChange);
    this.#bind = new BindGuard(deps.metrics, deps.logger, deps.intervalMs, deps.bindBackoff);
    deps.metrics.setReconcileInterval(deps.intervalMs / 1000);
    this.#observer = deps.fullResyncMs !== undefined ? new IncrementalObserver(deps.fullResyncMs) : undefined;
    this.#observe = observerFor(this.#observer, deps.metrics, deps.logger, this.#now);
  }

  /** The bind password file changed: the next cycle (the caller triggers it) binds at once. */
  credentialsChanged(): void {
    this.#bind.credentialsChanged(this.#now().getTime());
  }

  /** Whether the DC refused the bind account and the back-off still holds (main.ts then polls the password file). */
  bindHeld(): boolean {
    return this.#bind.heldUntil(this.#now().getTime()) !== undefined;
  }

  /** What `/readyz` answers: ready once a reconcile has run to the end, until {@link notReadyReason} says otherwise. */
  ready(): boolean {
    return this.notReady() === undefined;
  }

  /** Why the controller is not ready (undefined when it is), with the last cycle's error. */
  notReady(): string | undefined {
    return notReadyReason({
      completed: this.#completed,
      unobserved: this.#unobserved,
      failedInARow: this.#failedInARow,
      error: this.#lastReconcile?.error ?? null,
    });
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
        leader: this.#deps.leadership?.status() ?? null,
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
      // AD is read for the revision in force while the source fetches (early.ts).
      const early = this.#beginRead(signal);
      // A new revision releases every resource stalled at the old one.
      if (await whileReading(early, this.#source.sync(signal))) this.#gate.newRevision();
      const desired = this.#source.desired!;
      const now = this.#now();
      // A follower observes only, so its status and metrics stay warm for a takeover.
      const write = this.#deps.leadership?.canWrite() ?? true;
      const pass = await this.#pass(desired, now, write, signal, early);
      if (this.#deps.openDirectory) this.#bind.succeeded();
      // A quiet cycle observed every resource unchanged: nothing to summarise again (quiet.ts).
      const quiet = this.#quiet.reused(pass);
      if (quiet) this.#statuses.observedAll(now);
      else this.#deps.metrics.resourcesPlanned(...this.#memo.counted());
      const cycle = quiet ?? this.#published(desired, pass, now, write);
      nextAt = cycle.nextAt;
      if (pass.afterApply) {
        this.#deps.logger.error(
          { step: pass.afterApply.step, err: message(pass.afterApply.error) },
          "reconcile stopped after apply; the host side did not run",
        );
      }
      if (!cycle.healthy) result = "partial";
      this.#consecutiveFailures = 0;
      this.#failedInARow = 0;
      this.#completed = true;
    } catch (caught) {
      result = "failure";
      if (!signal?.aborted) this.#failedInARow++;
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

  /** Step 3: status and metrics of every resource, in one place; remembered for quiet cycles. */
  #published(desired: DesiredState, pass: PassResult, now: Date, write: boolean): QuietCycle {
    const published = this.#publish.cycle({
      desired,
      pass,
      revision: this.#source.revision ?? null,
      now,
      executed: write,
      enforce: write && this.#deps.policy.mode === "enforce",
      hostTransport: this.#deps.hosts !== undefined,
      remember: (entry, attempts) => this.#gate.remember(entry, attempts, now.getTime(), this.#source.revision),
    });
    if (published.kds) this.#kds = published.kds;
    this.#gate.retain(published.keep);
    const healthy = cycleHealthy(pass, this.#statuses);
    this.#quiet.remember(
      { desired, write, pass, published, healthy },
      now.getTime(),
      this.#gate.nextDue(now.getTime()),
    );
    return { nextAt: published.nextAt, healthy };
  }

  /**
   * Step 2: the reconcile pass shared with `plan` and `apply`. When AD cannot be observed, every
   * resource's last state stops being current: its conditions become Unknown, saying why.
   */
  async #pass(
    desired: DesiredState,
    now: Date,
    write: boolean,
    loopSignal: AbortSignal | undefined,
    early: EarlyRead | undefined,
  ): Promise<PassResult> {
    const { hosts, onlyHost, baseDn, leadership } = this.#deps;
    // A leader that stops leading mid-cycle stops between two actions and skips the hosts; each
    // directory write checks the fencing deadline once more right before it is sent.
    const signal =
      write && leadership ? AbortSignal.any([leadership.fence, ...(loopSignal ? [loopSignal] : [])]) : loopSignal;
    const openDirectory = early?.open ?? this.#opener();
    try {
      const pass = await reconcilePass({
        desired,
        policy: this.#deps.policy,
        now,
        write,
        hostMemory: this.#hostMemory,
        writes: this.#writes,
        reuse: (observed) => this.#quiet.reusable(desired, observed, write, now.getTime()),
        memo: this.#memo,
        gate: (plan) => this.#gate.hold(plan, now.getTime(), this.#source.revision),
        observe: early?.observe ?? this.#observe,
        onResult: (r) => this.#publish.actionDone(r),
        ...(openDirectory ? { openDirectory } : {}),
        ...(hosts ? { hosts } : {}),
        ...(onlyHost !== undefined ? { onlyHost } : {}),
        ...(baseDn !== undefined ? { baseDn } : {}),
        ...(signal ? { signal } : {}),
      });
      this.#unobserved = false;
      // The agent observes its host, which the pass does last.
      if (!openDirectory) this.#deps.metrics.observedAt(this.#now());
      return pass;
    } catch (caught) {
      // A cycle that failed half-way may have missed changes: start over from a full read.
      this.#observer?.reset();
      this.#quiet.forget();
      if (!loopSignal?.aborted) {
        this.#unobserved = true;
        const why = `not observed: ${message(caught)}`;
        this.#bind.unobserved(caught);
        for (const status of this.#statuses.markUnknown("ObservationFailed", why, now))
          this.#publish.conditions(status);
      }
      throw caught;
    }
  }

  /** The directory opener; with leader election, its writes are fenced by the lease (lease.ts). */
  #opener(): OpenDirectory | undefined {
    const { openDirectory, leadership } = this.#deps;
    return openDirectory && leadership ? fenced(openDirectory, leadership) : openDirectory;
  }

  /** Step 1's companion: AD read for the revision in force while the source syncs, when there is one. */
  #beginRead(signal: AbortSignal | undefined): EarlyRead | undefined {
    const open = this.#opener();
    const previous = this.#source.desired;
    return open && previous
      ? beginRead(
          { open, desired: previous, baseDn: this.#deps.baseDn, observe: this.#observe, observer: this.#observer },
          signal,
        )
      : undefined;
  }

  /** The delay until the next cycle: the bind hold, the failure back-off, or the interval cut short by what is due. */
  #nextDelay(nextAt: number | undefined): number {
    const now = this.#now().getTime();
    const held = this.#bind.heldUntil(now);
    if (held !== undefined) return Math.max(MIN_DELAY_MS, held - now);
    if (this.#consecutiveFailures > 0) {
      const backoff = exponentialBackoff(this.#consecutiveFailures, BACKOFF_BASE_MS, this.#deps.intervalMs);
      return Math.max(MIN_DELAY_MS, backoff);
    }
    let delay = jitter(this.#deps.intervalMs, this.#deps.jitterFraction ?? JITTER_FRACTION, this.#deps.random);
    const due = this.#gate.nextDue(now);
    for (const at of [due, nextAt]) if (at !== undefined) delay = Math.min(delay, at - now);
    return Math.max(MIN_DELAY_MS, delay);
  }
}
