/**
 * The controller's HTTP surface on node:http: Prometheus scrape, liveness, readiness, the
 * status as JSON and as an HTML page, and the Git webhook that triggers a reconcile. No
 * framework: six routes do not need one, and every byte of the webhook body is under our control (size cap, raw bytes
 * for the HMAC).
 */
import { createServer } from "node:http";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { MetricsRecorder } from "../metrics/index.ts";
import { localUrl, parseListenAddress } from "./address.ts";
import { PAGE_CSP, renderStatusPage } from "./page.ts";
import { readStatusView } from "./status-view.ts";
import { jsonChunks, sendChunks } from "./stream.ts";

/** What the HTTP server asks of the controller loop. */
export interface StatusProvider {
  /** A JSON-serialisable summary (conditions per resource, revision, last reconcile). */
  status(): unknown;
  /** True once the first reconcile has completed. */
  ready(): boolean;
  /** Why not ready, for the body of a 503 from `/readyz`; never a secret. */
  notReady?(): string | undefined;
}

/** The outcome of checking a webhook request: the provider that signed it, or why it is refused. */
export type WebhookVerdict = { ok: true; provider: string } | { ok: false; reason: string };

/** Checks a webhook request's signature or token against the shared secret. */
export type WebhookVerifier = (req: { headers: IncomingHttpHeaders; body: Buffer }, secret: string) => WebhookVerdict;

/** The webhook endpoint's configuration; without it `POST /hooks/git` is 404. */
export interface WebhookOptions {
  readonly secret: string;
  readonly verify: WebhookVerifier;
  /**
   * Called once per verified request; the loop coalesces triggers, so this must only enqueue.
   * Returns undefined when a reconcile was triggered, or why not (a follower of the leader lease
   * does not write, so it says who does instead of pretending the commit is being applied).
   */
  readonly onTrigger: () => string | undefined;
}

/** The structured logger the server writes to (pino's shape). */
export interface ServerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of `startServer`. */
export interface ServerOptions {
  /** `127.0.0.1:9090`, `:9090` (every interface), `[::1]:9090`; port 0 picks a free port. */
  readonly address: string;
  readonly metrics: MetricsRecorder;
  readonly status: StatusProvider;
  readonly webhook?: WebhookOptions | undefined;
  readonly logger?: ServerLogger;
  /** Largest webhook body accepted, in bytes (default 1 MiB); larger is 413. */
  readonly maxBodyBytes?: number;
  /** Seconds between the status page's automatic reloads (default 10). */
  readonly pageRefreshSeconds?: number;
  /** The clock the status page shows ages against (default: the system clock). */
  readonly now?: () => Date;
}

/** A running server. */
export interface RunningServer {
  /** Base URL for local clients, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  readonly url: string;
  /** Stops listening and closes every connection, idle keep-alive ones included. Idempotent. */
  close(): Promise<void>;
}

/** Default cap on the webhook body: push payloads are far smaller, and the HMAC needs it whole. */
export const defaultMaxBodyBytes = 1024 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

interface Route {
  readonly methods: readonly string[];
  readonly handler: Handler;
}

const noop: ServerLogger = { info: () => undefined, warn: () => undefined };

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "Content-Type": contentType,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(body);
}

function* withNewline(chunks: Iterable<string>): Generator<string> {
  yield* chunks;
  yield "\n";
}

const sendText = (res: ServerResponse, status: number, body: string, headers?: Record<string, string>): void =>
  send(res, status, "text/plain; charset=utf-8", `${body}\n`, headers);

type BodyResult = { ok: true; body: Buffer } | { ok: false; status: 413 | 400 };

/**
 * Reads the raw request body, refusing more than `max` bytes: up front from Content-Length,
 * or as soon as the stream passes the cap (chunked requests announce no length).
 *
 * A refused body is still drained, not cut off: closing the socket while the client is
 * still sending makes it see a reset instead of the 413. Draining stops (the socket is
 * destroyed) past `drainFactor` times the cap, and `requestTimeout` bounds it in time.
 */
function readBody(req: IncomingMessage, max: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) settle({ ok: false, status: 413 });
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > max * drainFactor) {
        req.destroy();
        return;
      }
      if (size > max) {
        chunks.length = 0;
        settle({ ok: false, status: 413 });
        return;
      }
      if (!settled) chunks.push(chunk);
    });
    req.on("end", () => settle({ ok: true, body: Buffer.concat(chunks, size) }));
    req.on("error", () => settle({ ok: false, status: 400 }));
    req.on("close", () => settle({ ok: false, status: 400 }));
  });
}

const drainFactor = 16;

/** A checkbox or flag in a query string: present and not "0"/"false"/"no". */
const isOn = (v: string | null): boolean => v !== null && !/^(0|false|no)$/i.test(v);

