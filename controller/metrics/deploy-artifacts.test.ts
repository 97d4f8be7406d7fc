/**
 * The Grafana dashboard and the Prometheus rules in deploy/ query only metrics this recorder
 * registers: a renamed metric or a typo fails here, not silently on an SRE's screen.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createMetricsRecorder } from "./recorder.ts";

const dashboardUrl = new URL("../../deploy/grafana/dashboard.json", import.meta.url);
const rulesUrl = new URL("../../deploy/prometheus/rules.yaml", import.meta.url);
const rulesTestUrl = new URL("../../deploy/prometheus/rules.test.yaml", import.meta.url);

// Series Prometheus itself writes for every target (not the recorder): `up` is how an alert sees
// a controller that cannot be scraped at all.
const scrapeSeries = new Set(["up"]);

/** Every series name a scrape of the recorder (with default metrics) can contain. */
function registeredNames(): Set<string> {
  const names = new Set<string>();
  for (const metric of createMetricsRecorder({ collectDefault: true }).registry.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    names.add(name);
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
  }
  return names;
}

// PromQL words that are not metric names: functions, aggregations, operators and modifiers
// this project's queries use. An unknown word is reported as an unregistered metric, which
// is the safe direction: extend the list when a query starts using a new function.
const promqlWords = new Set([
  "sum",
  "max",
  "min",
  "avg",
  "count",
  "topk",
  "bottomk",
  "rate",
  "irate",
  "increase",
  "delta",
  "histogram_quantile",
  "time",
  "absent",
  "changes",
  "sort",
  "sort_desc",
  "clamp_min",
  "round",
  "max_over_time",
  "min_over_time",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "vector",
]);

