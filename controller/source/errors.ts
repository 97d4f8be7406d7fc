/**
 * Typed failures of the Git source, and the redaction that keeps credentials out of them.
 *
 * The loop decides what to do from `outcome` alone, by type and never by parsing messages
 * (docs/decisions/source.md): "transient" is retried with backoff, "stalled" waits for a person.
 */

import { credentialParameterValues, redact } from "../redact.ts";
import type { Failure, Outcome } from "../vocabulary.ts";

/** What the caller should do about a failure: retry with backoff, or wait for a change in Git or config. */
export type SourceOutcome = Extract<Outcome, "transient" | "stalled">;

/** Which step failed. */
export type SourceErrorStep = "fetch" | "verify" | "checkout";

/** Why, as a CamelCase reason fit for a condition; a closed set. */
export type SourceErrorReason =
  | "FetchFailed" // the remote could not be reached or refused us (network, auth, server)
  | "Timeout" // the whole sync took longer than timeoutMs
  | "BranchNotFound" // the remote answered, and has no such branch
  | "UnsafeGitEnvironment" // the configured env holds a variable the git wrapper refuses
  | "SignatureInvalid" // HEAD is unsigned, badly signed, or signed by a key not allowed
  | "VerificationConfigInvalid" // the allowed-signers file or keyring cannot be used
  | "PathNotFound" // the sub-path is not a directory at this revision
  | "WorkDirInvalid" // the work directory holds something that is not our repository
  | "ReadFailed" // a tree or blob could not be read from the local object store
  | "CloneCorrupt"; // the local clone failed verification; it was removed, and cloning again failed too

/** Fields of a SourceError; `revision` is set whenever a commit was fetched before the failure. */
export interface SourceErrorInit {
  outcome: SourceOutcome;
  step: SourceErrorStep;
  reason: SourceErrorReason;
  message: string;
  revision?: string;
}

/**
 * A failure of `GitSource.sync`. Its message has passed through `redact`, so it can be logged
 * and put in a condition as is. It carries no `cause`: a wrapped git error could hold the raw
 * URL with its credentials.
 */
export class SourceError extends Error implements Failure {
  readonly outcome: SourceOutcome;
  readonly step: SourceErrorStep;
  readonly reason: SourceErrorReason;
  /** The commit that failed (e.g. an unsigned HEAD), so the loop can report it and keep the last good one. */
  readonly revision: string | undefined;

  constructor(init: SourceErrorInit) {
    super(init.message);
    this.name = "SourceError";
    this.outcome = init.outcome;
    this.step = init.step;
    this.reason = init.reason;
    this.revision = init.revision;
  }
}

/**
 * How a failed sync is counted (`gmsa_gitops_source_fetch_failures_total{reason}`): "verify"
 * for signatures, "network" only when the remote could not be reached or read, "other" for
 * local causes (a corrupt clone, an unreadable object store, a bad work directory).
 */
export function fetchFailureReason(error: unknown): "network" | "verify" | "other" {
  if (!(error instanceof SourceError)) return "other";
  if (error.step === "verify") return "verify";
  return error.reason === "FetchFailed" || error.reason === "Timeout" || error.reason === "BranchNotFound"
    ? "network"
    : "other";
}

/** Credentials in text are scrubbed by the one shared `redact` (controller/redact.ts). */
export { redact };

/**
 * Replaces each of `secrets` (e.g. the raw and percent-decoded userinfo of the configured URL,
 * which git may print on its own) wherever it appears in `text`. Values under 4 characters are
 * left: a user name like "git" would blank ordinary words.
 */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  return redact(text, secrets, 4);
}

/**
 * The secret parts of a `scheme://` URL's userinfo and credential parameters, raw and
 * percent-decoded, for `hideSecrets`:
 * the password of `user:password@`, or the whole of a bare `token@` on http(s). A plain user
 * name (`ssh://git@host`) is not a secret and is not returned.
 */
export function urlSecrets(url: string): string[] {
  const raw = [...userinfoSecrets(url)];
  raw.push(...credentialParameterValues(url));
  const decoded = raw.map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  // Longest first, so a whole "user:password" is replaced before its password alone.
  return [...new Set([...raw, ...decoded])].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/** `user:password` and `password` of a URL's userinfo, or a bare http(s) `token`; never a plain user name. */
function userinfoSecrets(url: string): string[] {
  // Up to the last "@" before the path: a password may hold "@" itself.
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/\s]+)@/i.exec(url);
  const scheme = match?.[1]?.toLowerCase();
  const userinfo = match?.[2];
  if (scheme === undefined || userinfo === undefined) return [];
  const colon = userinfo.indexOf(":");
  if (colon >= 0) return [userinfo, userinfo.slice(colon + 1)];
  return scheme === "http" || scheme === "https" ? [userinfo] : [];
}
