/**
 * The bind guard: after the DC refuses the bind account's credentials (LDAP 49: data 52e wrong
 * password, 775 locked), the controller does not bind again every interval, because under a
 * domain lockout policy each attempt is one more bad password. It waits exponentially longer up
 * to a cap, says so (a condition of the controller, metrics, one log line per change), and binds
 * at once when the password file changes.
 */
import type { BindFailureReason, MetricsRecorder } from "../metrics/index.ts";
import { isFailure } from "../vocabulary.ts";
import { exponentialBackoff } from "./schedule.ts";
import type { Logger } from "./revision.ts";

/**
 * The directory as the controller last found it: a condition of the controller itself. Stalled
 * while the DC refuses the bind account's credentials; `nextAttemptAt` is when it binds again
 * (sooner when the password file changes). Unknown while a cycle cannot read AD for any other
 * reason (a frozen or unreachable DC, a timeout), saying why.
 */
export interface DirectoryCondition {
  readonly type: "Stalled";
  readonly status: "True" | "False" | "Unknown";
  readonly reason: BindFailureReason | "Bound" | "NotAttempted" | "ObservationFailed";
  readonly message: string;
  readonly consecutiveFailures: number;
  readonly nextAttemptAt: string | null;
}

/** First wait and cap; defaults: the larger of the interval and 5 min, doubling to 1 h (or the interval). */
export interface BindBackoffOptions {
  readonly baseMs?: number;
  readonly capMs?: number;
}

const BIND_BACKOFF_MIN_BASE_MS = 5 * 60_000;
const BIND_BACKOFF_CAP_MS = 60 * 60_000;

const text = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The reason of a bind the DC refused for the credentials (LDAP 49), or undefined for any other failure. */
export function bindRefusal(error: unknown): BindFailureReason | undefined {
  if (!isFailure(error)) return undefined;
  return error.reason === "InvalidCredentials" || error.reason === "AccountLocked" ? error.reason : undefined;
}

/** Tracks refused binds and when the next bind may happen. */
export class BindGuard {
  #bind: { failures: number; nextAttemptAt: number; reason: BindFailureReason; message: string } | undefined;
  #bound = false;
  /** Why the last cycle could not read AD, when that was not a refused bind. */
  #unobserved: string | undefined;
  /**
   * Whether the refusal in `#bind` is what the last failed cycle hit. It is not when a later
   * cycle failed before the DC could answer a bind (an unreadable password file, an unreachable
   * DC); the refusal still counts for the back-off, but the condition says what happened since.
   */
  #refusalLatest = false;
  readonly #metrics: MetricsRecorder;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #options: BindBackoffOptions;

  constructor(metrics: MetricsRecorder, logger: Logger, intervalMs: number, options: BindBackoffOptions = {}) {
    this.#metrics = metrics;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#options = options;
  }

  /** When the next bind may happen, if a refusal holds it back at `now`. */
  heldUntil(now: number): number | undefined {
    const at = this.#bind?.nextAttemptAt;
    return at !== undefined && at > now ? at : undefined;
  }

  /** The password file changed: the next cycle binds at once. */
  credentialsChanged(now: number): void {
    if (this.#bind === undefined || this.#bind.nextAttemptAt <= now) return;
    this.#bind = { ...this.#bind, nextAttemptAt: now };
    this.#logger.info({}, "bind password changed: binding again now");
  }

  /** The condition /api/status shows. */
  condition(): DirectoryCondition {
    const b = this.#bind;
    if (b && this.#refusalLatest)
      return {
        type: "Stalled",
        status: "True",
        reason: b.reason,
        message: b.message,
        consecutiveFailures: b.failures,
        nextAttemptAt: new Date(b.nextAttemptAt).toISOString(),
      };
    if (this.#unobserved !== undefined)
      return {
        type: "Stalled",
        status: "Unknown",
        reason: "ObservationFailed",
        message: this.#unobserved,
        consecutiveFailures: 0,
        nextAttemptAt: null,
      };
    return this.#bound
      ? {
          type: "Stalled",
          status: "False",
          reason: "Bound",
          message: "bound",
          consecutiveFailures: 0,
          nextAttemptAt: null,
        }
      : {
          type: "Stalled",
          status: "Unknown",
          reason: "NotAttempted",
          message: "no bind attempted yet",
          consecutiveFailures: 0,
          nextAttemptAt: null,
        };
  }

  /** A refusal: waits exponentially longer; one log line per change of reason. Returns when to bind again. */
  failed(reason: BindFailureReason, error: unknown, now: number): number {
    const failures = (this.#bind?.failures ?? 0) + 1;
    const base = this.#options.baseMs ?? Math.max(this.#intervalMs, BIND_BACKOFF_MIN_BASE_MS);
    const cap = this.#options.capMs ?? Math.max(this.#intervalMs, BIND_BACKOFF_CAP_MS);
    const wait = exponentialBackoff(failures, base, cap);
    const changed = this.#bind?.reason !== reason;
    this.#bind = { failures, nextAttemptAt: now + wait, reason, message: text(error) };
    this.#refusalLatest = true;
    this.#bound = false;
    this.#metrics.directoryBindFailed(reason, wait / 1000);
    const fields = { reason, failures, nextAttemptAt: new Date(now + wait).toISOString(), err: text(error) };
    if (changed) this.#logger.error(fields, "the domain controller refused the bind account; backing off");
    return now + wait;
  }

  /** The cycle could not read AD (a refusal, if it was one, is `failed` too and shows first). */
  unobserved(error: unknown): void {
    this.#unobserved = `not observed: ${text(error)}`;
    if (bindRefusal(error) === undefined) this.#refusalLatest = false;
  }

  /** A bind went through. */
  succeeded(): void {
    if (this.#bind) {
      this.#logger.info({ failures: this.#bind.failures }, "bound to the domain controller again");
      this.#metrics.directoryBound();
    }
    this.#bind = undefined;
    this.#unobserved = undefined;
    this.#bound = true;
  }
}
