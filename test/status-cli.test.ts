// `gmsa-gitops status` against a real HTTP server (the controller's own startServer) serving a
// realistic /api/status, through `main` for output and exit codes, and through the real bin
// in a child process for what a shell sees when the controller cannot be reached.
import { execFile } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../controller/cli/main.ts";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { startServer } from "../controller/server/index.ts";
import type { RunningServer } from "../controller/server/index.ts";

const BIN = join(import.meta.dirname, "..", "bin", "gmsa-gitops.mjs");

const minutesAgo = (m: number): string => new Date(Date.now() - m * 60_000).toISOString();
const condition = (type: string, status: string, reason: string, message: string, at: string) => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: at,
});
const resource = (kind: string, name: string, conditions: ReturnType<typeof condition>[]) => ({
  kind,
  name,
  dn: null,
  source: { file: "x.yaml", line: 1 },
  conditions,
  drift: [],
  changes: [],
  observeOnly: false,
  lastAppliedRevision: null,
  lastObservedAt: minutesAgo(0),
});

/** What the controller serves after a cycle with one stalled group (as Controller.status() shapes it). */
function realistic(stale: boolean) {
  return {
    controller: {
      source: {
        url: "https://git.company.local/ad/gmsa.git",
        revision: "1111111111111111111111111111111111111111",
        lastFetchedAt: minutesAgo(0),
        lastFetchError: null,
        rejected: stale
          ? {
              revision: "2222222222222222222222222222222222222222",
              reason: "ValidationFailed",
              message: "1 error(s) in the manifests",
              errors: [],
            }
          : null,
      },
      mode: "enforce",
      lastReconcile: { startedAt: minutesAgo(0), durationSeconds: 0.4, result: "success", error: null },
      kdsRootKey: { effective: true, effectiveAt: null },
    },
    resources: [
      resource("ADGroup", "gmsa-ghost-hosts", [
        condition("Ready", "False", "PrincipalNotFound", "not found in AD: computer NOSUCHPC", minutesAgo(7)),
        condition(
          "Stalled",
          "True",
          "PrincipalNotFound",
          "not found in AD: computer NOSUCHPC\u001b[2J\u202e",
          minutesAgo(7),
        ),
      ]),
      resource("ADGroup", "gmsa-service1-hosts", [
        condition("Ready", "True", "Reconciled", "in sync with Git", minutesAgo(180)),
      ]),
      resource("GroupManagedServiceAccount", "msa-service1", [
        condition("Ready", "True", "Reconciled", "in sync with Git", minutesAgo(3)),
      ]),
      resource("KdsRootKey", "default", [
        condition("Ready", "True", "Reconciled", "in sync with Git", minutesAgo(4000)),
      ]),
    ],
  };
}

