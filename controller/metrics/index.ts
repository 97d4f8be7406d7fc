/** Prometheus metrics of the controller: a recorder over a private registry. */
export {
  createMetricsRecorder,
  driftTypesByKind,
  metricPrefix,
  type ActionType,
  type BindFailureReason,
  type BuildInfo,
  type DriftType,
  type FetchFailureReason,
  type LdapOperation,
  type MetricsRecorder,
  type MetricsRecorderOptions,
  type OperationResult,
  type ReconcileResult,
  type RetrievableState,
  type RevisionRejectReason,
} from "./recorder.ts";
