/**
 * The HTTP server over real sockets, checked by independent tools: the scrape body goes
 * through `promtool check metrics`, and the alert rules shipped in deploy/prometheus go
 * through `promtool check rules` and `promtool test rules`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request, Agent } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { startServer } from "../controller/server/index.ts";
import { verifyWebhook } from "../controller/source/webhook.ts";
import type { RunningServer, ServerOptions, WebhookVerdict } from "../controller/server/index.ts";
import { runPromtool } from "./support/promtool.ts";

const secret = "webhook-test-secret-7f3a";

/** A GitHub-style verifier (X-Hub-Signature-256), written here independently of controller/source. */
function verifyHmac(req: { headers: IncomingHttpHeaders; body: Buffer }, key: string): WebhookVerdict {
  const header = req.headers["x-hub-signature-256"];
  if (typeof header !== "string" || !header.startsWith("sha256=")) return { ok: false, reason: "missing signature" };
  const expected = Buffer.from(`sha256=${createHmac("sha256", key).update(req.body).digest("hex")}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected)
    ? { ok: true, provider: "github" }
    : { ok: false, reason: "signature mismatch" };
}

const sign = (body: string, key = secret): string => `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;

interface LogLine {
  level: "info" | "warn";
  obj: object;
  msg: string | undefined;
}

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(overrides: Partial<ServerOptions> = {}) {
  let ready = false;
  let triggers = 0;
  const logs: LogLine[] = [];
  const metrics = createMetricsRecorder({ collectDefault: true });
  running = await startServer({
    address: "127.0.0.1:0",
    metrics,
    status: {
      status: () => ({ revision: "abc123", resources: [{ kind: "ADGroup", name: "g1", ready: true }] }),
      ready: () => ready,
    },
    webhook: { secret, verify: verifyHmac, onTrigger: () => void (triggers += 1) },
    logger: {
      info: (obj, msg) => logs.push({ level: "info", obj, msg }),
      warn: (obj, msg) => logs.push({ level: "warn", obj, msg }),
    },
    maxBodyBytes: 1024,
    ...overrides,
  });
  return {
    url: running.url,
    metrics,
    logs,
    triggers: () => triggers,
    setReady: (value: boolean) => (ready = value),
  };
}

/** Sends a chunked POST (no Content-Length), so the server only learns the size while reading. */
function postChunked(url: string, chunks: readonly Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { "Transfer-Encoding": "chunked" } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe("metrics endpoint", () => {
  it("serves exposition text that promtool accepts without lint problems", async () => {
    const { url, metrics } = await start();
    metrics.reconcileFinished(2.3, "success");
    metrics.reconcileSucceededAt(new Date());
    metrics.setDrift("GroupManagedServiceAccount", "msa-service1", new Set(["spn"]));
    metrics.setDriftedByKind({
      GroupManagedServiceAccount: 1,
      ADGroup: 0,
      HostBinding: 0,
      KdsRootKey: 0,
      ManagedServiceAccount: 0,
    });
    metrics.setManagedByKind({
      GroupManagedServiceAccount: 1,
      ADGroup: 1,
      HostBinding: 1,
      KdsRootKey: 1,
      ManagedServiceAccount: 0,
    });
    metrics.actionApplied("ADGroup", "add-member", "success");
    metrics.sourceRevision("main@sha1:0123456789abcdef", "https://git.example/team/gmsa.git");
    metrics.fetchSucceeded(new Date());
    metrics.fetchFailed("network");
    metrics.revisionRejected("unverified");
    metrics.setLastGoodRevisionInForce(true);
    metrics.ldapOperation("search", 0.012, true);
    metrics.setKdsKeyEffective(true);
    metrics.setPasswordChangeAt("msa-service1", new Date(Date.now() + 86_400_000));
    metrics.setHostReachable("SERVER1", true);
    metrics.setHostRetrievable("SERVER1", "msa-service1", "pending");
    metrics.setResourceCondition("GroupManagedServiceAccount", "msa-service1", "Ready", false);

    const response = await fetch(`${url}/metrics`);
    const body = await response.text();

    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(body).toContain(
      'gmsa_gitops_resource_drift{kind="GroupManagedServiceAccount",name="msa-service1",drift_type="spn"} 1',
    );
    expect(body).toContain("process_cpu_seconds_total");
    const lint = await runPromtool(["check", "metrics"], body);
    expect(lint.output).toBe("");
    expect(lint.code).toBe(0);
  });

  it("sends a scrape of 50,000 resources in pieces that promtool accepts, the recorder's text", async () => {
    // prom-client's registry.metrics() builds the whole text (and every series' labels) at once.
    const { url, metrics } = await start();
    for (let i = 0; i < 50_000; i++) {
      const name = `bsv${String(i).padStart(5, "0")}`;
      metrics.setDrift("GroupManagedServiceAccount", name, new Set(["missing"]));
      metrics.setResourceCondition("GroupManagedServiceAccount", name, "Ready", false);
    }
    const response = await fetch(`${url}/metrics`);
    expect(response.headers.get("transfer-encoding")).toBe("chunked");
    expect(response.headers.get("content-length")).toBeNull();
    const body = await response.text();
    expect(body.split("\n").filter((l) => l.startsWith("gmsa_gitops_resource_"))).toHaveLength(100_000);
    const lint = await runPromtool(["check", "metrics"], body);
    expect(lint.output).toBe("");
    expect(lint.code).toBe(0);
  }, 60_000);
});

describe("health and readiness", () => {
  it("/healthz is 200 ok while the process serves", async () => {
    const { url } = await start();
    const response = await fetch(`${url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("ok\n");
  });

  it("HEAD /healthz answers 200 with headers and no body", async () => {
    const { url } = await start();
    const response = await fetch(`${url}/healthz`, { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
  });

  it("/readyz is 503 before the first completed reconcile and 200 after", async () => {
    const { url, setReady } = await start();
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    setReady(true);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it("/api/status returns the provider's status as JSON", async () => {
    const { url } = await start();
    const response = await fetch(`${url}/api/status`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      revision: "abc123",
      resources: [{ kind: "ADGroup", name: "g1", ready: true }],
    });
  });

  it("/api/status of 50,000 resources is sent in pieces as it is written, the same JSON", async () => {
    // One string of the whole JSON (about 85 MiB at this size, then a Buffer of it) was the
    // controller's memory peak at 50,000 resources.
    const status = {
      controller: { mode: "observe" },
      resources: Array.from({ length: 50_000 }, (_, i) => ({
        kind: "GroupManagedServiceAccount",
        name: `bsv${String(i).padStart(5, "0")}`,
        conditions: [{ type: "Ready", status: "False", reason: "DriftReported", message: "missing" }],
      })),
    };
    const { url } = await start({ status: { status: () => status, ready: () => true } });
    const response = await fetch(`${url}/api/status`);
    expect(response.headers.get("content-length")).toBeNull();
    expect(response.headers.get("transfer-encoding")).toBe("chunked");
    let pieces = 0;
    let text = "";
    const decoder = new TextDecoder();
    for await (const piece of response.body!) {
      pieces++;
      text += decoder.decode(piece as Uint8Array, { stream: true });
    }
    expect(pieces).toBeGreaterThan(10);
    expect(text).toBe(`${JSON.stringify(status)}\n`);
    const head = await fetch(`${url}/api/status`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("/api/status answers 500 without the error's text when the provider throws", async () => {
    const { url } = await start({
      status: {
        status: () => {
          throw new Error("boom");
        },
        ready: () => true,
      },
    });
    const response = await fetch(`${url}/api/status`);
    expect(response.status).toBe(500);
    expect(await response.text()).not.toContain("boom");
  });
});

describe("routing", () => {
  it("answers 404 for an unknown path", async () => {
    const { url } = await start();
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });

  it("answers 405 with Allow for a wrong method", async () => {
    const { url } = await start();
    const post = await fetch(`${url}/metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const get = await fetch(`${url}/hooks/git`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
  });
});

describe("git webhook", () => {
  const payload = JSON.stringify({ ref: "refs/heads/main", after: "0123456789abcdef" });

  it("accepts a correctly signed push with 202 and triggers a reconcile once", async () => {
    const { url, triggers } = await start();
    const response = await fetch(`${url}/hooks/git`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": sign(payload) },
      body: payload,
    });
    expect(response.status).toBe(202);
    expect(triggers()).toBe(1);
  });

  it("refuses a signature made with another secret with 401 and no trigger", async () => {
    const { url, triggers } = await start();
    const response = await fetch(`${url}/hooks/git`, {
      method: "POST",
      headers: { "x-hub-signature-256": sign(payload, "wrong-secret") },
      body: payload,
    });
    expect(response.status).toBe(401);
    expect(triggers()).toBe(0);
  });

  it("refuses a request without a signature with 401 and no trigger", async () => {
    const { url, triggers } = await start();
    const response = await fetch(`${url}/hooks/git`, { method: "POST", body: payload });
    expect(response.status).toBe(401);
    expect(triggers()).toBe(0);
  });

  it("refuses a body over the cap with 413, declared or chunked, and no trigger", async () => {
    const { url, triggers } = await start();
    const big = "x".repeat(4096);
    const declared = await fetch(`${url}/hooks/git`, {
      method: "POST",
      headers: { "x-hub-signature-256": sign(big) },
      body: big,
    });
    expect(declared.status).toBe(413);

    const chunked = await postChunked(`${url}/hooks/git`, [Buffer.alloc(700, 1), Buffer.alloc(700, 2)]);
    expect(chunked).toBe(413);
    expect(triggers()).toBe(0);
  });

  it("accepts a chunked body under the cap", async () => {
    const { url, triggers } = await start();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${url}/hooks/git`,
        { method: "POST", headers: { "Transfer-Encoding": "chunked", "x-hub-signature-256": sign(payload) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.write(payload.slice(0, 10));
      req.end(payload.slice(10));
    });
    expect(status).toBe(202);
    expect(triggers()).toBe(1);
  });

  it("never logs the secret or the body", async () => {
    const { url, logs } = await start();
    const marker = "BODY-MARKER-91c2";
    const body = JSON.stringify({ marker });
    await fetch(`${url}/hooks/git`, { method: "POST", headers: { "x-hub-signature-256": sign(body) }, body });
    await fetch(`${url}/hooks/git`, { method: "POST", headers: { "x-hub-signature-256": "sha256=00" }, body });

    const logged = JSON.stringify(logs);
    expect(logs.some((l) => l.msg?.includes("accepted"))).toBe(true);
    expect(logs.some((l) => l.level === "warn")).toBe(true);
    expect(logged).not.toContain(secret);
    expect(logged).not.toContain(marker);
  });

  it("works with the source module's verifier: a GitLab token is accepted, a wrong one refused", async () => {
    let triggered = 0;
    const { url } = await start({ webhook: { secret, verify: verifyWebhook, onTrigger: () => void (triggered += 1) } });
    const good = await fetch(`${url}/hooks/git`, {
      method: "POST",
      headers: { "x-gitlab-token": secret },
      body: payload,
    });
    const bad = await fetch(`${url}/hooks/git`, {
      method: "POST",
      headers: { "x-gitlab-token": "nope" },
      body: payload,
    });
    expect([good.status, bad.status]).toEqual([202, 401]);
    expect(triggered).toBe(1);
  });

  it("is 404 when no webhook is configured", async () => {
    const { url } = await start({ webhook: undefined });
    const response = await fetch(`${url}/hooks/git`, {
      method: "POST",
      headers: { "x-hub-signature-256": sign(payload) },
      body: payload,
    });
    expect(response.status).toBe(404);
  });
});

describe("lifecycle", () => {
  it("listens on a free port when given port 0 with an empty host", async () => {
    const { url } = await start({ address: ":0" });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("close() returns promptly while a keep-alive connection is open, and the port stops answering", async () => {
    const { url } = await start();
    const agent = new Agent({ keepAlive: true });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        request(`${url}/healthz`, { agent }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on("error", reject)
          .end();
      });
      expect(status).toBe(200);

      const started = Date.now();
      await running?.close();
      running = undefined;
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      agent.destroy();
    }
  });
});

describe("Prometheus rules", () => {
  const rules = fileURLToPath(new URL("../deploy/prometheus/rules.yaml", import.meta.url));
  const rulesTest = fileURLToPath(new URL("../deploy/prometheus/rules.test.yaml", import.meta.url));

  it("pass promtool check rules", async () => {
    const result = await runPromtool(["check", "rules", rules]);
    expect(result.output).toContain("SUCCESS");
    expect(result.code).toBe(0);
  });

  it("fire as the unit tests in rules.test.yaml expect (promtool test rules)", async () => {
    const result = await runPromtool(["test", "rules", rulesTest]);
    expect(result.output).toContain("SUCCESS");
    expect(result.code).toBe(0);
  });
});

describe("Grafana dashboard", () => {
  it("every query is PromQL that promtool parses (Grafana's variables given example values)", async () => {
    const dashboard = JSON.parse(
      readFileSync(fileURLToPath(new URL("../deploy/grafana/dashboard.json", import.meta.url)), "utf8"),
    ) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(20);
    // Each query as a recording rule: `promtool check rules` parses every expression.
    const example = (expr: string): string =>
      expr
        .replaceAll("$__rate_interval", "2m")
        .replaceAll("$__interval", "1m")
        .replaceAll("$__range", "1h")
        .replace(/\$\{?kind\}?/g, ".*");
    const file = join(mkdtempSync(join(tmpdir(), "gmsa-dashboard-")), "queries.yaml");
    const rules = exprs.map((q, i) => ({ record: `dashboard:query_${i}`, expr: example(q.expr) }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
    const result = await runPromtool(["check", "rules", file]);
    expect(result.output).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(result.code).toBe(0);
  });
});
