/**
 * Outbound notifications: a webhook call when a resource becomes Stalled, when an apply
 * fails, or when drift was corrected. Fed with every status update as a (previous, next)
 * pair and acting on edges only, so a resource that stays Stalled is announced once.
 *
 * Guarantees: `observe` never throws and never waits for the network; a slow or failing
 * receiver only costs log lines (each call has a timeout, the queue is bounded and drops
 * the newest when full); rate limits per resource and event, and globally per minute, keep
 * a flapping resource from flooding a channel. The webhook URL (which often holds a token)
 * is never logged whole: logs show its origin only. Bodies carry what /api/status shows,
 * which holds no secret.
 */
import type { ResourceStatus } from "../reconcile/status.ts";
import type { NotificationEvent, NotificationFormat, Notification } from "./format.ts";
import { notificationBody } from "./format.ts";

/** The logger the notifier writes to (pino's shape). */
export interface NotifyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of {@link Notifier}. */
export interface NotifierOptions {
  /** The webhook URL; may carry a token, so it is only ever logged as its origin. */
  readonly url: string;
  readonly format: NotificationFormat;
  readonly logger: NotifyLogger;
  /** Per request (default 10 s). */
  readonly timeoutMs?: number;
  /** At most one notification per resource and event within this time (default 10 min). */
  readonly perResourceIntervalMs?: number;
  /** At most this many notifications per minute in all (default 20). */
  readonly maxPerMinute?: number;
  /** Notifications waiting to be sent; more are dropped (default 100). */
  readonly maxQueue?: number;
  /** The source URL shown in the body (without credentials). */
  readonly sourceUrl?: string;
  readonly now?: () => Date;
  readonly fetch?: typeof fetch;
}

const isTrue = (s: ResourceStatus | undefined, type: string): boolean =>
  s?.conditions.some((c) => c.type === type && c.status === "True") ?? false;

const condition = (s: ResourceStatus, type: string) => s.conditions.find((c) => c.type === type);

/**
 * The events a status update is worth announcing (edges, not levels): Stalled and
 * ApplyFailed when they turn True; DriftCorrected when this observation corrected drift.
 */
export function transitions(previous: ResourceStatus | undefined, next: ResourceStatus): NotificationEvent[] {
  const events: NotificationEvent[] = [];
  if (isTrue(next, "Stalled") && !isTrue(previous, "Stalled")) events.push("Stalled");
  if (isTrue(next, "ApplyFailed") && !isTrue(previous, "ApplyFailed")) events.push("ApplyFailed");
  const drift = condition(next, "DriftDetected");
  const corrected =
    drift?.status === "True" && drift.reason === "DriftCorrected" && isTrue(next, "Ready") && !next.observeOnly;
  if (corrected && previous?.lastObservedAt !== next.lastObservedAt) events.push("DriftCorrected");
  return events;
}

/** `https://hooks.example.com/…`: enough to tell which receiver failed, without its token. */
export function redactUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return "(invalid URL)";
  }
}

/** Sends notifications to one webhook. See the module comment for its guarantees. */
export class Notifier {
  readonly #options: NotifierOptions;
  readonly #now: () => Date;
  readonly #fetch: typeof fetch;
  readonly #queue: Notification[] = [];
  /** `kind/name/event` → when it was last sent, and how many were suppressed since. */
  readonly #lastSent = new Map<string, { at: number; suppressed: number }>();
  /** Send times within the last minute, for the global limit. */
  #window: number[] = [];
  #dropped = 0;
  #sending: Promise<void> | undefined;
  #closed = false;
  /** Aborts the call in flight when close() runs out of time. */
  readonly #stop = new AbortController();

  constructor(options: NotifierOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#fetch = options.fetch ?? fetch;
  }

