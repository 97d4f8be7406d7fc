/**
 * Typed host failures, in the shared failure vocabulary (vocabulary.ts `Failure`): the reconcile
 * loop decides by `outcome`, never by parsing messages:
 * `transient` is retried with backoff, `stalled` waits for a person (a changed host
 * key, a refused key, a request the script rejects).
 */
import type { Failure, Outcome } from "../vocabulary.ts";

/** What went wrong talking to a host: the error's `reason`. */
export type HostErrorReason =
  /** TCP connect refused or the address does not resolve/route. */
  | "Unreachable"
  /** Connect (handshake + authentication) or the command took longer than allowed. */
  | "Timeout"
  /** known_hosts has no key for this host: refuse rather than trust on first use. */
  | "HostKeyUnknown"
  /** The host presented a key that known_hosts does not list for it (or lists as revoked). */
  | "HostKeyMismatch"
  /** The host refused our key. */
  | "AuthFailed"
  /** The script refused the request (bad request, unsupported contract version, wrong host). */
  | "RequestRejected"
  /** The remote process ended without a result (crash, PowerShell missing, killed). */
  | "ScriptFailed"
  /** The script answered, but not in the contract's shape (an old or foreign script). */
  | "BadResult"
  /** The caller's AbortSignal fired. */
  | "Aborted"
  /** A bug on our side (an exception that is none of the above). */
  | "Internal";

/** The outcomes a host failure can have: retry with back-off, or wait for a person. */
export type HostErrorOutcome = Extract<Outcome, "transient" | "stalled">;

const OUTCOME: Readonly<Record<HostErrorReason, HostErrorOutcome>> = {
  Unreachable: "transient",
  Timeout: "transient",
  HostKeyUnknown: "stalled",
  HostKeyMismatch: "stalled",
  AuthFailed: "stalled",
  RequestRejected: "stalled",
  ScriptFailed: "transient",
  BadResult: "stalled",
  Aborted: "transient",
  Internal: "transient",
};

/**
 * A failure to get a result from one host. Its message names the host and the cause and never
 * carries key material or passwords (none reach this layer's messages).
 */
export class HostError extends Error implements Failure {
  readonly reason: HostErrorReason;
  readonly outcome: HostErrorOutcome;
  /** The host's computer name (HostTarget.host). */
  readonly host: string;

  constructor(reason: HostErrorReason, host: string, message: string, options?: { cause?: unknown }) {
    super(`${host}: ${message}`, options);
    this.name = "HostError";
    this.reason = reason;
    this.outcome = OUTCOME[reason];
    this.host = host;
  }
}

/** Wraps anything thrown into a HostError (HostErrors pass through unchanged). */
export function toHostError(host: string, err: unknown): HostError {
  if (err instanceof HostError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new HostError("Internal", host, message, { cause: err });
}