/**
 * Starts the HTTP server and resolves once it listens.
 *
 * Routes: `GET /` (the HTML status page; `?kind=K` and `?notReady=1` filter it), `GET /metrics`, `GET /healthz` (200 while the process serves), `GET /readyz` (200
 * once `status.ready()`, else 503 saying why), `GET /api/status` (JSON), `POST /hooks/git` (size-capped
 * raw body → verify → 202 and `onTrigger()` (its answer, when it did not trigger, is the body), or 401 without a trigger; 404 without a webhook).
 * HEAD is accepted wherever GET is. Unknown paths are 404, wrong methods 405 with `Allow`.
 * Neither the webhook secret nor any request body is ever logged.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { host, port } = parseListenAddress(options.address);
  const logger = options.logger ?? noop;
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes;
  const { metrics, status, webhook } = options;

  const routes = new Map<string, Route>([
    [
      "/",
      {
        methods: ["GET", "HEAD"],
        handler: (req, res) => {
          const query = new URL(req.url ?? "/", "http://localhost").searchParams;
          const kind = query.get("kind") ?? "";
          const html = renderStatusPage(readStatusView(status.status()), {
            filter: { kind: kind === "" ? undefined : kind, notReady: isOn(query.get("notReady")) },
            now: (options.now ?? (() => new Date()))(),
            refreshSeconds: options.pageRefreshSeconds ?? 10,
          });
          send(res, 200, "text/html; charset=utf-8", html, {
            "Content-Security-Policy": PAGE_CSP,
            "Referrer-Policy": "no-referrer",
          });
        },
      },
    ],
    [
      "/metrics",
      {
        methods: ["GET", "HEAD"],
        // Written as it is produced: at 50,000 resources a scrape is about 19 MiB of text.
        handler: (_req, res) => sendChunks(res, 200, metrics.contentType, metrics.metricsChunks()),
      },
    ],
    ["/healthz", { methods: ["GET", "HEAD"], handler: (_req, res) => sendText(res, 200, "ok") }],
    [
      "/readyz",
      {
        methods: ["GET", "HEAD"],
        handler: (_req, res) => {
          if (status.ready()) return sendText(res, 200, "ok");
          const why = status.notReady?.();
          return sendText(res, 503, why ? `not ready: ${why}` : "not ready");
        },
      },
    ],
    [
      "/api/status",
      {
        methods: ["GET", "HEAD"],
        // In pieces: at 50,000 resources the JSON is about 85 MiB (docs/benchmarks.md).
        handler: (_req, res) => {
          const body = status.status();
          return sendChunks(res, 200, "application/json; charset=utf-8", withNewline(jsonChunks(body)));
        },
      },
    ],
  ]);
  if (webhook) {
    routes.set("/hooks/git", {
      methods: ["POST"],
      handler: async (req, res) => {
        const read = await readBody(req, maxBodyBytes);
        if (!read.ok) {
          logger.warn({ path: "/hooks/git", status: read.status }, "webhook body refused");
          if (!res.destroyed) sendText(res, read.status, read.status === 413 ? "payload too large" : "bad request");
          return;
        }
        let verdict: WebhookVerdict;
        try {
          verdict = webhook.verify({ headers: req.headers, body: read.body }, webhook.secret);
        } catch {
          // A verifier that throws has not verified anything; its message may quote input.
          verdict = { ok: false, reason: "verifier failed" };
        }
        if (!verdict.ok) {
          logger.warn({ path: "/hooks/git", reason: verdict.reason }, "webhook refused");
          sendText(res, 401, "unauthorized");
          return;
        }
        const notTriggered = webhook.onTrigger();
        if (notTriggered !== undefined) {
          logger.info({ path: "/hooks/git", provider: verdict.provider, reason: notTriggered }, "webhook not acted on");
          sendText(res, 202, notTriggered);
          return;
        }
        logger.info({ path: "/hooks/git", provider: verdict.provider }, "webhook accepted; reconcile triggered");
        sendText(res, 202, "accepted");
      },
    });
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const route = routes.get(path);
    if (!route) {
      sendText(res, 404, "not found");
      return;
    }
    const method = req.method ?? "GET";
    if (!route.methods.includes(method)) {
      sendText(res, 405, "method not allowed", { Allow: route.methods.join(", ") });
      return;
    }
    Promise.resolve()
      .then(() => route.handler(req, res))
      .catch((error: unknown) => {
        logger.warn({ path, error: error instanceof Error ? error.message : "non-error thrown" }, "request failed");
        if (!res.headersSent) sendText(res, 500, "internal error");
        else res.destroy();
      });
  });
  // Bounds a client that trickles a request (slowloris); scrapes and webhooks are quick.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  logger.info({ address: bound.address, port: bound.port }, "http server listening");

  let closing: Promise<void> | undefined;
  return {
    url: localUrl(host, bound.port),
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // server.close() waits for open connections; keep-alive ones would hold it for ever.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
