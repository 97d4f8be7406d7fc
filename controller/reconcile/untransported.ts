/**
 * The status of a HostBinding that no host transport reaches (`run` without
 * `--host-transport`): listed all the same, so it is not silently absent from /api/status.
 */
import type { Draft, Summary } from "./status.ts";

/**
 * A HostBinding that no host transport reaches: nothing about it is observed, so Ready, Stalled
 * and Reconciling are Unknown with reason NoHostTransport, saying why.
 */
export function unreachedBinding(host: string): Summary {
  const message = `not observed: no host transport here (--host-transport ssh); a gmsa-gitops agent on ${host} may reconcile it`;
  return {
    conditions: (["Ready", "Stalled", "Reconciling"] as const).map((type): Draft => ({
      type,
      status: "Unknown",
      reason: "NoHostTransport",
      message,
    })),
    drift: [],
    changes: [],
    observeOnly: false,
    lastAppliedRevision: null,
    lastObservedAt: null,
    lastDrift: null,
    corrections: { count: 0, since: null },
    nextAttemptAt: null,
  };
}