/** Runs `main` and captures what it prints. */
async function status(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(["status", ...args], { stdout: (s) => void (out += s), stderr: (s) => void (err += s) });
  return { code, out, err };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("gmsa-gitops status", () => {
  let server: RunningServer;
  let stale = false;
  let healed = false;
  let untransported = false;

  beforeAll(async () => {
    server = await startServer({
      address: "127.0.0.1:0",
      metrics: createMetricsRecorder(),
      status: {
        ready: () => true,
        status: () => {
          const doc = realistic(stale);
          const resources = healed ? doc.resources.slice(1) : doc.resources;
          const unreached = resource("HostBinding", "web1-reports", [
            condition("Ready", "Unknown", "NoHostTransport", "not observed: no host transport here", minutesAgo(5)),
          ]);
          return { ...doc, resources: untransported ? [...resources, unreached] : resources };
        },
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("prints kubectl-like columns, one line per resource, and exits 1 when one is not Ready", async () => {
    const r = await status("--url", server.url);
    expect(r.code).toBe(1);
    expect(r.err).toBe("");
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^KIND\s+NAME\s+READY\s+STATUS\s+REASON\s+AGE\s+MESSAGE$/);
    expect(lines).toHaveLength(5);
    const ghost = lines.find((l) => l.includes("gmsa-ghost-hosts"))!;
    expect(ghost.split(/\s{3,}/)).toEqual([
      "ADGroup",
      "gmsa-ghost-hosts",
      "False",
      "Stalled",
      "PrincipalNotFound",
      "7m",
      "not found in AD: computer NOSUCHPC [2J",
    ]);
    // No escape sequence from AD reaches the terminal.
    expect(r.out).not.toContain("\u001b");
    expect(r.out).not.toContain("\u202e"); // a right-to-left override would reorder the row
    expect(lines.find((l) => l.includes("gmsa-service1-hosts"))).toMatch(/\s3h\s/);
    expect(lines.find((l) => l.startsWith("KdsRootKey"))).toMatch(/\s2d\s/);
    // Columns line up: every MESSAGE starts at the same offset.
    expect(new Set(lines.map((l) => l.indexOf(l.split(/\s{3,}/).at(-1)!))).size).toBe(1);
  });

  it("filters by kind and by not-Ready, and exits 0 when everything listed is Ready", async () => {
    const groups = await status("--url", server.url, "--kind", "adgroup");
    expect(
      groups.out
        .trimEnd()
        .split("\n")
        .slice(1)
        .map((l) => l.split(/\s+/)[1]),
    ).toEqual(["gmsa-ghost-hosts", "gmsa-service1-hosts"]);
    const notReady = await status("--url", server.url, "--not-ready");
    expect(
      notReady.out
        .trimEnd()
        .split("\n")
        .slice(1)
        .map((l) => l.split(/\s+/)[1]),
    ).toEqual(["gmsa-ghost-hosts"]);
    const gmsas = await status("--url", server.url, "--kind", "GroupManagedServiceAccount");
    expect(gmsas.code).toBe(0);
  });

  it("exits 0 once every resource is Ready", async () => {
    healed = true;
    try {
      const r = await status("--url", `${server.url}/`);
      expect(r.code).toBe(0);
      expect(r.out.trimEnd().split("\n")).toHaveLength(4);
      const none = await status("--url", server.url, "--not-ready");
      expect(none).toEqual({ code: 0, out: "No resources found.\n", err: "" });
    } finally {
      healed = false;
    }
  });

  it("lists host bindings no host transport reaches, Unknown, without counting them against the exit code", async () => {
    healed = true;
    untransported = true;
    try {
      const r = await status("--url", server.url);
      const row = r.out.split("\n").find((l) => l.includes("web1-reports")) ?? "";
      expect(row.split(/\s{3,}/).slice(0, 5)).toEqual([
        "HostBinding",
        "web1-reports",
        "Unknown",
        "Unknown",
        "NoHostTransport",
      ]);
      expect(r.code).toBe(0);
    } finally {
      healed = false;
      untransported = false;
    }
  });

  it("--output json prints the /api/status document with the filter applied", async () => {
    const r = await status("--url", server.url, "-o", "json", "--not-ready");
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as ReturnType<typeof realistic>;
    const served = realistic(false);
    expect(doc.controller.source).toEqual({ ...served.controller.source, lastFetchedAt: expect.any(String) });
    expect(doc.resources.map((x) => x.name)).toEqual(["gmsa-ghost-hosts"]);
    const withoutTimes = (cs: { type: string; status: string; reason: string; message: string }[] = []) =>
      cs.map(({ type, status, reason, message }) => ({ type, status, reason, message }));
    expect(withoutTimes(doc.resources[0]?.conditions)).toEqual(withoutTimes(served.resources[0]?.conditions));
  });

  it("warns on stderr when the source is stale", async () => {
    stale = true;
    try {
      const r = await status("--url", server.url);
      expect(r.err).toBe(
        "warning: source stale: revision 222222222222 refused (ValidationFailed: 1 error(s) in the manifests); 111111111111 stays in force\n",
      );
    } finally {
      stale = false;
    }
  });

  it("refuses bad options with exit 2 and one line", async () => {
    const bad = await status("--url", server.url, "--output", "yaml");
    expect(bad).toEqual({ code: 2, out: "", err: 'gmsa-gitops status: --output must be table or json, not "yaml"\n' });
    const notHttp = await status("--url", "ftp://x");
    expect(notHttp.code).toBe(2);
    expect(notHttp.err).toBe('gmsa-gitops status: --url must be an http:// or https:// URL, not "ftp://x"\n');
  });

  it("says in one line, without a stack trace, that a controller is unreachable (exit 2), hiding URL credentials", async () => {
    const port = await closedPort();
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        "npx",
        ["node", BIN, "status", "--url", `http://user:s3cret-token@127.0.0.1:${port}`],
        (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`gmsa-gitops status: cannot reach http://127.0.0.1:${port}/api/status: ECONNREFUSED\n`);
  });

  it("sends the credentials of --url as basic auth to a proxy that asks for them", async () => {
    const proxy = createHttpServer((req, res) => {
      const expected = `Basic ${Buffer.from("sre:pa ss@word").toString("base64")}`;
      if (req.headers.authorization !== expected) res.writeHead(401).end();
      else res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(realistic(false)));
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const { port } = proxy.address() as AddressInfo;
    try {
      const ok = await status("--url", `http://sre:pa%20ss%40word@127.0.0.1:${port}/gmsa/`, "--kind", "KdsRootKey");
      expect(ok.code).toBe(0);
      const refused = await status("--url", `http://sre:wrong@127.0.0.1:${port}/gmsa/`);
      expect(refused).toEqual({
        code: 2,
        out: "",
        err: `gmsa-gitops status: http://127.0.0.1:${port}/gmsa/api/status answered HTTP 401\n`,
      });
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it("says so when the URL answers something that is not a controller", async () => {
    const r = await status("--url", `${server.url}/metrics/`);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/answered HTTP 404\n$/);
  });
});