/**
 * The metric names an expression refers to: label matchers, ranges, strings and grouping
 * clauses (`by (kind, name)`) are removed first, then every identifier that is not a PromQL
 * word is a metric name.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  return (stripped.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? []).filter((word) => !promqlWords.has(word));
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
  datasource?: { uid: string };
}

describe("metric-name extraction", () => {
  it("finds metric names and skips functions, labels, ranges and grouping", () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, operation) (rate(foo_bucket{result="x",kind=~"$kind"}[$__rate_interval]))) / on (a) bar_total',
      ),
    ).toEqual(["foo_bucket", "bar_total"]);
  });
});

describe("Grafana dashboard", () => {
  const dashboard = JSON.parse(readFileSync(dashboardUrl, "utf8")) as {
    uid: string;
    title: string;
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string; type: string; definition?: string }[] };
  };
  const queryPanels = dashboard.panels.filter((p) => p.type !== "row");

  it("is a dashboard with a uid, a title, and panels with unique ids on a 24-column grid", () => {
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.title).not.toBe("");
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(30);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it("queries through the data source variable, with at least one query per panel", () => {
    expect(dashboard.templating.list.find((v) => v.type === "datasource")?.name).toBe("datasource");
    for (const p of queryPanels) {
      expect(p.datasource?.uid, p.title).toBe("${datasource}");
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it("shows drift by kind, drifted resources, reconcile duration, actions, source, passwords and hosts", () => {
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
    for (const name of [
      "gmsa_gitops_drifted_resources",
      "gmsa_gitops_resource_drift",
      "gmsa_gitops_reconcile_duration_seconds_bucket",
      "gmsa_gitops_actions_total",
      "gmsa_gitops_source_info",
      "gmsa_gitops_source_stale",
      "gmsa_gitops_gmsa_next_password_change_seconds",
      "gmsa_gitops_host_password_retrievable",
    ]) {
      expect(exprs).toContain(name);
    }
  });

  it("says when the controller is down or gone instead of going blank", () => {
    const panel = queryPanels.find((p) => p.title === "Controller");
    expect(panel?.targets?.[0]?.expr).toBe('max(up{job="gmsa-gitops"}) or on() vector(-1)');
  });

  it('shows for drift "since when" (a per-resource timeline) and "how often" (corrections per kind and type)', () => {
    const byTitle = new Map(queryPanels.map((p) => [p.title, p]));
    const since = byTitle.get("Drift per resource over time (since when)");
    expect(since?.type).toBe("state-timeline");
    expect(since?.targets?.[0]?.expr).toContain("gmsa_gitops_resource_drift");
    const often = byTitle.get("Drift corrections (how often)");
    expect(often?.targets?.[0]?.expr).toContain("gmsa_gitops_drift_corrections_total");
    const busiest = byTitle.get("Most corrected drift, last 24 h");
    expect(busiest?.targets?.[0]?.expr).toMatch(/increase\(gmsa_gitops_drift_corrections_total\{[^}]*\}\[24h\]\)/);
  });

  it("shows password rotation: last and next change as times, and hosts that fail since the last rotation", () => {
    const byTitle = new Map(queryPanels.map((p) => [p.title, p]));
    const changes = byTitle.get("Password changes (last / next)");
    expect(changes?.targets?.map((t) => t.expr)).toEqual([
      "gmsa_gitops_password_last_change_timestamp_seconds * 1000",
      "gmsa_gitops_password_next_change_timestamp_seconds * 1000",
    ]);
    const failing = byTitle.get("Hosts failing since the last rotation");
    expect(failing?.targets?.[0]?.expr).toContain(
      'gmsa_gitops_host_password_retrieval_around_rotation{when="after"} == 0',
    );
    expect(failing?.targets?.[0]?.expr).toContain(
      'gmsa_gitops_host_password_retrieval_around_rotation{when="before"} == 1',
    );
    expect(byTitle.get("Password changes in the next 7 days")?.targets?.[0]?.expr).toContain(
      "gmsa_gitops_password_next_change_timestamp_seconds",
    );
  });

  it("refers only to metric names the recorder registers", () => {
    const registered = registeredNames();
    const exprs = [
      ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list.flatMap((v) =>
        v.definition ? [v.definition.replace(/^label_values\(([^,]+),.*$/, "$1")] : [],
      ),
    ];
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs) {
      const names = metricNames(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) {
        if (!scrapeSeries.has(name)) expect(registered, `${name} in ${expr}`).toContain(name);
      }
    }
  });
});

describe("Prometheus rules", () => {
  const rules = parse(readFileSync(rulesUrl, "utf8")) as {
    groups: { rules: { alert: string; expr: string; labels: { severity: string } }[] }[];
  };
  const all = rules.groups.flatMap((g) => g.rules);

  it("refer only to metric names the recorder registers", () => {
    const registered = registeredNames();
    for (const rule of all) {
      const names = metricNames(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) {
        if (!scrapeSeries.has(name)) expect(registered, `${name} in ${rule.alert}`).toContain(name);
      }
    }
  });

  it("alert when the controller is down or its series are absent, on stuck resources and on recurring drift", () => {
    const byName = new Map(all.map((r) => [r.alert, r.expr]));
    expect(byName.get("GmsaGitopsControllerDown")).toMatch(/\bup\{job="gmsa-gitops"\} == 0/);
    expect(byName.get("GmsaGitopsControllerAbsent")).toMatch(/^absent\(/);
    expect(byName.get("GmsaGitopsResourceStalled")).toContain('gmsa_gitops_resource_condition{type="Stalled"}');
    expect(byName.get("GmsaGitopsResourceNotReady")).toContain('gmsa_gitops_resource_condition{type="Ready"}');
    expect(byName.get("GmsaGitopsResourceApplyFailed")).toContain('gmsa_gitops_resource_condition{type="ApplyFailed"}');
    expect(byName.get("GmsaGitopsDriftRecurring")).toContain("gmsa_gitops_drift_corrections_total");
  });

  it("each have a promtool test case in which they fire", () => {
    const tests = parse(readFileSync(rulesTestUrl, "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const firing = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    );
    for (const rule of all) expect(firing, rule.alert).toContain(rule.alert);
  });

  it("alert on drift, failing reconciles, the source, the KDS key, hosts and password retrieval", () => {
    const alerts = all.map((r) => r.alert);
    expect(alerts).toEqual(
      expect.arrayContaining([
        "GmsaGitopsDriftPresent",
        "GmsaGitopsReconcileFailing",
        "GmsaGitopsSourceStale",
        "GmsaGitopsRevisionRejected",
        "GmsaGitopsKdsRootKeyNotEffective",
        "GmsaGitopsHostUnreachable",
        "GmsaGitopsPasswordNotRetrievable",
      ]),
    );
    for (const rule of all) expect(["warning", "critical"], rule.alert).toContain(rule.labels.severity);
  });
});
