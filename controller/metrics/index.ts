/** Prometheus metrics of the controller: a recorder over a private registry. */
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
  type MetricsRecorder,
  type MetricsRecorderOptions,
  type OperationResult,
  type ReconcileResult,
  type ResourceKind,
  type RetrievableState,
  type RevisionRejectReason,
} from "./recorder.ts";
