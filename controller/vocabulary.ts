/**
 * The shared vocabulary of the controller: resource kinds, drift types, condition types and
 * reasons, and failure outcomes. Every layer speaks these words (manifests, reconcile, metrics,
 * the HTTP surface), so they live here, in a module that imports nothing: imports point from the
 * layers to this file, never between metrics/ and reconcile/ for a word.
 */

/** Every resource kind, in a stable order; a unit test checks it against the kinds in crds/. */
export const KINDS = [
  "ADGroup",
  "GroupManagedServiceAccount",
  "HostBinding",
  "KdsRootKey",
  "ManagedServiceAccount",
] as const;

/** One resource kind of the model. */
export type Kind = (typeof KINDS)[number];

/** Names one resource of the repository (kind + metadata.name). */
export interface ResourceRef {
  readonly kind: Kind;
  readonly name: string;
}

/** `KIND/NAME`, the key of a resource in maps, logs and `--target`. */
export const resourceKey = (r: ResourceRef): string => `${r.kind}/${r.name}`;

/**
 * The closed set of drift types, also the only values of the `drift_type` metric label.
 * `conflict` is an unmarked object with a managed name; `unexpected` is a marked object that
 * left the repository (a prune candidate); `delegation` is a gMSA's Kerberos delegation (its
 * userAccountControl flags, msDS-AllowedToDelegateTo, the resource-based descriptor).
 */
export const DRIFT_TYPES = [
  "missing",
  "attribute",
  "membership",
  "principals",
  "encryption",
  "spn",
  "delegation",
  "immutable",
  "conflict",
  "unexpected",
  "host-retrieval",
  "host-group",
  "host-right",
  "host-service",
  "host-task",
  "host-apppool",
  "host-file-access",
] as const;

/** One drift type. */
export type DriftType = (typeof DRIFT_TYPES)[number];

/**
 * How a failure is handled, decided by type and never by parsing messages (after Flux's
 * Stalling / Waiting / Generic errors): `stalled` waits for a person (a change in Git, in the
 * configuration or in AD), `waiting` retries at a known time, `transient` retries with back-off.
 */
export type Outcome = "stalled" | "waiting" | "transient";

/**
 * What every typed failure carries, whichever layer raised it (directory, source, host): the
 * outcome the loop decides on, and a CamelCase reason from the layer's closed set. How long to
 * wait is the loop's business (reconcile/schedule.ts), or a resource's blocker's `until`.
 */
export interface Failure {
  readonly outcome: Outcome;
  readonly reason: string;
}

/** True for a value carrying a {@link Failure}'s `outcome` (any of the layers' typed errors). */
export function isFailure(value: unknown): value is Failure {
  if (typeof value !== "object" || value === null || !("outcome" in value) || !("reason" in value)) return false;
  const o = value.outcome;
  return o === "stalled" || o === "waiting" || o === "transient";
}

/** The outcome of anything thrown: a typed failure's own, else transient (retry with back-off). */
export const outcomeOf = (error: unknown): Outcome => (isFailure(error) ? error.outcome : "transient");

/** The condition types of a resource: the positive three always, the negative two only while true. */
export type ConditionType = "Ready" | "Reconciling" | "Stalled" | "DriftDetected" | "ApplyFailed";

/**
 * The condition types exported as the per-resource condition metric: the positive three, and
 * ApplyFailed, which alerts need to tell a failing write from a wait (its series appears once it
 * has been true, then stays 0 or 1).
 */
export const METRIC_CONDITIONS = ["Ready", "Reconciling", "Stalled", "ApplyFailed"] as const;

/** One of the condition types the per-resource condition metric carries. */
export type MetricCondition = (typeof METRIC_CONDITIONS)[number];

/** Reasons a resource cannot be acted on in this cycle (a blocker's reason). */
export type BlockReason =
  | "KdsRootKeyNotEffective"
  | "KdsRootKeyNotFound"
  | "PrincipalNotFound"
  | "NotOwned"
  | "Protected"
  | "OwnedByOtherController"
  | "ImmutableFieldChanged"
  | "DependencyNotReady"
  | "DeletionBudgetExhausted"
  | "PruneRefused"
  | "ApplyFailed"
  | "RetryingAfterFailure";

/** Condition reasons: a closed set of CamelCase words, so dashboards and alerts can match them. */
export type ConditionReason =
  | BlockReason
  | "Reconciled"
  | "Created"
  | "Progressing"
  | "DriftReported"
  | "DriftCorrected"
  | "PruneDisabled"
  | "Suspended"
  | "ObservationFailed"
  | "NoHostTransport";

/**
 * When and where an attribute was last changed at its origin (reconcile/attribution.ts).
 * `byController` is true when time and version are those the controller recorded after its own
 * write, false when it wrote the attribute and the attribute changed since, null when nothing
 * tells (a one-shot `plan`, a write made before the process started, or an objectLevel time
 * that differs from ours); `objectLevel` when only the object's whenChanged is known (member
 * values on Samba).
 */
export interface LastChange {
  readonly time: string;
  readonly dc: string | null;
  readonly version: number | null;
  readonly byController: boolean | null;
  readonly objectLevel: boolean;
}

/**
 * Who last changed an attribute, in one phrase, the same in the plan, `explain`, the status page
 * and notifications: "last changed TIME on DC (version N), not by gmsa-gitops".
 */
export function lastChangeText(c: LastChange): string {
  const what = c.objectLevel ? "object last changed" : "last changed";
  const where = c.dc ? ` on ${c.dc}` : "";
  const version = c.version !== null ? ` (version ${c.version})` : "";
  const who = c.byController === null ? "" : c.byController ? ", by gmsa-gitops" : ", not by gmsa-gitops";
  return `${what} ${c.time}${where}${version}${who}`;
}
