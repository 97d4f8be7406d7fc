/**
 * The status page at `/`: one server-rendered HTML document made from the same JSON
 * `/api/status` serves. No script at all (the server forbids it by Content-Security-Policy),
 * so it reads the same with JavaScript off; it reloads itself with a meta refresh, and its
 * filters are a plain GET form whose parameters the server applies.
 *
 * Every string from the status document or the request goes through `escapeHtml`.
 */
import { lastChangeText } from "../vocabulary.ts";
import { escapeHtml } from "./html.ts";
import type { ChangeView, ConditionView, ResourceFilter, ResourceView, StatusView } from "./status-view.ts";
import { age, filterResources, headline, showValue, sourceStale } from "./status-view.ts";

/** What the page needs besides the status document. */
export interface PageOptions {
  readonly filter: ResourceFilter;
  readonly now: Date;
  /** Seconds between automatic reloads. */
  readonly refreshSeconds: number;
  /** Most resource rows rendered (default 500); the rest are counted, and filters reach them. */
  readonly maxRows?: number;
}

/** Problems first: Stalled, then not Ready, then Unknown, then Ready; stable within each. */
const ORDER: Readonly<Record<ResourceView["state"], number>> = { Stalled: 0, NotReady: 1, Unknown: 2, Ready: 3 };

/** The page's Content-Security-Policy: no script, no external anything, styles only inline. */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const e = escapeHtml;

/** A time as "<time>" showing the age, with the absolute time on hover. */
function when(iso: string | null, now: Date): string {
  if (iso === null) return `<span class="muted">-</span>`;
  return `<time datetime="${e(iso)}" title="${e(iso)}">${e(age(iso, now))} ago</time>`;
}

const short = (revision: string | null): string => (revision === null ? "-" : revision.slice(0, 12));

function badge(state: string, text = state): string {
  return `<span class="badge ${e(state.toLowerCase())}">${e(text)}</span>`;
}

/** Each changed attribute, old → new, and under it who last changed it in AD (one phrase, as in the plan). */
function changeList(changes: readonly ChangeView[]): string {
  if (changes.length === 0) return "";
  return `<ul class="changes">${changes
    .map(
      (c) =>
        `<li><code>${e(c.attribute)}</code>: <span class="old">${e(showValue(c.from))}</span> → <span class="new">${e(showValue(c.to))}</span>${c.lastChange ? `<div class="last-change muted small">${e(lastChangeText(c.lastChange))}</div>` : ""}</li>`,
    )
    .join("")}</ul>`;
}

/** How often: corrections since the controller started, and since when. */
function howOften(r: ResourceView, now: Date): string {
  const { count, since } = r.corrections;
  if (count === 0) return "";
  return `<div class="how-often muted">corrected ${e(String(count))} time${count === 1 ? "" : "s"}, first ${when(since, now)}</div>`;
}

