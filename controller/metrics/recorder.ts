/**
 * The controller's Prometheus metrics: one private registry, written only through a recorder
 * whose methods are named for what they record (after fluxcd/pkg runtime/metrics).
 *
 * Every label value comes from a bounded set: a kind, a resource name from the repository,
 * a host or account named by the repository, or a member of a closed string union. Error
 * text, DNs of unmanaged objects and revisions never become free labels; the current
 * revision lives in an info metric whose single series is replaced, not accumulated.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { redact } from "../redact.ts";
import { DRIFT_TYPES, KINDS, METRIC_CONDITIONS } from "../vocabulary.ts";
import { NamedValueGauge, ResourceStateGauge } from "./resource-gauge.ts";
import type { DriftType, Kind, MetricCondition } from "../vocabulary.ts";

/** The closed set of drift types (vocabulary.ts), the only values of the `drift_type` label. */
export type { DriftType } from "../vocabulary.ts";

const hostDriftTypes: readonly DriftType[] = DRIFT_TYPES.filter((t) => t.startsWith("host-"));

/**
 * The drift types that can occur for each kind. `setDrift` writes a 0 or 1 for each of them,
 * so a dashboard or alert sees an explicit 0 rather than a missing series.
 */
export const driftTypesByKind: Readonly<Record<Kind, readonly DriftType[]>> = {
  GroupManagedServiceAccount: [
    "missing",
    "attribute",
    "principals",
    "encryption",
    "spn",
    "delegation",
    "immutable",
    "conflict",
    "unexpected",
  ],
  ADGroup: ["missing", "attribute", "membership", "conflict", "unexpected"],
  HostBinding: hostDriftTypes,
  KdsRootKey: ["missing"],
  // The computer link (msDS-HostServiceAccount) is the sMSA's "who may use it": principals.
  ManagedServiceAccount: ["missing", "attribute", "principals", "encryption", "spn", "conflict", "unexpected"],
};

/** How one reconcile ended: every resource fine, none fine, or some of each. */
export type ReconcileResult = "success" | "failure" | "partial";
/** What an applied action did, in the coarse, bounded terms a metric label needs. */
export type ActionType = "create" | "update" | "delete" | "add-member" | "remove-member";

/**
 * The directory actions apply can take per kind; the recorder starts these series at 0 and no
 * others. Host bindings are changed by the host script, whose changes this counter does not count.
 */
export const actionTypesByKind: Readonly<Record<Kind, readonly ActionType[]>> = {
  GroupManagedServiceAccount: ["create", "update", "delete"],
  ADGroup: ["create", "update", "add-member", "remove-member", "delete"],
  HostBinding: [],
  KdsRootKey: ["create"],
  ManagedServiceAccount: ["create", "update", "delete"],
};
/** Whether an action or operation succeeded. */
export type OperationResult = "success" | "failure";
/** Why fetching the Git source failed: the remote, the signature check, or our side (a damaged clone, a bad path). */
export type FetchFailureReason = "network" | "verify" | "other";
/** Why the directory refused the bind account: a wrong password (LDAP 49, data 52e) or a locked account (data 775). */
export type BindFailureReason = "InvalidCredentials" | "AccountLocked";
/** Why a fetched revision was not put in force. */
export type RevisionRejectReason = "invalid" | "unverified";
/** The LDAP operations the directory client times. */
export type LdapOperation = "search" | "add" | "modify" | "delete" | "bind";
/** Whether a host can retrieve a gMSA's password; `pending` is a host newly added to a group awaiting a fresh Kerberos ticket. */
export type RetrievableState = "yes" | "no" | "pending";

// Reported but never "fixed": a conflict is an object the controller does not own, and an
// immutable change needs an explicit replace. Their correction counters would stay 0 for ever.
const neverCorrected: ReadonlySet<DriftType> = new Set<DriftType>(["conflict", "immutable"]);

