// The controller end to end: real Git repositories (file:// URLs), one real Samba AD DC, real
// HTTP, the real CLI as a child process for signals and logs, and promtool for the scrape.
// Results are checked through independent paths: ldapsearch for AD, git for revisions,
// promtool for the exposition format.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { main } from "../controller/cli/main.ts";
import { loadConfig } from "../controller/config/index.ts";

import { createLogger, startController } from "../controller/main.ts";
import type { RunningController } from "../controller/main.ts";
import { createGitRepo } from "./harness/git-repo.ts";
import type { GitRepo } from "./harness/git-repo.ts";
import { startDc } from "./harness/samba.ts";
import { logCapture } from "./support/logs.ts";
import type { Dc } from "./harness/samba.ts";

const root = join(import.meta.dirname, "..");
const examples = join(root, "examples");
const node = join(root, "node_modules", "node", "bin", "node");
const cliEntry = join(root, "bin", "gmsa-gitops.mjs");

const SERVICE1 = "service1/account.yaml";
const SERVICE1_DESCRIPTION = "Service1 batch jobs and Windows service";
/** Short enough for a test, long enough that one cycle (fetch, observe, apply) fits in it on a busy machine. */
const INTERVAL = "2s";
/** How long "within one interval" may take on a loaded 2-core machine: the interval plus a generous margin. */
const WITHIN_INTERVAL_MS = 30_000;
/** A child process of the CLI loads its modules from scratch: allow for that under load. */
const CLI_WAIT_MS = 90_000;
// Three CLI processes start Node and load the controller; on a loaded 2-core machine that alone
// took minutes in one run, so the test may wait for each step up to CLI_WAIT_MS.
const CLI_TEST_TIMEOUT_MS = 420_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something other than undefined; fails with `what` after `timeoutMs`. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = WITHIN_INTERVAL_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(150);
  }
}

/** Values of one attribute in unwrapped LDIF (plain values only). */
function attr(ldif: string, name: string): string[] {
  const out: string[] = [];
  for (const line of ldif.split("\n")) {
    const m = /^([^:]+):(:?) ?(.*)$/.exec(line);
    if (m && m[1]!.toLowerCase() === name.toLowerCase()) out.push(m[2] === ":" ? `base64:${m[3]!}` : m[3]!);
  }
  return out;
}

/** The samples of `name` in a scrape whose labels include these values. */
function samples(scrape: string, name: string, labels: Record<string, string>): number[] {
  const out: number[] = [];
  for (const line of scrape.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) out.push(Number(m[3]));
  }
  return out;
}

/** The one sample of `name` with these label values, or undefined when the series is absent. */
const sample = (scrape: string, name: string, labels: Record<string, string> = {}): number | undefined =>
  samples(scrape, name, labels)[0];

/** The sum of every sample of `name` whose labels include these values (0 when none). */
const total = (scrape: string, name: string, labels: Record<string, string> = {}): number =>
  samples(scrape, name, labels).reduce((a, b) => a + b, 0);

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

const scrape = async (c: { url: string }): Promise<string> => (await get(`${c.url}/metrics`)).body;

interface StatusBody {
  controller: {
    source: {
      revision: string | null;
      rejected: {
        revision: string;
        reason: string;
        errors: { file: string; line: number; message: string }[];
      } | null;
    };
    lastReconcile: { result: string } | null;
  };
  resources: {
    kind: string;
    name: string;
    conditions: { type: string; status: string; reason: string }[];
  }[];
}

const status = async (c: { url: string }): Promise<StatusBody> =>
  JSON.parse((await get(`${c.url}/api/status`)).body) as StatusBody;

/** POSTs a GitHub-style push webhook: the signature is an HMAC-SHA256 of the raw body with `secret`. */
async function postWebhook(url: string, secret: string): Promise<number> {
  const body = JSON.stringify({ ref: "refs/heads/main", after: randomBytes(20).toString("hex") });
  const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
  const res = await fetch(`${url}/hooks/git`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature },
    body,
  });
  await res.text();
  return res.status;
}

/** A pino JSON line. */
interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function parseLines(text: string): LogLine[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);
}