function conditionTable(conditions: readonly ConditionView[], now: Date): string {
  const rows = conditions
    .map(
      (c) =>
        `<tr class="condition" data-type="${e(c.type)}" data-status="${e(c.status)}"><td>${e(c.type)}</td><td>${e(c.status)}</td><td>${e(c.reason)}</td><td class="message">${e(c.message)}</td><td>${when(c.lastTransitionTime, now)}</td></tr>`,
    )
    .join("");
  return `<table class="conditions"><thead><tr><th>Condition</th><th>Status</th><th>Reason</th><th>Message</th><th>Since</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function lastDrift(r: ResourceView, now: Date): string {
  if (r.lastDrift) {
    const d = r.lastDrift;
    const corrected = d.correctedAt ? `corrected ${when(d.correctedAt, now)}` : `<strong>not corrected</strong>`;
    return `<div class="drift">observed ${when(d.observedAt, now)}, ${corrected}${changeList(d.changes)}${howOften(r, now)}</div>`;
  }
  if (r.drift.length > 0)
    return `<div class="drift">${e(r.drift.join(", "))} at ${when(r.lastObservedAt, now)}${changeList(r.changes)}</div>`;
  return `<span class="muted">none</span>`;
}

function resourceRow(r: ResourceView, now: Date): string {
  const h = headline(r);
  const extra = r.conditions
    .filter((c) => c.status === "True" && (c.type === "DriftDetected" || c.type === "ApplyFailed"))
    .map((c) => badge("warn", c.type))
    .join(" ");
  const where = r.source ? `<div class="muted small">${e(r.source.file)}:${e(String(r.source.line))}</div>` : "";
  return `<tr class="resource ${e(r.state.toLowerCase())}" data-kind="${e(r.kind)}" data-name="${e(r.name)}" data-state="${e(r.state)}">
<td>${e(r.kind)}</td>
<td class="name">${e(r.name)}${r.observeOnly ? ` ${badge("muted", "observe")}` : ""}${where}</td>
<td class="state">${badge(r.state, r.state === "NotReady" ? "Not ready" : r.state)} ${extra}</td>
<td class="reason">${e(h.reason)}</td>
<td class="message headline">${e(h.message)}${r.state === "Ready" ? "" : `<details><summary>conditions</summary>${conditionTable(r.conditions, now)}</details>`}</td>
<td class="last-drift">${lastDrift(r, now)}</td>
<td>${when(r.lastObservedAt, now)}<div class="muted small" title="last applied revision">${e(short(r.lastAppliedRevision))}</div></td>
</tr>`;
}

function hostSection(resources: readonly ResourceView[], now: Date, maxRows: number): string {
  const all = resources.filter((r) => r.kind === "HostBinding");
  if (all.length === 0) return "";
  const bindings = all.slice(0, maxRows);
  const yesNo = (v: boolean | null): string => (v === null ? "-" : v ? "yes" : "no");
  const rows = bindings
    .map((r) => {
      const h = headline(r);
      return `<tr class="host" data-name="${e(r.name)}"><td>${e(r.host?.name ?? "-")}</td><td>${e(r.name)}</td><td>${e(yesNo(r.host?.reachable ?? null))}</td><td class="retrievable">${e(r.host?.retrievable ?? "-")}</td><td>${badge(r.state)}</td><td class="message">${e(h.message)}</td><td>${when(r.lastObservedAt, now)}</td></tr>`;
    })
    .join("\n");
  return `<h2 id="hosts">Hosts</h2>
<table><thead><tr><th>Host</th><th>Binding</th><th>Reachable</th><th>Password retrievable</th><th>State</th><th>Message</th><th>Observed</th></tr></thead>
<tbody>
${rows}${all.length > bindings.length ? `\n<tr><td colspan="7" class="muted">${all.length - bindings.length} more bindings not shown</td></tr>` : ""}
</tbody></table>`;
}

function controllerSection(s: StatusView, now: Date): string {
  const c = s.controller;
  const stale = sourceStale(c);
  const rejected = c.source.rejected;
  const staleText = rejected
    ? `revision ${e(short(rejected.revision))} refused (${e(rejected.reason)}): ${e(rejected.message)}; the last good revision stays in force`
    : c.source.lastFetchError !== null
      ? `the last fetch failed: ${e(c.source.lastFetchError)}`
      : "";
  const errors = rejected?.errors.length
    ? `<ul class="errors">${rejected.errors.map((x) => `<li><code>${e(x.file)}:${e(String(x.line))}</code> ${e(x.message)}</li>`).join("")}</ul>`
    : "";
  const last = c.lastReconcile;
  const lastText = last
    ? `${badge(last.result === "success" ? "Ready" : last.result === "partial" ? "NotReady" : "Stalled", last.result)} ${when(last.startedAt, now)}${last.durationSeconds !== null ? `, ${e(last.durationSeconds.toFixed(1))} s` : ""}${last.error ? ` <span class="message">${e(last.error)}</span>` : ""}`
    : `<span class="muted">not yet</span>`;
  const kds = c.kdsRootKey
    ? c.kdsRootKey.effective
      ? "effective"
      : `not effective yet${c.kdsRootKey.effectiveAt ? ` (from ${e(c.kdsRootKey.effectiveAt)})` : ""}`
    : "-";
  return `<dl class="summary">
<dt>Revision in force</dt><dd id="revision"><code title="${e(c.source.revision ?? "")}">${e(short(c.source.revision))}</code> from <code>${e(c.source.url ?? "-")}</code></dd>
<dt>Source</dt><dd id="source-state" data-stale="${stale ? "true" : "false"}">${stale ? `${badge("Stalled", "stale")} ${staleText}${errors}` : `${badge("Ready", "current")} fetched ${when(c.source.lastFetchedAt, now)}`}</dd>
<dt>Last reconcile</dt><dd id="last-reconcile">${lastText}</dd>
<dt>Mode</dt><dd>${e(c.mode ?? "-")}</dd>
<dt>KDS root key</dt><dd>${kds}</dd>
</dl>`;
}

function filterForm(s: StatusView, filter: ResourceFilter): string {
  const kinds = [...new Set(s.resources.map((r) => r.kind))].sort();
  const wanted = filter.kind?.toLowerCase();
  if (filter.kind !== undefined && !kinds.some((k) => k.toLowerCase() === wanted)) kinds.push(filter.kind);
  const options = [`<option value="">all kinds</option>`]
    .concat(
      kinds.map((k) => `<option value="${e(k)}"${k.toLowerCase() === wanted ? " selected" : ""}>${e(k)}</option>`),
    )
    .join("");
  return `<form method="get" action="" class="filters">
<label>Kind <select name="kind">${options}</select></label>
<label><input type="checkbox" name="notReady" value="1"${filter.notReady ? " checked" : ""}> not Ready only</label>
<button type="submit">Filter</button> <a href="?">clear</a> · <a href="?notReady=1">not Ready</a>
</form>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff}
h1{font-size:1.4em;margin:0 0 .5em}h2{font-size:1.15em;margin:1.5em 0 .5em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.35em .5em;border-bottom:1px solid #e3e3e8}
th{background:#f4f4f7;font-weight:600}
tr.stalled{background:#fdecec}tr.notready{background:#fff6e0}tr.unknown{background:#f0f0f4}
.badge{display:inline-block;padding:0 .5em;border-radius:.7em;font-size:.85em;font-weight:600;white-space:nowrap}
.badge.ready{background:#d7f5dd;color:#11602a}.badge.notready{background:#ffe6b0;color:#7a4a00}
.badge.stalled{background:#f9c9c9;color:#8c1010}.badge.unknown,.badge.muted{background:#e4e4ea;color:#444}
.badge.warn{background:#ffe6b0;color:#7a4a00}
.muted{color:#6e6e73}.small{font-size:.85em}.message{max-width:40em;overflow-wrap:anywhere}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.25em 1em;margin:0 0 1em}dt{font-weight:600}dd{margin:0}
.filters{margin:.5em 0 1em}.filters label{margin-right:1em}
ul.changes,ul.errors{margin:.25em 0;padding-left:1.2em}.old{color:#8c1010}.new{color:#11602a}
table.conditions{margin-top:.3em;font-size:.9em}details summary{cursor:pointer;color:#6e6e73;font-size:.85em}
nav a{margin-right:1em}footer{margin-top:2em}
`;

/**
 * Renders the whole page. Pure: the same status, filter and clock give the same HTML.
 * Counts in the heading are over every resource; the table shows the filtered ones, problems
 * first, at most `maxRows` of them (a page that reloads every few seconds must stay small).
 * Conditions are detailed for resources that are not Ready; /api/status has them all.
 */
export function renderStatusPage(s: StatusView, options: PageOptions): string {
  const { now, filter } = options;
  const matching = filterResources(s.resources, filter).sort((a, b) => ORDER[a.state] - ORDER[b.state]);
  const maxRows = options.maxRows ?? 500;
  const shown = matching.slice(0, maxRows);
  const count = (state: string): number => s.resources.filter((r) => r.state === state).length;
  const notReady = s.resources.length - count("Ready");
  const more =
    matching.length > shown.length
      ? `<tr><td colspan="7" class="muted" id="more">${matching.length - shown.length} more resources not shown (the first ${shown.length}, problems first): filter by kind or not Ready, or read <a href="api/status">/api/status</a></td></tr>`
      : "";
  const rows = shown.map((r) => resourceRow(r, now)).join("\n") + more;
  const empty =
    shown.length === 0
      ? `<tr><td colspan="7" class="muted">${s.resources.length === 0 ? "no resources reported yet" : "no resource matches the filter"}</td></tr>`
      : "";
  const title = notReady > 0 ? `gmsa-gitops: ${notReady} not Ready` : "gmsa-gitops: all Ready";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${e(String(options.refreshSeconds))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>gmsa-gitops status</h1>
<nav><a href="api/status">/api/status (JSON)</a><a href="metrics">/metrics</a></nav>
${controllerSection(s, now)}
<h2 id="resources">Resources</h2>
<p id="counts">${s.resources.length} resources: ${count("Ready")} Ready, ${notReady} not Ready (${count("Stalled")} Stalled)</p>
${filterForm(s, filter)}
<table id="resource-table"><thead><tr><th>Kind</th><th>Name</th><th>State</th><th>Reason</th><th>Message</th><th>Last drift</th><th>Observed</th></tr></thead>
<tbody>
${rows}${empty}
</tbody></table>
${hostSection(matching, now, maxRows)}
<footer class="muted small">Rendered ${e(now.toISOString())}; reloads every ${e(String(options.refreshSeconds))} s.</footer>
</body>
</html>
`;
}
