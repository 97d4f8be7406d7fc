/**
 * What the controller loop is built from (its dependencies, passed in) and what it reports about
 * itself beside the resources' status.
 */
import type { MetricsRecorder } from "../metrics/index.ts";
import type { BindBackoffOptions, DirectoryCondition } from "./bind.ts";
import type { HostSettings } from "./hosts.ts";
import type { Leadership, LeadershipStatus } from "./lease.ts";
import type { OpenDirectory } from "./pass.ts";
import type { Policy } from "./plan.ts";
import type { Logger, Source, SourceStatus } from "./revision.ts";
import type { ResourceStatus } from "./status.ts";

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
  /**
   * Called after every status update (each resource a cycle summarises; a quiet cycle, quiet.ts,
   * summarises none) with the status before it; must not throw.
   */
  readonly onStatusChange?: (previous: ResourceStatus | undefined, next: ResourceStatus) => void;
  /** Back-off after the DC refused the bind account's credentials (defaults in bind.ts). */
  readonly bindBackoff?: BindBackoffOptions;
  /**
   * With several replicas: only while this says so does a cycle write to AD and hosts; otherwise
   * it observes, so status and metrics stay warm for a takeover. Absent: this replica always writes.
   */
  readonly leadership?: Leadership;
  /**
   * When set, cycles read AD incrementally (only what changed since the last read, by uSNChanged)
   * with a full read at least this often; absent: every cycle reads everything.
   */
  readonly fullResyncMs?: number;
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
  /** Who leads, when leader election is on; null when this replica is the only one. */
  readonly leader: LeadershipStatus | null;
}