  /** Takes one status update; queues what it announces. Never throws, never waits. */
  observe(previous: ResourceStatus | undefined, next: ResourceStatus): void {
    try {
      for (const event of transitions(previous, next)) this.#enqueue(event, next);
    } catch (error) {
      this.#options.logger.warn(
        { err: error instanceof Error ? error.message : "non-error thrown" },
        "notify: skipped",
      );
    }
  }

  /** Resolves once everything queued so far has been sent or has failed. */
  async flush(): Promise<void> {
    while (this.#sending) await this.#sending;
  }

  /**
   * Stops taking notifications and lets the queue drain for at most `graceMs` (default 5 s):
   * a stopping controller must not wait for a hanging receiver (Kubernetes gives it 30 s in
   * all). What is still queued or in flight then is dropped, and the count logged.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), graceMs)));
    const outcome = await Promise.race([this.flush().then(() => "done" as const), late]);
    clearTimeout(timer);
    if (outcome === "late") {
      const dropped = this.#queue.length + 1;
      this.#queue.length = 0;
      this.#stop.abort();
      await this.flush();
      this.#options.logger.warn({ dropped }, "notify: stopping; notifications not sent");
    }
  }

  #enqueue(event: NotificationEvent, s: ResourceStatus): void {
    if (this.#closed) return;
    const { logger } = this.#options;
    const now = this.#now().getTime();
    const key = `${s.kind}/${s.name}/${event}`;
    const last = this.#lastSent.get(key);
    if (last && now - last.at < (this.#options.perResourceIntervalMs ?? 10 * 60_000)) {
      last.suppressed++;
      return;
    }
    this.#window = this.#window.filter((t) => now - t < 60_000);
    const full = this.#queue.length >= (this.#options.maxQueue ?? 100);
    if (this.#window.length >= (this.#options.maxPerMinute ?? 20) || full) {
      this.#dropped++;
      logger.warn(
        { event, kind: s.kind, resource: s.name, dropped: this.#dropped, why: full ? "queue full" : "rate limit" },
        "notify: notification dropped",
      );
      return;
    }
    this.#window.push(now);
    this.#lastSent.set(key, { at: now, suppressed: 0 });
    const c = event === "DriftCorrected" ? condition(s, "DriftDetected") : condition(s, event);
    const ready = condition(s, "Ready");
    this.#queue.push({
      event,
      kind: s.kind,
      name: s.name,
      reason: (event === "DriftCorrected" ? ready?.reason : c?.reason) ?? event,
      message: (event === "ApplyFailed" ? c?.message : ready?.message) || c?.message || "",
      drift: [...s.drift],
      changes: s.changes.map((x) => ({ attribute: x.attribute, from: x.from ?? null, to: x.to ?? null })),
      source: s.source,
      revision: s.lastAppliedRevision,
      at: new Date(now).toISOString(),
      suppressedBefore: last?.suppressed ?? 0,
      ...(this.#options.sourceUrl !== undefined ? { sourceUrl: this.#options.sourceUrl } : {}),
    });
    this.#sending ??= this.#drain().finally(() => (this.#sending = undefined));
  }

  async #drain(): Promise<void> {
    for (let n = this.#queue.shift(); n; n = this.#queue.shift()) await this.#send(n);
  }

  async #send(n: Notification): Promise<void> {
    const { logger, url, format } = this.#options;
    const timeoutMs = this.#options.timeoutMs ?? 10_000;
    const fields = { event: n.event, kind: n.kind, resource: n.name, webhook: redactUrl(url) };
    try {
      const res = await this.#fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(notificationBody(n, format)),
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#stop.signal]),
        redirect: "error",
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) logger.info(fields, "notify: sent");
      else logger.warn({ ...fields, status: res.status }, "notify: webhook refused the notification");
    } catch (error) {
      const e = error as Error & { cause?: { code?: string } };
      // The message of a failed fetch may quote the URL: report the code or the kind of failure only.
      const why =
        e.name === "TimeoutError"
          ? `no answer within ${timeoutMs / 1000} s`
          : this.#stop.signal.aborted
            ? "stopping"
            : (e.cause?.code ?? e.name);
      logger.warn({ ...fields, err: why }, "notify: webhook call failed");
    }
  }
}