describe("the controller against Samba and Git", () => {
  let dc: Dc;
  const cleanups: (() => Promise<void> | void)[] = [];
  const defer = (fn: () => Promise<void> | void): void => void cleanups.push(fn);

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  });
  afterEach(async () => {
    // Last started, first stopped: controllers before the proxies and repositories they use.
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    await dc?.stop();
  });

  const dcFlags = (): Record<string, string> => ({
    "ldap-url": dc.url,
    "bind-dn": dc.adminDn,
    "bind-password-file": dc.passwordFile,
    "ca-file": dc.caFile,
    "ownership-key-file": dc.ownershipKeyFile,
  });

  function tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  function repo(): GitRepo {
    const r = createGitRepo({ from: examples });
    defer(() => r.remove());
    return r;
  }

  /** The controller in this process, as `run` builds it, with its JSON log lines captured. */
  async function start(
    flags: Record<string, string | boolean>,
    onLog?: (chunk: string) => void,
  ): Promise<RunningController & { logs: () => LogLine[] }> {
    const config = loadConfig({
      flags: { ...dcFlags(), listen: "127.0.0.1:0", "log-format": "json", interval: INTERVAL, ...flags },
      env: {},
    });
    if (!config.ok) throw new Error(config.errors.map((e) => `${e.source}: ${e.message}`).join("; "));
    const captured = logCapture(onLog);
    const running = await startController(config.config, createLogger(config.config.log, captured.stream));
    defer(() => running.stop());
    return { ...running, logs: () => parseLines(captured.text()) };
  }

  /** A git-mode controller on a fresh clone folder. */
  const startGit = (r: GitRepo, flags: Record<string, string | boolean> = {}, onLog?: (chunk: string) => void) =>
    start({ "git-url": r.url, "work-dir": join(tempDir("gmsa-clone-"), "clone"), ...flags }, onLog);

  async function ready(c: { url: string }): Promise<void> {
    await waitFor("/readyz to answer 200", async () =>
      (await get(`${c.url}/readyz`)).status === 200 ? true : undefined,
    );
  }

  async function gmsa(account: string, ...attributes: string[]): Promise<string> {
    return dc.ldap("ldapsearch", ["-b", dc.baseDn, "-s", "sub", `(sAMAccountName=${account}$)`, ...attributes]);
  }
  const description = async (account: string): Promise<string | undefined> =>
    attr(await gmsa(account, "description"), "description")[0];

  /** Brings AD to the examples with `gmsa-gitops apply`, so a test starts from a known state. */
  async function applyExamples(): Promise<void> {
    const flags = Object.entries(dcFlags()).flatMap(([k, v]) => [`--${k}`, v]);
    let err = "";
    const code = await main(["apply", "--repo", examples, ...flags], {
      stdout: () => undefined,
      stderr: (s) => void (err += s),
    });
    expect(err).toBe("");
    expect(code).toBe(0);
  }

  async function editDescriptionByHand(account: string, text: string): Promise<void> {
    await dc.ldap("ldapmodify", [], {
      input: [
        `dn: CN=${account},CN=Managed Service Accounts,${dc.baseDn}`,
        "changetype: modify",
        "replace: description",
        `description: ${text}`,
        "",
      ].join("\n"),
    });
  }

  it("a commit changing a description reaches AD within one interval", async () => {
    const r = repo();
    const c = await startGit(r);
    await ready(c);
    expect(await description("MSA-service1")).toBe(SERVICE1_DESCRIPTION);

    r.replace(SERVICE1, SERVICE1_DESCRIPTION, "Changed in Git");
    const commit = r.commit("service1: new description");
    const t0 = Date.now();
    await waitFor("the new description in AD", async () =>
      (await description("MSA-service1")) === "Changed in Git" ? true : undefined,
    );
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(WITHIN_INTERVAL_MS);
    expect((await status(c)).controller.source.revision).toBe(commit);
    expect(c.logs().some((l) => l.msg === "new revision loaded" && l["revision"] === commit)).toBe(true);
    // The line of the write says how long the write itself took.
    const line = c.logs().find((l) => l.msg === "applied" && l["resource"] === "msa-service1");
    expect(line?.["durationMs"]).toBeTypeOf("number");
    expect(line!["durationMs"] as number).toBeGreaterThanOrEqual(0);
    expect(line!["durationMs"] as number).toBeLessThanOrEqual(elapsed);
  });

  it("a signed webhook triggers a reconcile at once; a bad signature gets 401 and changes nothing", async () => {
    const secret = randomBytes(16).toString("hex");
    const secretFile = join(tempDir("gmsa-secret-"), "webhook");
    writeFileSync(secretFile, secret, { mode: 0o600 });
    const r = repo();
    // An hour between polls: within this test only the webhook can explain a reconcile.
    const c = await startGit(r, { interval: "1h", "webhook-secret-file": secretFile });
    await ready(c);
    const reconciles = async (): Promise<number> =>
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "success" }) ?? 0) +
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "partial" }) ?? 0);
    const before = await reconciles();
    const current = (await description("MSA-service1"))!;

    r.replace(SERVICE1, SERVICE1_DESCRIPTION, "Pushed with a webhook");
    const commit = r.commit("service1: description for the webhook test");

    expect(await postWebhook(c.url, "not-the-secret")).toBe(401);
    await sleep(4_000);
    expect(await description("MSA-service1")).toBe(current);
    expect(await reconciles()).toBe(before);
    expect(c.logs().some((l) => l.msg === "webhook refused")).toBe(true);

    expect(await postWebhook(c.url, secret)).toBe(202);
    await waitFor("the webhook's commit in AD", async () =>
      (await description("MSA-service1")) === "Pushed with a webhook" ? true : undefined,
    );
    expect((await status(c)).controller.source.revision).toBe(commit);
    // The write lands before the cycle ends (re-read for the hosts, publish): wait for its count.
    await waitFor("the webhook's reconcile counted", async () => ((await reconciles()) > before ? true : undefined));
    expect(await reconciles()).toBe(before + 1);
  });

  it("--source-interval: cycles between polls leave Git alone, still revert hand edits, and a webhook fetches at once", async () => {
    await applyExamples();
    const secret = randomBytes(16).toString("hex");
    const secretFile = join(tempDir("gmsa-secret-"), "webhook");
    writeFileSync(secretFile, secret, { mode: 0o600 });
    const r = repo();
    const c = await startGit(r, { "source-interval": "15m", "webhook-secret-file": secretFile });
    await ready(c);
    const lastFetch = async (): Promise<number | undefined> =>
      sample(await scrape(c), "gmsa_gitops_source_last_fetch_timestamp_seconds", {});
    const reconciles = async (): Promise<number> =>
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "success" }) ?? 0) +
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "partial" }) ?? 0);
    const fetchedAt = await lastFetch();
    const before = await reconciles();

    r.replace(SERVICE1, SERVICE1_DESCRIPTION, "Pushed, not announced");
    const commit = r.commit("service1: a push with no webhook");
    // Drift is still checked every interval (2 s) between polls.
    await editDescriptionByHand("MSA-service1", "edited by hand");
    await waitFor("the hand edit reverted", async () =>
      (await description("MSA-service1")) === SERVICE1_DESCRIPTION ? true : undefined,
    );
    await waitFor("two more cycles", async () => ((await reconciles()) >= before + 2 ? true : undefined));
    // ...without asking Git: the push is not seen, and the last fetch is the first one.
    expect(await description("MSA-service1")).toBe(SERVICE1_DESCRIPTION);
    expect(await lastFetch()).toBe(fetchedAt);
    const reported = ((await status(c)).controller.source as { lastFetchedAt?: string }).lastFetchedAt;
    expect(Date.parse(reported!) / 1000).toBeCloseTo(fetchedAt!, 2);

    expect(await postWebhook(c.url, secret)).toBe(202);
    await waitFor("the announced commit in AD", async () =>
      (await description("MSA-service1")) === "Pushed, not announced" ? true : undefined,
    );
    expect((await status(c)).controller.source.revision).toBe(commit);
    expect(await lastFetch()).toBeGreaterThan(fetchedAt!);
  });

  it("an invalid commit keeps the last good revision in force, says why, and a fixing commit clears it", async () => {
    await applyExamples();
    const r = repo();
    const c = await startGit(r);
    await ready(c);
    const good = r.head();
    const rejectedBefore =
      sample(await scrape(c), "gmsa_gitops_source_revision_rejected_total", { reason: "invalid" }) ?? 0;

    // A typo'd field name beside a real change: the revision must be refused whole, the
    // description never reaching AD.
    r.replace(SERVICE1, SERVICE1_DESCRIPTION, "Must not reach AD");
    r.replace(SERVICE1, "  managedPasswordIntervalInDays: 30", "  managedPasswordIntervalDays: 30");
    const bad = r.commit("service1: typo");
    const badLine = r.read(SERVICE1).split("\n").indexOf("  managedPasswordIntervalDays: 30") + 1;

    const rejected = await waitFor("the rejected revision in /api/status", async () => {
      const s = await status(c);
      return s.controller.source.rejected?.revision === bad ? s : undefined;
    });
    expect(rejected.controller.source.revision).toBe(good);
    expect(rejected.controller.source.rejected?.reason).toBe("ValidationFailed");
    const errors = rejected.controller.source.rejected?.errors ?? [];
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.map((e) => `${e.file}:${e.line}`)).toContain(`${SERVICE1}:${badLine}`);

    const metrics = await scrape(c);
    expect(sample(metrics, "gmsa_gitops_source_revision_rejected_total", { reason: "invalid" })).toBe(
      rejectedBefore + 1,
    );
    expect(sample(metrics, "gmsa_gitops_source_stale")).toBe(1);
    // Cycles go on at the good revision; the bad one is counted once, not once per cycle.
    const reconciled = sample(metrics, "gmsa_gitops_reconciles_total", { result: "success" }) ?? 0;
    await waitFor("two more cycles", async () =>
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "success" }) ?? 0) >= reconciled + 2
        ? true
        : undefined,
    );
    expect(await description("MSA-service1")).toBe(SERVICE1_DESCRIPTION);
    expect(sample(await scrape(c), "gmsa_gitops_source_revision_rejected_total", { reason: "invalid" })).toBe(
      rejectedBefore + 1,
    );

    r.replace(SERVICE1, "  managedPasswordIntervalDays: 30", "  managedPasswordIntervalInDays: 30");
    r.replace(SERVICE1, "Must not reach AD", "Fixed in Git");
    const fixed = r.commit("service1: fix the typo");
    await waitFor("the fixing commit in AD", async () =>
      (await description("MSA-service1")) === "Fixed in Git" ? true : undefined,
    );
    await waitFor("the status to clear", async () => {
      const s = await status(c);
      return s.controller.source.revision === fixed && s.controller.source.rejected === null ? true : undefined;
    });
    expect(sample(await scrape(c), "gmsa_gitops_source_stale")).toBe(0);
  });

  /** Scrapes until the drift series of msa-service1 reads 1 (or its DriftDetected condition shows): the cycle that found it. */
  async function seeDrift(c: { url: string }): Promise<void> {
    await waitFor("the drift of msa-service1 to show", async () => {
      const metric =
        sample(await scrape(c), "gmsa_gitops_resource_drift", {
          kind: "GroupManagedServiceAccount",
          name: "msa-service1",
          drift_type: "attribute",
        }) === 1;
      const condition = (await status(c)).resources
        .find((res) => res.kind === "GroupManagedServiceAccount" && res.name === "msa-service1")
        ?.conditions.find((cond) => cond.type === "DriftDetected" && cond.status === "True");
      return metric || condition ? true : undefined;
    });
  }

  it("a hand edit in AD raises the drift metric and is reverted at the next interval", async () => {
    await applyExamples();
    const r = repo();
    const c = await startGit(r);
    await ready(c);
    await editDescriptionByHand("MSA-service1", "edited by hand");

    await seeDrift(c);
    await waitFor("the description restored", async () =>
      (await description("MSA-service1")) === SERVICE1_DESCRIPTION ? true : undefined,
    );
    const drift = c.logs().find((l) => l.msg === "drift detected" && l["resource"] === "msa-service1");
    expect(drift?.["drift"]).toContain("attribute");
    expect(
      sample(await scrape(c), "gmsa_gitops_actions_total", {
        kind: "GroupManagedServiceAccount",
        action: "update",
        result: "success",
      }),
    ).toBeGreaterThanOrEqual(1);
    // Once fixed, the next cycle clears the series.
    await waitFor("the drift series back to 0", async () =>
      sample(await scrape(c), "gmsa_gitops_resource_drift", {
        kind: "GroupManagedServiceAccount",
        name: "msa-service1",
        drift_type: "attribute",
      }) === 0
        ? true
        : undefined,
    );
  });

  it("in observe mode a hand edit is reported (metric 1, DriftReported) and nothing is written", async () => {
    await applyExamples();
    const r = repo();
    const c = await startGit(r, { mode: "observe" });
    await ready(c);
    await editDescriptionByHand("MSA-service1", "edited by hand, observed");
    const usn = attr(await gmsa("MSA-service1", "uSNChanged"), "uSNChanged");
    expect(usn).toHaveLength(1);

    // In observe mode the drift stays, so both the metric and the condition settle on it.
    const reported = await waitFor("metric 1 and a DriftReported condition", async () => {
      const metric = sample(await scrape(c), "gmsa_gitops_resource_drift", {
        kind: "GroupManagedServiceAccount",
        name: "msa-service1",
        drift_type: "attribute",
      });
      const res = (await status(c)).resources.find((x) => x.name === "msa-service1");
      const drift = res?.conditions.find((x) => x.type === "DriftDetected");
      return metric === 1 && drift?.reason === "DriftReported" ? res : undefined;
    });
    expect(reported.conditions.find((x) => x.type === "Ready")).toMatchObject({
      status: "False",
      reason: "DriftReported",
    });

    const cycles = sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "success" }) ?? 0;
    await waitFor("two more cycles", async () =>
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "success" }) ?? 0) >= cycles + 2
        ? true
        : undefined,
    );
    const after = await gmsa("MSA-service1", "uSNChanged", "description");
    expect(attr(after, "uSNChanged")).toEqual(usn);
    expect(attr(after, "description")).toEqual(["edited by hand, observed"]);
    expect(total(await scrape(c), "gmsa_gitops_actions_total", { kind: "GroupManagedServiceAccount" })).toBe(0);
  });

  it("promtool check metrics accepts a real scrape taken after drift and actions", async () => {
    await applyExamples();
    await editDescriptionByHand("MSA-service1", "edited for the scrape");
    const r = repo();
    const c = await startGit(r);
    await ready(c);
    await waitFor("the description restored", async () =>
      (await description("MSA-service1")) === SERVICE1_DESCRIPTION ? true : undefined,
    );
    const text = await scrape(c);
    // The series a dashboard needs exist in this scrape.
    for (const name of [
      "gmsa_gitops_resource_drift",
      "gmsa_gitops_actions_total",
      "gmsa_gitops_reconciles_total",
      "gmsa_gitops_source_info",
      "gmsa_gitops_ldap_operation_duration_seconds_bucket",
    ])
      expect(sample(text, name), name).toBeDefined();

    const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, output }));
      child.stdin.end(text);
    });
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  });

  it("/readyz is 503 while the DC is unreachable, 200 after a completed reconcile, and 503 again while the DC is frozen", async () => {
    // A port nothing listens on yet; later a plain TCP relay to the DC opens on it. The DC's
    // certificate names 127.0.0.1, so TLS verifies through the relay.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = repo();
    const c = await startGit(r, { "ldap-url": `ldaps://127.0.0.1:${port}`, "ldap-timeout": "3s" });

    await waitFor("a failed reconcile", async () =>
      (sample(await scrape(c), "gmsa_gitops_reconciles_total", { result: "failure" }) ?? 0) >= 1 ? true : undefined,
    );
    const notReady = await get(`${c.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect((await get(`${c.url}/healthz`)).status).toBe(200);
    expect((await status(c)).controller.lastReconcile?.result).toBe("failure");
    // The body says why: no cycle completed, and the last one's error (nothing secret in it).
    expect(notReady.body).toMatch(/^not ready: no reconcile has completed yet; the last one failed: .*127\.0\.0\.1/);
    expect(notReady.body).not.toContain(dc.adminPassword);

    const dcPort = Number(new URL(dc.url).port);
    const sockets = new Set<Socket>();
    // Frozen: connections are accepted and nothing is answered, as from a DC stopped with SIGSTOP.
    let frozen = false;
    const relay: Server = createServer((client) => {
      if (frozen) {
        sockets.add(client);
        client.on("error", () => undefined);
        client.on("close", () => sockets.delete(client));
        return;
      }
      const upstream = connect(dcPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => relay.listen(port, "127.0.0.1", resolve));
    defer(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          relay.close(() => resolve());
        }),
    );
    await ready(c);
    expect((await status(c)).controller.lastReconcile?.result).not.toBe("failure");
    const observedAt = sample(await scrape(c), "gmsa_gitops_last_observed_timestamp_seconds") ?? 0;
    expect(observedAt).toBeGreaterThan(0);

    frozen = true;
    for (const s of sockets) s.pause();
    const frozenAnswer = await waitFor("/readyz to answer 503 with the DC frozen", async () => {
      const answer = await get(`${c.url}/readyz`);
      return answer.status === 503 ? answer : undefined;
    });
    expect(frozenAnswer.body).toMatch(/^not ready: Active Directory could not be observed: /);
    const unknown = (await status(c)).resources.filter((res) =>
      res.conditions.some((cond) => cond.type === "Ready" && cond.status === "Unknown"),
    );
    expect(unknown.length).toBeGreaterThan(0);
    expect(unknown[0]?.conditions.find((cond) => cond.type === "Ready")?.reason).toBe("ObservationFailed");
    expect(sample(await scrape(c), "gmsa_gitops_last_observed_timestamp_seconds")).toBe(observedAt);

    frozen = false;
    for (const s of sockets) s.destroy();
    await ready(c);
    expect(sample(await scrape(c), "gmsa_gitops_last_observed_timestamp_seconds")).toBeGreaterThan(observedAt);
  });

  /** The real CLI in a child process, its stdout and stderr kept whole. */
  function runCli(args: string[]): {
    child: ChildProcess;
    out: () => string;
    lines: () => LogLine[];
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  } {
    const child = spawn(node, [cliEntry, "run", "--log-format", "json", "--listen", "127.0.0.1:0", ...args], {
      cwd: root,
      env: { PATH: process.env["PATH"], HOME: tmpdir() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal })),
    );
    defer(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    return { child, out: () => out, lines: () => parseLines(out), exited };
  }

  const cliDcFlags = (): string[] => Object.entries(dcFlags()).flatMap(([k, v]) => [`--${k}`, v]);

  it("a password file corrected while the refused bind is being reported still ends the back-off at once", async () => {
    const files = tempDir("gmsa-refused-");
    const passwordFile = join(files, "password");
    writeFileSync(passwordFile, `Wrong-${randomBytes(12).toString("hex")}`, { mode: 0o600 });
    // The fix lands inside the refused cycle, after its bind read the file and before the cycle
    // ends: the moment a poll started only then would take as its baseline and never report.
    let fixed = false;
    const c = await startGit(repo(), { "bind-password-file": passwordFile, interval: "1h" }, (chunk) => {
      if (!fixed && chunk.includes("backing off")) {
        writeFileSync(passwordFile, dc.adminPassword, { mode: 0o600 });
        fixed = true;
      }
    });
    await waitFor(
      "the bind with the corrected password file",
      () => c.logs().find((l) => l.msg === "bound to the domain controller again"),
      WITHIN_INTERVAL_MS,
    );
    expect(fixed).toBe(true);
  });

  it(
    "an idle controller sleeps between cycles: no timer wakes it every second",
    async () => {
      const files = tempDir("gmsa-idle-");
      const r = repo();
      const run = runCli([...cliDcFlags(), "--git-url", r.url, "--work-dir", join(files, "clone"), "--interval", "1h"]);
      const started = await waitFor(
        "the controller started line",
        () => run.lines().find((l) => l.msg === "controller started"),
        CLI_WAIT_MS,
      );
      const url = String(started["url"]);
      await waitFor("/readyz to answer 200", async () =>
        (await get(`${url}/readyz`)).status === 200 ? true : undefined,
      );
      // The main thread's voluntary context switches: each time it went to sleep waiting for
      // something (a timer, a socket, a file-system answer). Counted once the start-up settled.
      const pid = run.child.pid!;
      const sleeps = (): number =>
        Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8"))?.[1]);
      await sleep(10_000);
      const before = sleeps();
      await sleep(10_000);
      const woke = sleeps() - before;
      // A timer of 1 s (the event-loop delay sampler, the password file's stat poll) is 10 wake-ups each.
      expect(woke).toBeLessThan(5);
      expect((await get(`${url}/readyz`)).status).toBe(200);
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    "no bind password or webhook secret appears in any log line, failures included",
    async () => {
      const secret = `whsec-${randomBytes(16).toString("hex")}`;
      const files = tempDir("gmsa-secrets-");
      writeFileSync(join(files, "webhook"), secret, { mode: 0o600 });
      const wrongPassword = `Wrong-${randomBytes(12).toString("hex")}`;
      writeFileSync(join(files, "wrong"), wrongPassword, { mode: 0o600 });
      const r = repo();

      // Both runs at once (each CLI start costs seconds of module loading on a busy machine).
      const wrong = runCli([
        "--ldap-url",
        dc.url,
        "--bind-dn",
        dc.adminDn,
        "--bind-password-file",
        join(files, "wrong"),
        "--ca-file",
        dc.caFile,
        "--ownership-key-file",
        dc.ownershipKeyFile,
        "--git-url",
        r.url,
        "--work-dir",
        join(files, "clone-wrong"),
        "--interval",
        INTERVAL,
      ]);
      const good = runCli([
        ...cliDcFlags(),
        "--git-url",
        r.url,
        "--work-dir",
        join(files, "clone-good"),
        "--interval",
        INTERVAL,
        "--webhook-secret-file",
        join(files, "webhook"),
      ]);
      // The wrong run must reach the bind (a valid revision is in force), not fail earlier.
      const bindFailure = await waitFor(
        "the wrong password's failed bind logged",
        () => wrong.lines().find((l) => l.msg === "the domain controller refused the bind account; backing off"),
        CLI_WAIT_MS,
      );
      expect(String(bindFailure["err"])).toContain("invalid credentials");
      expect(bindFailure["reason"]).toBe("InvalidCredentials");
      // It waits (5 min at least) before binding again, but not for a new password: the file is
      // read again at each bind, and a change to it ends the back-off at once.
      writeFileSync(join(files, "wrong"), dc.adminPassword, { mode: 0o600 });
      await waitFor(
        "the bind with the corrected password file",
        () => wrong.lines().find((l) => l.msg === "bound to the domain controller again"),
        CLI_WAIT_MS,
      );
      expect(
        wrong.lines().filter((l) => l.msg === "the domain controller refused the bind account; backing off"),
      ).toHaveLength(1);
      const started = await waitFor(
        "the controller started line",
        () => good.lines().find((l) => l.msg === "controller started"),
        CLI_WAIT_MS,
      );
      const url = started["url"] as string;
      await waitFor(
        "/readyz to answer 200",
        async () => ((await get(`${url}/readyz`)).status === 200 ? true : undefined),
        CLI_WAIT_MS,
      );
      expect(await postWebhook(url, "a-wrong-secret")).toBe(401);
      expect(await postWebhook(url, secret)).toBe(202);
      // An invalid revision too, so its rejection is logged.
      r.replace(SERVICE1, "  managedPasswordIntervalInDays: 30", "  managedPasswordIntervalDays: 30");
      r.commit("typo");
      await waitFor(
        "the rejection logged",
        () => good.lines().find((l) => l.msg.startsWith("revision rejected")),
        CLI_WAIT_MS,
      );
      const statusBody = (await get(`${url}/api/status`)).body;
      good.child.kill("SIGTERM");
      wrong.child.kill("SIGTERM");
      expect((await good.exited).code).toBe(0);
      expect((await wrong.exited).code).toBe(0);

      const logged = good.lines().map((l) => l.msg);
      for (const msg of ["webhook refused", "webhook: reconcile now", "stopped"]) expect(logged).toContain(msg);
      expect(wrong.lines().map((l) => l.msg)).toContain("stopped");
      // With the right password nothing failed: no error line, also not while stopping.
      expect(good.lines().filter((l) => l.level >= 50)).toEqual([]);
      // Booleans, not toContain: a failing assertion must not print the secret it found.
      for (const [name, text] of [
        ["run with the right password", good.out()],
        ["run with a wrong password", wrong.out()],
        ["/api/status", statusBody],
      ] as const) {
        expect(text.includes(dc.adminPassword), `bind password in ${name}`).toBe(false);
        expect(text.includes(wrongPassword), `wrong bind password in ${name}`).toBe(false);
        expect(text.includes(secret), `webhook secret in ${name}`).toBe(false);
      }
    },
    CLI_TEST_TIMEOUT_MS,
  );

  it(
    "SIGTERM during apply exits 0 after the action in flight, leaving no half-written gMSA",
    async () => {
      const count = 200;
      const files: Record<string, string> = {};
      for (let i = 0; i < count; i++) {
        const account = `sig${String(i).padStart(4, "0")}`;
        files[`sig/${account}.yaml`] = [
          "apiVersion: gmsa-gitops.io/v1alpha1",
          "kind: GroupManagedServiceAccount",
          "metadata:",
          `  name: ${account}`,
          "spec:",
          `  accountName: ${account}`,
          `  dnsHostName: ${account}.company.local`,
          `  description: SIGTERM test ${i}`,
          "  kerberosEncryptionTypes: [AES256]",
          "  principalsAllowedToRetrieveManagedPassword:",
          "    - computer: SERVER1",
          "",
        ].join("\n");
      }
      const r = createGitRepo({ files });
      defer(() => r.remove());
      const deleteCreated = async (): Promise<void> => {
        const found = await dc.ldap("ldapsearch", [
          "-b",
          `CN=Managed Service Accounts,${dc.baseDn}`,
          "-s",
          "one",
          "(sAMAccountName=sig*)",
          "1.1",
        ]);
        const dns = attr(found, "dn");
        if (dns.length > 0) await dc.ldap("ldapdelete", ["-c"], { input: `${dns.join("\n")}\n` });
      };
      defer(deleteCreated);

      const cli = runCli([
        ...cliDcFlags(),
        "--git-url",
        r.url,
        "--work-dir",
        join(tempDir("gmsa-clone-"), "clone"),
        "--interval",
        "1h",
      ]);
      await waitFor("the first applied line", () => cli.lines().find((l) => l.msg === "applied"), CLI_WAIT_MS);
      const signalledAt = Date.now();
      cli.child.kill("SIGTERM");
      const exit = await Promise.race([cli.exited, sleep(20_000).then(() => "timeout" as const)]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(20_000);

      const lines = cli.lines();
      const msgs = lines.map((l) => l.msg);
      expect(msgs).toContain("signal received");
      expect(msgs.at(-1)).toBe("stopped");
      const applied = lines.filter((l) => l.msg === "applied").map((l) => l["resource"] as string);
      // Stopped part-way: not every account was created.
      expect(applied.length).toBeLessThan(count);

      const found = await dc.ldap("ldapsearch", [
        "-b",
        `CN=Managed Service Accounts,${dc.baseDn}`,
        "-s",
        "one",
        "(sAMAccountName=sig*)",
        "sAMAccountName",
        "userAccountControl",
        "adminDescription",
        "msDS-ManagedPasswordInterval",
        "msDS-GroupMSAMembership",
      ]);
      const entries = found.split(/\n\n+/).filter((block) => /^dn: /m.test(block));
      // Exactly the accounts the log says were applied exist: the one in flight finished, no other began.
      expect(entries.map((e) => attr(e, "sAMAccountName")[0]?.replace(/\$$/, "")).sort()).toEqual(applied.sort());
      for (const entry of entries) {
        const name = attr(entry, "sAMAccountName")[0];
        expect(attr(entry, "userAccountControl"), name).toEqual(["4096"]);
        expect(attr(entry, "adminDescription")[0], name).toMatch(/^gmsa-gitops:v2:default:[\w-]{43}$/);
        expect(attr(entry, "msDS-ManagedPasswordInterval"), name).toEqual(["30"]);
        expect(attr(entry, "msDS-GroupMSAMembership"), name).toHaveLength(1);
      }
    },
    CLI_TEST_TIMEOUT_MS,
  );
});
