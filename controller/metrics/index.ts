/** Prometheus metrics of the controller: a recorder over a private registry, and pure helpers. */
export {
  createMetricsRecorder,
  driftTypesByKind,
  metricPrefix,
  resourceKinds,
  type ActionType,
  type ConditionType,
  type DriftType,
  type FetchFailureReason,
  type LdapOperation,
  type MetricKind,
  type MetricsRecorder,
  type MetricsRecorderOptions,
  type OperationResult,
  type ReconcileResult,
  type ResourceKind,
  type RetrievableState,
  type RevisionRejectReason,
} from "./recorder.ts";
export { secondsUntilPasswordChange } from "./password.ts";