const reconcileResults: readonly ReconcileResult[] = ["success", "failure", "partial"];
const operationResults: readonly OperationResult[] = ["success", "failure"];
const fetchFailureReasons: readonly FetchFailureReason[] = ["network", "verify", "other"];
const revisionRejectReasons: readonly RevisionRejectReason[] = ["invalid", "unverified"];
const bindFailureReasons: readonly BindFailureReason[] = ["InvalidCredentials", "AccountLocked"];
const retrievableStates: readonly RetrievableState[] = ["yes", "no", "pending"];

/** Metric names share this prefix. */
export const metricPrefix = "gmsa_gitops_";

/**
 * Records what the controller does and sees. Each method writes one concept; all of them
 * are cheap, synchronous and never throw for values of their declared types (a name that
 * looks like a DN or free text is refused with a RangeError: a programming error).
 */
export interface MetricsRecorder {
  /** The private registry (for tests and for the HTTP server). */
  readonly registry: Registry;
  /** Content type of `metricsChunks()` (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** One reconcile ended: `gmsa_gitops_reconcile_duration_seconds` and `gmsa_gitops_reconciles_total{result}`. */
  reconcileFinished(seconds: number, result: ReconcileResult): void;
  /**
   * The drift of one resource: `gmsa_gitops_resource_drift{kind,name,drift_type}` is 1 for each
   * type in `drifts` and 0 for every other type relevant to the kind. A resource that has never
   * drifted has no series (absent means no drift), which keeps the scrape small.
   */
  setDrift(kind: Kind, name: string, drifts: ReadonlySet<DriftType>): void;
  /**
   * One drift of this type on a resource of this kind was corrected:
   * `gmsa_gitops_drift_corrections_total{kind,drift_type}`. Unlike `resource_drift`, which is 1
   * only until the fix, the count survives, so drift that keeps coming back (a script, a GPO or
   * a person undoing Git) shows as a rising rate.
   */
  driftCorrected(kind: Kind, driftType: DriftType): void;
  /** Removes every per-resource series (drift, conditions, password countdown) of a resource that left the repository. */
  forgetResource(kind: Kind, name: string): void;
  /** `gmsa_gitops_drifted_resources{kind}`: resources with any drift, per kind. */
  setDriftedByKind(counts: Readonly<Record<Kind, number>>): void;
  /** `gmsa_gitops_managed_resources{kind}`: resources in the revision in force, per kind. */
  setManagedByKind(counts: Readonly<Record<Kind, number>>): void;
  /** `gmsa_gitops_actions_total{kind,action,result}`. */
  actionApplied(kind: Kind, action: ActionType, result: OperationResult): void;
  /** `gmsa_gitops_source_info{revision,url} 1`: exactly one series, replaced when the revision or URL changes. Credentials in the URL are removed by the shared `redact` (userinfo, credential parameters). */
  sourceRevision(revision: string, url: string): void;
  /** `gmsa_gitops_source_last_fetch_timestamp_seconds` (0 until the first successful fetch). */
  fetchSucceeded(at: Date): void;
  /** `gmsa_gitops_source_fetch_failures_total{reason}`. */
  fetchFailed(reason: FetchFailureReason): void;
  /**
   * The DC refused the bind account: `gmsa_gitops_directory_bind_failures_total{reason}`, and
   * `gmsa_gitops_directory_bind_backoff_seconds`, how long the controller now waits before it
   * binds again (0 once a bind succeeds: see `directoryBound`).
   */
  directoryBindFailed(reason: BindFailureReason, backoffSeconds: number): void;
  /** A bind succeeded: the back-off gauge returns to 0. */
  directoryBound(): void;
  /** `gmsa_gitops_source_revision_rejected_total{reason}`. */
  revisionRejected(reason: RevisionRejectReason): void;
  /** `gmsa_gitops_source_stale`: 1 while a newer revision is rejected and the last good one stays in force. */
  setLastGoodRevisionInForce(stale: boolean): void;
  /** `gmsa_gitops_last_successful_reconcile_timestamp_seconds` (0 until the first success). */
  reconcileSucceededAt(at: Date): void;
  /**
   * `gmsa_gitops_last_observed_timestamp_seconds`: a cycle read AD (the agent: its host) to the
   * end, the moment every resource's `lastObservedAt` is current again (0 until the first).
   */
  observedAt(at: Date): void;
  /** `gmsa_gitops_reconcile_interval_seconds`: the configured interval, the scale for staleness alerts. */
  setReconcileInterval(seconds: number): void;
  /** `gmsa_gitops_ldap_operation_duration_seconds{operation,result}`. */
  ldapOperation(op: LdapOperation, seconds: number, ok: boolean): void;
  /** `gmsa_gitops_kds_root_key_effective` 1/0; absent until first known, so a fresh controller does not look broken. */
  setKdsKeyEffective(effective: boolean): void;
  /**
   * `gmsa_gitops_leader` 1 while this replica holds the lease and may write, 0 otherwise; each
   * change counts in `gmsa_gitops_leader_transitions_total{to="leader|follower"}`.
   */
  setLeader(leader: boolean): void;
  /** `gmsa_gitops_ldap_entries_read_total{mode}`: entries one observe of AD returned, full or incremental. */
  ldapEntriesRead(mode: "full" | "incremental", entries: number): void;
  /**
   * `gmsa_gitops_plan_resources_total{mode}`: resources one plan diffed afresh (`diffed`) or took
   * unchanged from the last plan because nothing they read changed (`reused`).
   */
  resourcesPlanned(diffed: number, reused: number): void;
  /**
   * `gmsa_gitops_gmsa_next_password_change_seconds{name}`: seconds until `at`, the moment the
   * password is due to change, evaluated at scrape time (so it stays right between
   * reconciles); negative once overdue. `undefined` removes it.
   */
  setPasswordChangeAt(account: string, at: Date | undefined): void;
  /**
   * `gmsa_gitops_password_last_change_timestamp_seconds{name}` and
   * `gmsa_gitops_password_next_change_timestamp_seconds{name}`: pwdLastSet, and pwdLastSet plus
   * the interval. `undefined` removes both (no password generated yet, or the gMSA is gone).
   */
  setPasswordTimes(account: string, times: { readonly last: Date; readonly next: Date } | undefined): void;
  /**
   * `gmsa_gitops_host_password_retrieval_around_rotation{host,account,when}`: 1 when the host
   * could retrieve the password at its last check before (`when="before"`) or since
   * (`when="after"`) the last rotation, 0 when it could not; absent while not known.
   */
  setRetrievalAroundRotation(
    host: string,
    account: string,
    around: { readonly before: boolean | undefined; readonly after: boolean | undefined },
  ): void;
  /** `gmsa_gitops_host_reachable{host}` 1/0. */
  setHostReachable(host: string, reachable: boolean): void;
  /** `gmsa_gitops_host_password_retrievable{host,account,state}`: a state set, 1 for the current state and 0 for the others. */
  setHostRetrievable(host: string, account: string, state: RetrievableState): void;
  /** Removes the series of one host/account pair from `gmsa_gitops_host_password_retrievable`. */
  forgetHostRetrievable(host: string, account: string): void;
  /** Removes every series of a host that no binding names any more. */
  forgetHost(host: string): void;
  /**
   * `gmsa_gitops_resource_condition{kind,name,type}` 1/0. ApplyFailed, a condition present only
   * while true, gets its series the first time it is true (false before that records nothing).
   */
  setResourceCondition(kind: Kind, name: string, condition: MetricCondition, status: boolean): void;
  /**
   * The exposition text of the registry in pieces of about 64 KiB, produced as they are read: a
   * scrape of 50,000 resources never exists as one string (the HTTP server writes it as it comes).
   */
  metricsChunks(): AsyncGenerator<string>;
}

