/**
 * `gmsa-gitops status`: what a running controller's `/api/status` says, as a kubectl-style
 * table or as JSON, with an exit code a script can test (0 every resource Ready, 1 not).
 * Reads the same document as the status page through the same reader and filters.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/index.ts";
import { localUrl, parseListenAddress } from "../server/address.ts";
import type { ResourceView, StatusView } from "../server/status-view.ts";
import {
  age,
  filterResources,
  headline,
  readResourceView,
  readStatusView,
  sourceStale,
} from "../server/status-view.ts";
import { flattened } from "../printable.ts";
import type { Command, Io } from "./command.ts";
import { EXIT } from "./command.ts";

const USAGE = `Usage: gmsa-gitops status [--url URL] [--output table|json] [--kind KIND] [--not-ready]

Reads a running controller's /api/status and prints one line per resource:
KIND, NAME, READY (True, False, Unknown), STATUS (Ready, NotReady, Stalled, Unknown),
REASON, AGE (since the Ready condition last changed) and MESSAGE. A warning on stderr says
when the source is stale (a newer revision was refused, or fetching failed).

Options:
  --url URL               the controller's base URL (default: the address run listens on,
                          from --listen's variable GMSA_GITOPS_LISTEN or the config file)
  --config FILE           the config file run uses, to find that address
  -o, --output table|json table (default), or the /api/status document, filtered
  --kind KIND             only resources of this kind (GroupManagedServiceAccount, ADGroup,
                          HostBinding, KdsRootKey; any case)
  --not-ready             only resources that are not Ready
  --timeout SECONDS       how long to wait for the controller (default 10)
  -h, --help              show this help

Exit codes: 0 every listed resource is Ready, 1 some are not (or the controller has not
finished a reconcile yet), 2 usage error or the controller cannot be reached. HostBindings that
no host transport reaches (reason NoHostTransport) are listed but do not count.
`;

/** Why the status could not be read: one line, no stack. */
class Unreachable extends Error {}

/** The URL without user:password@, for messages. */
function shown(url: URL): string {
  const copy = new URL(url);
  copy.username = "";
  copy.password = "";
  return copy.toString();
}

/** `http://host:port`, `http://host:port/prefix/` or the full `.../api/status`. */
function statusUrl(base: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.pathname.endsWith("/api/status")) return url;
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return new URL("api/status", url);
}

/**
 * GETs the status document. Credentials in the URL (a proxy with basic auth in front of the
 * controller) are sent as an Authorization header, never printed: fetch refuses URLs that
 * carry them, and its message would quote the URL whole.
 */
async function fetchStatus(url: URL, timeoutMs: number): Promise<unknown> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (url.username !== "" || url.password !== "") {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers["Authorization"] = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  }
  const target = shown(url);
  let res: Response;
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs), headers });
  } catch (error) {
    // The URL fetched holds no credentials, so the cause's message cannot quote them.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why =
      (error as Error).name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : (cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : "request failed"));
    throw new Unreachable(`cannot reach ${target}: ${why}`);
  }
  const body = await res.text().catch(() => "");
  if (res.status !== 200) throw new Unreachable(`${target} answered HTTP ${res.status}`);
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new Unreachable(`${target} did not answer with JSON: is this a gmsa-gitops controller?`);
  }
}

/** Columns padded to their widest cell, three spaces apart; the last one is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  return [header, ...rows].map(line).join("\n") + "\n";
}

function resourceTable(resources: readonly ResourceView[], now: Date): string {
  return table(
    ["KIND", "NAME", "READY", "STATUS", "REASON", "AGE", "MESSAGE"],
    resources.map((r) => {
      const h = headline(r);
      const ready = r.conditions.find((c) => c.type === "Ready")?.status ?? "Unknown";
      return [r.kind, r.name, ready, r.state, h.reason, age(h.since ?? r.lastObservedAt, now), h.message].map(
        flattened,
      );
    }),
  );
}

function staleWarning(view: StatusView): string | undefined {
  const s = view.controller.source;
  if (!sourceStale(view.controller)) return undefined;
  if (s.rejected)
    return `warning: source stale: revision ${s.rejected.revision.slice(0, 12)} refused (${s.rejected.reason}: ${s.rejected.message}); ${s.revision?.slice(0, 12) ?? "no revision"} stays in force`;
  return `warning: source stale: the last fetch failed: ${s.lastFetchError ?? ""}`;
}

/** Where `run` listens, from the same settings (flags aside). */
function defaultUrl(configFile: string | undefined): string | { error: string } {
  const loaded = loadConfig({ flags: {}, ...(configFile !== undefined ? { configFile } : {}) });
  if (!loaded.ok) return { error: loaded.errors.map((e) => `${e.source}: ${e.message}`).join("; ") };
  const { host, port } = parseListenAddress(loaded.config.server.address);
  return localUrl(host, port);
}

