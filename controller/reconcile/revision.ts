/**
 * The loop's first step: fetch the source and decide which revision is in force. A new revision
 * is validated whole (parsing again only the files that changed since the last); an invalid or unverified one is refused and the last good one
 * stays in force (and status, a metric and one log line say why). Decided on the failure's
 * `outcome`, never on its message: a `stalled` source failure that names a revision (an unsigned
 * or badly signed commit) refuses that revision; anything else is a failed fetch.
 */
import type { DesiredState, ManifestError } from "../manifests/index.ts";
import { ParseCache, parseManifests } from "../manifests/index.ts";
import type { MetricsRecorder } from "../metrics/index.ts";
import type { Snapshot } from "../source/index.ts";
import { fetchFailureReason } from "../source/index.ts";
import { isFailure } from "../vocabulary.ts";

/** Where manifests come from: a Git branch or a local folder. */
export interface Source {
  sync(signal?: AbortSignal): Promise<Snapshot>;
  /** A verified webhook says the branch moved: the next sync may skip its check for a change. */
  moved?(): void;
  /** Shown in status and the source info metric; never holds credentials. */
  readonly url: string;
}

/** The logger the loop writes to (pino's shape). Never given a secret. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Why the revision in force is not the newest one. */
export interface RejectedRevision {
  readonly revision: string;
  readonly reason: "ValidationFailed" | "Unverified";
  readonly message: string;
  readonly errors: readonly ManifestError[];
}

/** The source part of the controller's status. */
export interface SourceStatus {
  readonly url: string;
  readonly revision: string | null;
  readonly lastFetchedAt: string | null;
  readonly lastFetchError: string | null;
  readonly rejected: RejectedRevision | null;
}

const text = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** The revision in force and the history of the last fetch, kept across cycles. */
export class RevisionInForce {
  readonly #source: Source;
  readonly #metrics: MetricsRecorder;
  readonly #logger: Logger;
  #desired: DesiredState | undefined;
  #revision: string | undefined;
  #lastSeen: string | undefined;
  #rejected: RejectedRevision | undefined;
  #lastFetchedAt: Date | undefined;
  #lastFetchError: string | undefined;
  /** The last revision's files as parsed: a new revision parses only the files that changed. */
  readonly #parsed = new ParseCache();

  constructor(source: Source, metrics: MetricsRecorder, logger: Logger) {
    this.#source = source;
    this.#metrics = metrics;
    this.#logger = logger;
  }

  /** The desired state in force; undefined until a first valid revision was loaded. */
  get desired(): DesiredState | undefined {
    return this.#desired;
  }
  /** The revision in force. */
  get revision(): string | undefined {
    return this.#revision;
  }

  status(): SourceStatus {
    return {
      url: this.#source.url,
      revision: this.#revision ?? null,
      lastFetchedAt: this.#lastFetchedAt?.toISOString() ?? null,
      lastFetchError: this.#lastFetchError ?? null,
      rejected: this.#rejected ?? null,
    };
  }

  /**
   * Fetches and, for a revision not seen before, parses it. Returns true when a new revision
   * came into force. Throws when nothing can be in force (no good revision yet) or the signal
   * stopped it.
   */
  async sync(signal?: AbortSignal): Promise<boolean> {
    const metrics = this.#metrics;
    let snapshot: Snapshot;
    try {
      snapshot = await this.#source.sync(signal);
    } catch (caught) {
      // An aborted sync is the controller stopping, not the source failing.
      if (signal?.aborted) throw caught;
      const revision =
        typeof caught === "object" && caught !== null && "revision" in caught && typeof caught.revision === "string"
          ? caught.revision
          : undefined;
      if (isFailure(caught) && caught.outcome === "stalled" && revision !== undefined) {
        if (this.#rejected?.revision !== revision) {
          metrics.revisionRejected("unverified");
          this.#logger.warn(
            { revision, reason: caught.reason },
            this.#inForce("revision refused: signature not verified"),
          );
        }
        this.#rejected = { revision, reason: "Unverified", message: text(caught), errors: [] };
      } else {
        metrics.fetchFailed(fetchFailureReason(caught));
        this.#lastFetchError = text(caught);
        this.#logger.warn({ err: this.#lastFetchError }, this.#inForce("source sync failed"));
      }
      metrics.setLastGoodRevisionInForce(this.#rejected !== undefined);
      if (this.#desired === undefined) throw caught;
      return false;
    }
    // The time of the poll that fetched it: between polls (--source-interval) the snapshot is reused.
    this.#lastFetchedAt = snapshot.fetchedAt;
    this.#lastFetchError = undefined;
    metrics.fetchSucceeded(this.#lastFetchedAt);
    let changed = false;
    if (snapshot.revision !== this.#lastSeen) {
      this.#lastSeen = snapshot.revision;
      const loaded = parseManifests(snapshot.files, {}, snapshot.fileErrors, this.#parsed);
      if (loaded.ok) {
        this.#desired = loaded.desired;
        this.#revision = snapshot.revision;
        this.#rejected = undefined;
        changed = true;
        metrics.sourceRevision(snapshot.revision, this.#source.url);
        this.#logger.info({ revision: snapshot.revision, files: loaded.files }, "new revision loaded");
      } else {
        this.#rejected = {
          revision: snapshot.revision,
          reason: "ValidationFailed",
          message: `${loaded.errors.length} error(s) in the manifests`,
          errors: loaded.errors.slice(0, 50),
        };
        metrics.revisionRejected("invalid");
        this.#logger.warn(
          {
            revision: snapshot.revision,
            errors: loaded.errors.slice(0, 10).map((e) => `${e.file}:${e.line}:${e.column}: ${e.message}`),
          },
          this.#inForce("revision rejected: invalid manifests"),
        );
      }
    }
    metrics.setLastGoodRevisionInForce(this.#rejected !== undefined);
    if (this.#desired === undefined) throw new Error("no valid revision has been loaded yet");
    return changed;
  }

  /** A log message that says what stays in force, and never claims a last good revision before there is one. */
  #inForce(what: string): string {
    return this.#revision === undefined
      ? `${what}; no revision is in force yet`
      : `${what}; the last good revision stays in force`;
  }
}