/** Options of `createMetricsRecorder`. */
export interface MetricsRecorderOptions {
  /** Also collect prom-client's default process and Node.js metrics into the same private registry. */
  readonly collectDefault?: boolean;
  /** The clock for scrape-time countdowns (tests pass a fixed one). */
  readonly now?: () => Date;
  /**
   * The LDAP operation timeout (`--ldap-timeout`, default 30 s): the latency buckets reach four
   * times past it, so an operation that timed out, and a paged search of several pages, land in
   * a bucket of their own instead of `+Inf`.
   */
  readonly ldapTimeoutSeconds?: number;
  /** What is running, for `gmsa_gitops_build_info`; without it that metric has no series. */
  readonly build?: BuildInfo;
}

/** The running build: package version, Node.js version and, when known, the source commit. */
export interface BuildInfo {
  readonly version: string;
  readonly node: string;
  readonly commit?: string | undefined;
}

const ldapBaseBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The LDAP latency buckets for a timeout: the base ones, then the timeout's half, itself, twice and four times. */
export function ldapBuckets(timeoutSeconds: number): number[] {
  const above = [0.5, 1, 2, 4].map((f) => timeoutSeconds * f);
  return [...new Set([...ldapBaseBuckets, ...above])].sort((a, b) => a - b);
}