async function runStatus(argv: readonly string[], io: Io): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        url: { type: "string" },
        config: { type: "string" },
        output: { type: "string", short: "o" },
        kind: { type: "string" },
        "not-ready": { type: "boolean" },
        timeout: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    io.stderr(`gmsa-gitops status: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const output = (values["output"] as string | undefined) ?? "table";
  if (output !== "table" && output !== "json") {
    io.stderr(`gmsa-gitops status: --output must be table or json, not "${output}"\n`);
    return EXIT.usage;
  }
  const timeoutText = values["timeout"] as string | undefined;
  const timeoutSeconds = timeoutText === undefined ? 10 : Number(timeoutText);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    io.stderr(`gmsa-gitops status: --timeout must be a number of seconds above 0\n`);
    return EXIT.usage;
  }
  let base = values["url"] as string | undefined;
  if (base === undefined) {
    let found: string | { error: string };
    try {
      found = defaultUrl(values["config"] as string | undefined);
    } catch (error) {
      found = { error: (error as Error).message };
    }
    if (typeof found !== "string") {
      io.stderr(`gmsa-gitops status: no --url, and the settings do not say where run listens: ${found.error}\n`);
      return EXIT.usage;
    }
    base = found;
  }
  const url = statusUrl(base);
  if (!url) {
    io.stderr(`gmsa-gitops status: --url must be an http:// or https:// URL, not "${base}"\n`);
    return EXIT.usage;
  }

  let json: unknown;
  try {
    json = await fetchStatus(url, timeoutSeconds * 1000);
  } catch (error) {
    io.stderr(`gmsa-gitops status: ${error instanceof Unreachable ? error.message : String(error)}\n`);
    return EXIT.usage;
  }
  const view = readStatusView(json);
  const filter = { kind: values["kind"] as string | undefined, notReady: values["not-ready"] === true };
  const shownResources = filterResources(view.resources, filter);
  // A HostBinding no host transport reaches is another component's (an agent on the host): listed, not counted.
  const counted = shownResources.filter(
    (r) => r.conditions.find((c) => c.type === "Ready")?.reason !== "NoHostTransport",
  );
  const allReady = counted.every((r) => r.state === "Ready");
  const neverReconciled = view.controller.lastReconcile === null;

  if (output === "json") {
    const doc = typeof json === "object" && json !== null ? (json as Record<string, unknown>) : {};
    const raw = Array.isArray(doc["resources"]) ? (doc["resources"] as unknown[]) : [];
    const kept = raw.filter((r) => {
      const v = readResourceView(r);
      return v !== null && filterResources([v], filter).length === 1;
    });
    io.stdout(`${JSON.stringify({ ...doc, resources: kept }, null, 2)}\n`);
  } else {
    const warning = staleWarning(view);
    if (warning) io.stderr(`${flattened(warning)}\n`);
    if (neverReconciled) io.stderr("the controller has not finished a reconcile yet\n");
    io.stdout(shownResources.length === 0 ? "No resources found.\n" : resourceTable(shownResources, new Date()));
  }
  return allReady && !neverReconciled ? EXIT.ok : EXIT.failed;
}

/** The `status` command. */
export const statusCommand: Command = {
  name: "status",
  summary: "show a running controller's resources and conditions (exit 0 all Ready, 1 not)",
  usage: USAGE,
  run: runStatus,
};