// A seatbelt, not a validator: label values must be names from the repository. A DN
// ("CN=x,OU=y"), error text (spaces, newlines) or an overlong value means a caller passed the
// wrong thing, and each would be a new series for ever. Refuse it loudly in development.
const labelValueRefused = /[\s,="\\]/;
const maxLabelValueLength = 256;

function checkName(what: string, value: string): string {
  if (value.length === 0 || value.length > maxLabelValueLength || labelValueRefused.test(value)) {
    throw new RangeError(`${what} label value is not a bounded name (length ${value.length})`);
  }
  return value;
}

const lintFailingDefaults = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/** The longest timer period Node accepts everywhere (about 24.8 days): a timer that never fires. */
const NEVER_MS = 2 ** 31 - 1;

/** The default metrics read from the event-loop delay histogram (see createMetricsRecorder). */
const eventLoopHistogramDefaults = ["min", "max", "mean", "stddev", "p50", "p90", "p99"].map(
  (stat) => `nodejs_eventloop_lag_${stat}_seconds`,
);

/**
 * Creates a recorder with its own registry; two recorders never share series, so tests and
 * embedded uses are independent. Counters and per-kind gauges start at 0 for every label
 * value of their closed sets, so `rate()` and `increase()` see the first event.
 */
export function createMetricsRecorder(options: MetricsRecorderOptions = {}): MetricsRecorder {
  const now = options.now ?? (() => new Date());
  const registry = new Registry();
  if (options.collectDefault === true) {
    // The event-loop delay histogram samples with a timer every `eventLoopMonitoringPrecision` ms:
    // at prom-client's 10 ms that timer cost an idle process 70-90 ms of CPU per 10 s, more than a
    // quiet cycle's own work, and even once a second it woke the process ten times per cycle
    // (docs/benchmarks.md). prom-client cannot leave the histogram out, and its figures are
    // dropped (below): its timer is set to the longest period there is, so it never wakes the
    // process. nodejs_eventloop_lag_seconds, measured at each scrape, stays.
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: NEVER_MS });
    // These three are gauges named like counters, which `promtool check metrics` reports as
    // lint problems; each equals sum() of its per-type sibling (nodejs_active_handles, ...).
    for (const name of lintFailingDefaults) registry.removeSingleMetric(name);
    // The histogram records the time between its timer's ticks, so at that resolution an idle
    // loop reports a delay of about 1 s, and a scrape before the next tick reports the empty
    // histogram (a minimum of 2^63 ns, a mean of NaN): figures that page someone for nothing.
    for (const name of eventLoopHistogramDefaults) registry.removeSingleMetric(name);
  }
  const registers = [registry];

  const reconcileDuration = new Histogram({
    name: `${metricPrefix}reconcile_duration_seconds`,
    help: "Duration of a whole reconcile (read Git, AD and hosts, diff, apply), by result.",
    labelNames: ["result"],
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers,
  });
  const reconciles = new Counter({
    name: `${metricPrefix}reconciles_total`,
    help: "Reconciles finished, by result (partial: some resources failed).",
    labelNames: ["result"],
    registers,
  });
  const resourceDrift = new ResourceStateGauge<DriftType>({
    name: `${metricPrefix}resource_drift`,
    help: "1 when the resource has drift of this type between Git and reality, else 0.",
    typeLabel: "drift_type",
    types: DRIFT_TYPES,
    registers,
  });
  const driftedResources = new Gauge({
    name: `${metricPrefix}drifted_resources`,
    help: "Resources with any drift, by kind.",
    labelNames: ["kind"],
    registers,
  });
  const managedResources = new Gauge({
    name: `${metricPrefix}managed_resources`,
    help: "Resources in the revision in force, by kind.",
    labelNames: ["kind"],
    registers,
  });
  const actions = new Counter({
    name: `${metricPrefix}actions_total`,
    help: "Actions applied to AD or hosts, by kind, action and result.",
    labelNames: ["kind", "action", "result"],
    registers,
  });
  const sourceInfo = new Gauge({
    name: `${metricPrefix}source_info`,
    help: "The Git revision in force and its (credential-free) URL; always 1, one series.",
    labelNames: ["revision", "url"],
    registers,
  });
  const lastFetch = new Gauge({
    name: `${metricPrefix}source_last_fetch_timestamp_seconds`,
    help: "Unix time of the last successful fetch of the Git source (0: never).",
    registers,
  });
  const fetchFailures = new Counter({
    name: `${metricPrefix}source_fetch_failures_total`,
    help: "Failed fetches of the Git source, by reason.",
    labelNames: ["reason"],
    registers,
  });
  const bindFailures = new Counter({
    name: `${metricPrefix}directory_bind_failures_total`,
    help: "Binds the domain controller refused for the bind account's credentials, by reason.",
    labelNames: ["reason"],
    registers,
  });
  const bindBackoff = new Gauge({
    name: `${metricPrefix}directory_bind_backoff_seconds`,
    help: "Seconds the controller waits before binding again after refused credentials (0: not backing off).",
    registers,
  });
  const revisionsRejected = new Counter({
    name: `${metricPrefix}source_revision_rejected_total`,
    help: "Fetched revisions not put in force, by reason.",
    labelNames: ["reason"],
    registers,
  });
  const sourceStale = new Gauge({
    name: `${metricPrefix}source_stale`,
    help: "1 while a newer revision is rejected and the last good revision stays in force.",
    registers,
  });
  const lastSuccess = new Gauge({
    name: `${metricPrefix}last_successful_reconcile_timestamp_seconds`,
    help: "Unix time of the last reconcile that ended in success (0: never).",
    registers,
  });
  const lastObserved = new Gauge({
    name: `${metricPrefix}last_observed_timestamp_seconds`,
    help: "Unix time a cycle last observed AD (the agent: its host) to the end (0: never).",
    registers,
  });
  const reconcileInterval = new Gauge({
    name: `${metricPrefix}reconcile_interval_seconds`,
    help: "The configured time between reconciles (--interval), before jitter.",
    registers,
  });
  // prom-client seeds a label-less gauge with 0; an interval of 0 is not a value it can have.
  reconcileInterval.remove();
  const ldapDuration = new Histogram({
    name: `${metricPrefix}ldap_operation_duration_seconds`,
    help: "Duration of LDAP operations against the domain controller.",
    labelNames: ["operation", "result"],
    buckets: ldapBuckets(options.ldapTimeoutSeconds ?? 30),
    registers,
  });
  const build = options.build;
  const buildInfo = new Gauge({
    name: `${metricPrefix}build_info`,
    help: "The running build: package version, Node.js version and source commit (when known); always 1.",
    labelNames: build?.commit !== undefined ? ["version", "node", "commit"] : ["version", "node"],
    registers,
  });
  if (build)
    buildInfo.set({ version: build.version, node: build.node, ...(build.commit ? { commit: build.commit } : {}) }, 1);
  const kdsEffective = new Gauge({
    name: `${metricPrefix}kds_root_key_effective`,
    help: "1 when an effective KDS root key exists (gMSAs can be created), 0 when not.",
    registers,
  });
  // prom-client seeds a label-less gauge with 0; "not effective" is not known yet.
  kdsEffective.remove();

  const entriesRead = new Counter({
    name: `${metricPrefix}ldap_entries_read_total`,
    help: "Directory entries read to observe AD, by mode: full (everything managed) or incremental (changed since the last read).",
    labelNames: ["mode"],
    registers,
  });
  for (const mode of ["full", "incremental"]) entriesRead.inc({ mode }, 0);
  const planned = new Counter({
    name: `${metricPrefix}plan_resources_total`,
    help: "Resources planned, by mode: diffed (against AD afresh) or reused (nothing they read changed since the last plan).",
    labelNames: ["mode"],
    registers,
  });
  for (const mode of ["diffed", "reused"]) planned.inc({ mode }, 0);

  let leaderValue: boolean | undefined;
  const leader = new Gauge({
    name: `${metricPrefix}leader`,
    help: "1 while this replica holds the leader lease and may write to AD and hosts, 0 when it only observes.",
    registers,
  });
  // Absent until leader election starts: a replica without it is the only writer, not a follower.
  leader.remove();
  const leaderTransitions = new Counter({
    name: `${metricPrefix}leader_transitions_total`,
    help: "Times this replica became leader (to=leader) or stopped leading (to=follower).",
    labelNames: ["to"],
    registers,
  });

  // The deadline is stored; the sample is the seconds left at each scrape's time.
  const passwordChange = new NamedValueGauge({
    name: `${metricPrefix}gmsa_next_password_change_seconds`,
    help: "Seconds until the gMSA's managed password is due to change (negative: overdue, rolls on next retrieval).",
    registers,
    atScrape: () => {
      const current = now().getTime();
      return (deadline) => (deadline - current) / 1000;
    },
  });
  const passwordLastChange = new NamedValueGauge({
    name: `${metricPrefix}password_last_change_timestamp_seconds`,
    help: "When the DC last generated the gMSA's managed password (pwdLastSet), Unix seconds.",
    registers,
  });
  const passwordNextChange = new NamedValueGauge({
    name: `${metricPrefix}password_next_change_timestamp_seconds`,
    help: "When the gMSA's managed password is next due to change (pwdLastSet + interval), Unix seconds.",
    registers,
  });
  const retrievalAroundRotation = new Gauge({
    name: `${metricPrefix}host_password_retrieval_around_rotation`,
    help: "1 when the host could retrieve the gMSA's password at its last check before (when=before) or since (when=after) the last password rotation, else 0.",
    labelNames: ["host", "account", "when"],
    registers,
  });
  const hostReachable = new Gauge({
    name: `${metricPrefix}host_reachable`,
    help: "1 when the controller could run the host script on the host, else 0.",
    labelNames: ["host"],
    registers,
  });
  const hostRetrievable = new Gauge({
    name: `${metricPrefix}host_password_retrievable`,
    help: "State set: 1 for the current state (yes, no, pending) of whether the host can retrieve the gMSA's password.",
    labelNames: ["host", "account", "state"],
    registers,
  });
  const driftCorrections = new Counter({
    name: `${metricPrefix}drift_corrections_total`,
    help: "Drift corrected by an applied fix, by kind and drift type.",
    labelNames: ["kind", "drift_type"],
    registers,
  });
  const resourceCondition = new ResourceStateGauge<MetricCondition>({
    name: `${metricPrefix}resource_condition`,
    help: "1 when the resource's condition of this type is True, else 0.",
    typeLabel: "type",
    types: METRIC_CONDITIONS,
    registers,
  });

  for (const result of reconcileResults) reconciles.inc({ result }, 0);
  for (const kind of KINDS) {
    driftedResources.set({ kind }, 0);
    managedResources.set({ kind }, 0);
  }
  for (const kind of KINDS) {
    for (const action of actionTypesByKind[kind])
      for (const result of operationResults) actions.inc({ kind, action, result }, 0);
  }
  for (const reason of fetchFailureReasons) fetchFailures.inc({ reason }, 0);
  for (const reason of bindFailureReasons) bindFailures.inc({ reason }, 0);
  bindBackoff.set(0);
  for (const kind of KINDS) {
    for (const type of driftTypesByKind[kind]) {
      if (!neverCorrected.has(type)) driftCorrections.inc({ kind, drift_type: type }, 0);
    }
  }
  for (const reason of revisionRejectReasons) revisionsRejected.inc({ reason }, 0);

  // What each host has emitted, so forget* can remove exactly those series.
  const hostAccounts = new Map<string, Set<string>>();
  let currentSource: { revision: string; url: string } | undefined;

  const setPasswordDeadline = (account: string, deadline: number | undefined): void => {
    const name = checkName("name", account);
    if (deadline === undefined || Number.isNaN(deadline)) passwordChange.remove(name);
    else passwordChange.set(name, deadline);
  };

  return {
    registry,
    contentType: registry.contentType,

    reconcileFinished(seconds, result) {
      reconcileDuration.observe({ result }, seconds);
      reconciles.inc({ result });
    },

    setDrift(kind, name, drifts) {
      checkName("name", name);
      // A drift type that never drifted has no series: at 5,000 resources, a 0 for every drift
      // type of every resource made 38,500 series and a 5.5 MiB scrape, and 50,000 resources
      // missing from AD (observe mode) 385,000. Once a type drifts, its series stays (0 or 1)
      // from then on, so dashboards see the drift end.
      resourceDrift.assign(kind, name, drifts);
    },

    driftCorrected(kind, driftType) {
      driftCorrections.inc({ kind, drift_type: driftType });
    },

    forgetResource(kind, name) {
      resourceDrift.forget(kind, name);
      resourceCondition.forget(kind, name);
      if (kind === "GroupManagedServiceAccount") {
        passwordChange.remove(name);
        passwordLastChange.remove(name);
        passwordNextChange.remove(name);
      }
    },

    setDriftedByKind(counts) {
      for (const kind of KINDS) driftedResources.set({ kind }, counts[kind]);
    },

    setManagedByKind(counts) {
      for (const kind of KINDS) managedResources.set({ kind }, counts[kind]);
    },

    actionApplied(kind, action, result) {
      actions.inc({ kind, action, result });
    },

    sourceRevision(revision, url) {
      const next = { revision: checkName("revision", revision), url: redact(url) };
      if (currentSource?.revision === next.revision && currentSource.url === next.url) return;
      // Replace, never accumulate: one series per revision would grow without bound.
      sourceInfo.reset();
      sourceInfo.set(next, 1);
      currentSource = next;
    },

    fetchSucceeded(at) {
      lastFetch.set(at.getTime() / 1000);
    },

    fetchFailed(reason) {
      fetchFailures.inc({ reason });
    },

    directoryBindFailed(reason, backoffSeconds) {
      bindFailures.inc({ reason });
      bindBackoff.set(backoffSeconds);
    },

    directoryBound() {
      bindBackoff.set(0);
    },

    revisionRejected(reason) {
      revisionsRejected.inc({ reason });
    },

    setLastGoodRevisionInForce(stale) {
      sourceStale.set(stale ? 1 : 0);
    },

    reconcileSucceededAt(at) {
      lastSuccess.set(at.getTime() / 1000);
    },

    observedAt(at) {
      lastObserved.set(at.getTime() / 1000);
    },

    setReconcileInterval(seconds) {
      reconcileInterval.set(seconds);
    },

    ldapOperation(op, seconds, ok) {
      ldapDuration.observe({ operation: op, result: ok ? "success" : "failure" }, seconds);
    },

    setKdsKeyEffective(effective) {
      kdsEffective.set(effective ? 1 : 0);
    },

    ldapEntriesRead(mode, entries) {
      entriesRead.inc({ mode }, entries);
    },

    resourcesPlanned(diffed, reused) {
      planned.inc({ mode: "diffed" }, diffed);
      planned.inc({ mode: "reused" }, reused);
    },

    setLeader(isLeader) {
      const before = leaderValue;
      leaderValue = isLeader;
      leader.set(isLeader ? 1 : 0);
      if (before === undefined) {
        for (const to of ["leader", "follower"]) leaderTransitions.inc({ to }, 0);
        if (isLeader) leaderTransitions.inc({ to: "leader" });
      } else if (before !== isLeader) leaderTransitions.inc({ to: isLeader ? "leader" : "follower" });
    },

    setPasswordChangeAt(account, at) {
      setPasswordDeadline(account, at?.getTime());
    },

    setPasswordTimes(account, times) {
      const name = checkName("name", account);
      if (times === undefined) {
        passwordLastChange.remove(name);
        passwordNextChange.remove(name);
        return;
      }
      passwordLastChange.set(name, times.last.getTime() / 1000);
      passwordNextChange.set(name, times.next.getTime() / 1000);
    },

    setRetrievalAroundRotation(host, account, around) {
      checkName("host", host);
      checkName("account", account);
      const accounts = hostAccounts.get(host) ?? new Set<string>();
      accounts.add(account);
      hostAccounts.set(host, accounts);
      for (const when of ["before", "after"] as const) {
        const v = around[when];
        if (v === undefined) retrievalAroundRotation.remove({ host, account, when });
        else retrievalAroundRotation.set({ host, account, when }, v ? 1 : 0);
      }
    },

    setHostReachable(host, reachable) {
      hostReachable.set({ host: checkName("host", host) }, reachable ? 1 : 0);
    },

    setHostRetrievable(host, account, state) {
      checkName("host", host);
      checkName("account", account);
      const accounts = hostAccounts.get(host) ?? new Set<string>();
      accounts.add(account);
      hostAccounts.set(host, accounts);
      for (const s of retrievableStates) hostRetrievable.set({ host, account, state: s }, s === state ? 1 : 0);
    },

    forgetHostRetrievable(host, account) {
      for (const state of retrievableStates) hostRetrievable.remove({ host, account, state });
      for (const when of ["before", "after"]) retrievalAroundRotation.remove({ host, account, when });
      hostAccounts.get(host)?.delete(account);
    },

    forgetHost(host) {
      for (const account of hostAccounts.get(host) ?? []) {
        for (const state of retrievableStates) hostRetrievable.remove({ host, account, state });
        for (const when of ["before", "after"]) retrievalAroundRotation.remove({ host, account, when });
      }
      hostAccounts.delete(host);
      hostReachable.remove({ host });
    },

    setResourceCondition(kind, name, condition, status) {
      checkName("name", name);
      if (condition === "ApplyFailed" && !status && !resourceCondition.has(kind, name, condition)) return;
      resourceCondition.set(kind, name, condition, status);
    },

    // prom-client's Registry.metrics(), written as it goes: metrics joined by a blank line, a
    // final newline; the per-resource gauges write their own lines.
    async *metricsChunks() {
      // getMetricsAsString is the per-metric half of Registry.metrics() (public in prom-client's
      // JavaScript since version 11, missing from its typings).
      const text = registry as unknown as { getMetricsAsString(metric: unknown): Promise<string> };
      let first = true;
      for (const metric of registry.getMetricsAsArray() as unknown[]) {
        if (!first) yield "\n\n";
        first = false;
        if (metric instanceof ResourceStateGauge || metric instanceof NamedValueGauge) yield* metric.lines();
        else yield await text.getMetricsAsString(metric);
      }
      yield "\n";
    },
  };
}
