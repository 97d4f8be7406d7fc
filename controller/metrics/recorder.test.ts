import { Gauge, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { retainedBytes } from "../../test/support/heap.ts";
import { scrapeText } from "../../test/support/metrics.ts";
import { createMetricsRecorder, driftTypesByKind } from "./recorder.ts";
import type { DriftType, MetricsRecorder } from "./recorder.ts";

type Sample = { labels: Record<string, string | number>; value: number };

async function samples(recorder: MetricsRecorder, name: string): Promise<Sample[]> {
  const metric = recorder.registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values.map(({ labels, value }) => ({ labels: { ...labels } as Record<string, string | number>, value }));
}

const drift = (recorder: MetricsRecorder) => samples(recorder, "gmsa_gitops_resource_drift");

/** The sample lines of one metric in an exposition text (without HELP, TYPE and the final newline). */
const body = (name: string, text: string): string =>
  text
    .split("\n\n")
    .find((m) => m.startsWith(`# HELP ${name} `))!
    .trimEnd()
    .split("\n")
    .slice(2)
    .join("\n");

describe("resource drift", () => {
  it("is 1 for the drift types present; a type that never drifted has no series", async () => {
    // 50,000 resources missing from AD (observe mode before the first apply) made 8 series per
    // gMSA and 5 per group, 385,000 in all, nearly all zeros; one per type that drifted is enough.
    const recorder = createMetricsRecorder();
    recorder.setDrift("ADGroup", "gmsa-service1-hosts", new Set<DriftType>(["membership"]));
    recorder.setDrift("ADGroup", "gmsa-service1-hosts", new Set<DriftType>(["membership", "attribute"]));

    const series = await drift(recorder);
    expect(series.map((s) => [s.labels.drift_type, s.value]).sort()).toEqual([
      ["attribute", 1],
      ["membership", 1],
    ]);
    for (const s of series) expect(s.labels).toMatchObject({ kind: "ADGroup", name: "gmsa-service1-hosts" });
  });

  it("a gMSA's delegation drift is its own series, apart from attribute", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDrift("GroupManagedServiceAccount", "msa-web", new Set<DriftType>(["delegation"]));
    const series = await drift(recorder);
    expect(series.find((s) => s.labels.drift_type === "delegation")?.value).toBe(1);
    // Only the drift types a resource has had get a series: attribute did not drift.
    expect(series.map((s) => s.labels.drift_type)).toEqual(["delegation"]);
    expect(driftTypesByKind.ADGroup).not.toContain("delegation");
  });

  it("emits no series for a resource that never drifted", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDrift("GroupManagedServiceAccount", "msa-clean", new Set());
    recorder.setDrift("GroupManagedServiceAccount", "msa-clean", new Set());
    expect(await drift(recorder)).toEqual([]);
  });

  it("goes back to 0 when the drift is fixed, keeping the series", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDrift("GroupManagedServiceAccount", "msa-service1", new Set<DriftType>(["spn", "principals"]));
    recorder.setDrift("GroupManagedServiceAccount", "msa-service1", new Set());

    const series = await drift(recorder);
    expect(series.map((s) => [s.labels.drift_type, s.value]).sort()).toEqual([
      ["principals", 0],
      ["spn", 0],
    ]);
  });

  it("keeps a drift type outside the kind's usual set, and zeroes it later", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDrift("KdsRootKey", "default", new Set<DriftType>(["unexpected"]));
    recorder.setDrift("KdsRootKey", "default", new Set());

    const series = await drift(recorder);
    expect(series.find((s) => s.labels.drift_type === "unexpected")?.value).toBe(0);
  });

  it("forgetResource removes every series of that resource and no other", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDrift("GroupManagedServiceAccount", "msa-gone", new Set<DriftType>(["attribute"]));
    recorder.setResourceCondition("GroupManagedServiceAccount", "msa-gone", "Ready", false);
    recorder.setPasswordChangeAt("msa-gone", new Date(Date.now() + 3_600_000));
    recorder.setDrift("GroupManagedServiceAccount", "msa-kept", new Set<DriftType>(["attribute"]));
    recorder.setResourceCondition("GroupManagedServiceAccount", "msa-kept", "Ready", true);
    recorder.setPasswordChangeAt("msa-kept", new Date(Date.now() + 3_600_000));

    recorder.forgetResource("GroupManagedServiceAccount", "msa-gone");

    const text = await scrapeText(recorder);
    expect(text).not.toContain("msa-gone");
    expect((await drift(recorder)).every((s) => s.labels.name === "msa-kept")).toBe(true);
    expect(await samples(recorder, "gmsa_gitops_resource_condition")).toEqual([
      { labels: { kind: "GroupManagedServiceAccount", name: "msa-kept", type: "Ready" }, value: 1 },
    ]);
    expect(
      (await samples(recorder, "gmsa_gitops_gmsa_next_password_change_seconds")).map((s) => s.labels.name),
    ).toEqual(["msa-kept"]);
  });

  it("refuses a DN or error text as a resource name", () => {
    const recorder = createMetricsRecorder();
    expect(() => recorder.setDrift("ADGroup", "CN=Tier1,OU=Groups,DC=company,DC=local", new Set())).toThrow(RangeError);
    expect(() => recorder.setHostReachable("connect ECONNREFUSED 10.0.0.1:22", false)).toThrow(RangeError);
  });
});

describe("per-resource series at 50,000 resources", () => {
  const names = Array.from({ length: 50_000 }, (_, i) => `bsv${String(i).padStart(5, "0")}`);
  const fill = (recorder: MetricsRecorder): MetricsRecorder => {
    for (const name of names) {
      recorder.setDrift("GroupManagedServiceAccount", name, new Set<DriftType>(["missing"]));
      for (const type of ["Ready", "Reconciling", "Stalled", "ApplyFailed"] as const)
        recorder.setResourceCondition("GroupManagedServiceAccount", name, type, false);
    }
    return recorder;
  };

  it("hold their condition and drift series in under 150 bytes per resource", () => {
    // prom-client keeps a hash string, a labels object and a value object per series: 200,000
    // series held about 50 MiB of the controller's steady heap at this size.
    const { bytes, value } = retainedBytes(() => fill(createMetricsRecorder()));
    expect(value.registry.getSingleMetric("gmsa_gitops_resource_condition")).toBeDefined();
    expect(bytes / names.length, `${bytes / names.length} bytes per resource`).toBeLessThan(150);
  }, 60_000);

  it("are written to the scrape as prom-client writes a gauge, in pieces", async () => {
    const recorder = createMetricsRecorder();
    fill(recorder);
    recorder.setDrift("GroupManagedServiceAccount", "bsv00001", new Set<DriftType>(["attribute", "spn"]));
    recorder.setDrift("GroupManagedServiceAccount", "bsv00001", new Set<DriftType>(["spn"]));
    // The same series through prom-client's own Gauge, in the same order.
    const registry = new Registry();
    const drift = new Gauge({
      name: "gmsa_gitops_resource_drift",
      help: "x",
      labelNames: ["kind", "name", "drift_type"],
      registers: [registry],
    });
    const condition = new Gauge({
      name: "gmsa_gitops_resource_condition",
      help: "x",
      labelNames: ["kind", "name", "type"],
      registers: [registry],
    });
    for (const name of names) {
      const kind = "GroupManagedServiceAccount";
      for (const type of name === "bsv00001" ? ["missing", "attribute", "spn"] : ["missing"])
        drift.set({ kind, name, drift_type: type }, name === "bsv00001" ? (type === "spn" ? 1 : 0) : 1);
      for (const type of ["Ready", "Reconciling", "Stalled"]) condition.set({ kind, name, type }, 0);
    }
    const chunks: string[] = [];
    for await (const chunk of recorder.metricsChunks()) chunks.push(chunk);
    const text = chunks.join("");
    expect(chunks.length).toBeGreaterThan(20);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(70 * 1024);
    const theirs = await registry.metrics();
    for (const name of ["gmsa_gitops_resource_drift", "gmsa_gitops_resource_condition"])
      expect(body(name, text)).toBe(body(name, theirs));
  }, 60_000);
});

describe("source revision", () => {
  it("has exactly one series after two revisions, the newer one", async () => {
    const recorder = createMetricsRecorder();
    recorder.sourceRevision("main@sha1:1111111", "https://git.example/team/gmsa.git");
    recorder.sourceRevision("main@sha1:2222222", "https://git.example/team/gmsa.git");

    expect(await samples(recorder, "gmsa_gitops_source_info")).toEqual([
      { labels: { revision: "main@sha1:2222222", url: "https://git.example/team/gmsa.git" }, value: 1 },
    ]);
  });

  it("drops credentials that slipped into the URL", async () => {
    const recorder = createMetricsRecorder();
    recorder.sourceRevision("abc", "https://deploy:s3cret-token@git.example/team/gmsa.git");

    const text = await scrapeText(recorder);
    expect(text).not.toContain("s3cret-token");
    expect(text).toContain('url="https://git.example/team/gmsa.git"');
  });

  it("drops a token passed as a query parameter, as every other scrubber does", async () => {
    const recorder = createMetricsRecorder();
    recorder.sourceRevision("abc", "https://git.example/team/gmsa.git?private_token=glpat-s3cret");

    const text = await scrapeText(recorder);
    expect(text).not.toContain("glpat-s3cret");
    expect(text).toContain('url="https://git.example/team/gmsa.git?private_token=[redacted]"');
  });

  it("marks the source stale while the last good revision stays in force", async () => {
    const recorder = createMetricsRecorder();
    recorder.revisionRejected("invalid");
    recorder.setLastGoodRevisionInForce(true);

    expect(await samples(recorder, "gmsa_gitops_source_stale")).toEqual([{ labels: {}, value: 1 }]);
    const rejected = await samples(recorder, "gmsa_gitops_source_revision_rejected_total");
    expect(rejected).toEqual(
      expect.arrayContaining([
        { labels: { reason: "invalid" }, value: 1 },
        { labels: { reason: "unverified" }, value: 0 },
      ]),
    );
  });

  it("records fetch time in seconds and counts failures by reason", async () => {
    const recorder = createMetricsRecorder();
    recorder.fetchSucceeded(new Date("2025-01-01T00:00:00Z"));
    recorder.fetchFailed("network");
    recorder.fetchFailed("network");

    expect(await samples(recorder, "gmsa_gitops_source_last_fetch_timestamp_seconds")).toEqual([
      { labels: {}, value: 1_735_689_600 },
    ]);
    const failures = await samples(recorder, "gmsa_gitops_source_fetch_failures_total");
    expect(failures.find((s) => s.labels.reason === "network")?.value).toBe(2);
    expect(failures.filter((s) => s.labels.reason !== "network").every((s) => s.value === 0)).toBe(true);
  });

  it("starts at 0 only the fetch failure reasons the loop reports", async () => {
    const failures = await samples(createMetricsRecorder(), "gmsa_gitops_source_fetch_failures_total");
    expect(failures.map((s) => s.labels.reason).sort()).toEqual(["network", "other", "verify"]);
  });
});

describe("reconcile and actions", () => {
  it("counts reconciles by result, starting every result at 0", async () => {
    const recorder = createMetricsRecorder();
    recorder.reconcileFinished(1.5, "partial");

    const results = await samples(recorder, "gmsa_gitops_reconciles_total");
    expect(Object.fromEntries(results.map((s) => [s.labels.result, s.value]))).toEqual({
      success: 0,
      failure: 0,
      partial: 1,
    });
    const durations = await samples(recorder, "gmsa_gitops_reconcile_duration_seconds");
    expect(durations.find((s) => s.labels.le === 2.5)?.value).toBe(1);
    expect(durations.find((s) => s.labels.le === 1)?.value).toBe(0);
  });

  it("counts applied actions by kind, action and result", async () => {
    const recorder = createMetricsRecorder();
    recorder.actionApplied("ADGroup", "add-member", "success");
    recorder.actionApplied("ADGroup", "add-member", "success");
    recorder.actionApplied("GroupManagedServiceAccount", "delete", "failure");

    const actions = await samples(recorder, "gmsa_gitops_actions_total");
    const value = (kind: string, action: string, result: string) =>
      actions.find((s) => s.labels.kind === kind && s.labels.action === action && s.labels.result === result)?.value;
    expect(value("ADGroup", "add-member", "success")).toBe(2);
    expect(value("GroupManagedServiceAccount", "delete", "failure")).toBe(1);
    expect(value("GroupManagedServiceAccount", "create", "success")).toBe(0);
  });

  it("starts at 0 only the action series apply can record: per directory kind, the actions it has", async () => {
    const actions = await samples(createMetricsRecorder(), "gmsa_gitops_actions_total");
    const started = new Set(actions.map((s) => `${s.labels.kind} ${s.labels.action} ${s.labels.result}`));
    const expected = [
      ["ADGroup", ["create", "update", "add-member", "remove-member", "delete"]],
      ["GroupManagedServiceAccount", ["create", "update", "delete"]],
      ["KdsRootKey", ["create"]],
      ["ManagedServiceAccount", ["create", "update", "delete"]],
    ] as const;
    expect([...started].sort()).toEqual(
      expected
        .flatMap(([kind, types]) => types.flatMap((t) => [`${kind} ${t} failure`, `${kind} ${t} success`]))
        .sort(),
    );
  });

  it("sets drifted and managed counts for every kind", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDriftedByKind({
      GroupManagedServiceAccount: 2,
      ADGroup: 1,
      HostBinding: 0,
      KdsRootKey: 0,
      ManagedServiceAccount: 1,
    });
    recorder.setManagedByKind({
      GroupManagedServiceAccount: 5,
      ADGroup: 3,
      HostBinding: 4,
      KdsRootKey: 1,
      ManagedServiceAccount: 0,
    });

    const drifted = await samples(recorder, "gmsa_gitops_drifted_resources");
    expect(Object.fromEntries(drifted.map((s) => [s.labels.kind, s.value]))).toEqual({
      GroupManagedServiceAccount: 2,
      ADGroup: 1,
      HostBinding: 0,
      KdsRootKey: 0,
      ManagedServiceAccount: 1,
    });
    const managed = await samples(recorder, "gmsa_gitops_managed_resources");
    expect(managed.find((s) => s.labels.kind === "HostBinding")?.value).toBe(4);
  });

  it("times LDAP operations by operation and result", async () => {
    const recorder = createMetricsRecorder();
    recorder.ldapOperation("search", 0.02, true);
    recorder.ldapOperation("modify", 0.2, false);

    const counts = (await samples(recorder, "gmsa_gitops_ldap_operation_duration_seconds")).filter(
      (s) => s.labels.le === undefined && s.value > 0 && s.value < 1,
    );
    expect(counts.map((s) => s.labels)).toEqual(
      expect.arrayContaining([
        { operation: "search", result: "success" },
        { operation: "modify", result: "failure" },
      ]),
    );
  });
});

describe("drift corrections", () => {
  it("counts each correction by kind and drift type, starting the kind's correctable types at 0", async () => {
    const recorder = createMetricsRecorder();
    recorder.driftCorrected("ADGroup", "membership");
    recorder.driftCorrected("ADGroup", "membership");
    recorder.driftCorrected("GroupManagedServiceAccount", "spn");

    const corrections = await samples(recorder, "gmsa_gitops_drift_corrections_total");
    const value = (kind: string, type: string) =>
      corrections.find((s) => s.labels.kind === kind && s.labels.drift_type === type)?.value;
    expect(value("ADGroup", "membership")).toBe(2);
    expect(value("GroupManagedServiceAccount", "spn")).toBe(1);
    expect(value("ADGroup", "attribute")).toBe(0);
    expect(value("HostBinding", "host-service")).toBe(0);
  });

  it("pre-creates no impossible or never-corrected combinations", async () => {
    const corrections = await samples(createMetricsRecorder(), "gmsa_gitops_drift_corrections_total");
    expect(corrections.length).toBeGreaterThan(0);
    for (const s of corrections) {
      expect(driftTypesByKind[s.labels.kind as keyof typeof driftTypesByKind]).toContain(s.labels.drift_type);
      // A conflict (an object not ours) or an immutable change is reported, never corrected.
      expect(["conflict", "immutable"]).not.toContain(s.labels.drift_type);
      expect(s.labels.kind).not.toBe("Host");
    }
  });
});

describe("KDS root key", () => {
  it("is absent until known, then 1 or 0", async () => {
    const recorder = createMetricsRecorder();
    expect(await samples(recorder, "gmsa_gitops_kds_root_key_effective")).toEqual([]);

    recorder.setKdsKeyEffective(false);
    expect(await samples(recorder, "gmsa_gitops_kds_root_key_effective")).toEqual([{ labels: {}, value: 0 }]);
    recorder.setKdsKeyEffective(true);
    expect(await samples(recorder, "gmsa_gitops_kds_root_key_effective")).toEqual([{ labels: {}, value: 1 }]);
  });
});

describe("password change countdown", () => {
  it("counts down at scrape time and disappears when unset", async () => {
    let now = new Date("2025-03-01T00:00:00Z");
    const recorder = createMetricsRecorder({ now: () => now });
    recorder.setPasswordChangeAt("msa-service1", new Date("2025-03-01T01:00:00Z"));

    now = new Date("2025-03-01T00:10:00Z");
    expect(await samples(recorder, "gmsa_gitops_gmsa_next_password_change_seconds")).toEqual([
      { labels: { name: "msa-service1" }, value: 3000 },
    ]);

    recorder.setPasswordChangeAt("msa-service1", undefined);
    expect(await samples(recorder, "gmsa_gitops_gmsa_next_password_change_seconds")).toEqual([]);
  });

  it("goes negative once the change is overdue", async () => {
    const now = new Date("2025-03-02T00:00:00Z");
    const recorder = createMetricsRecorder({ now: () => now });
    recorder.setPasswordChangeAt("msa-service1", new Date("2025-03-01T00:00:00Z"));

    expect(await samples(recorder, "gmsa_gitops_gmsa_next_password_change_seconds")).toEqual([
      { labels: { name: "msa-service1" }, value: -86_400 },
    ]);
  });
});

describe("password series at 45,000 gMSAs", () => {
  const names = Array.from({ length: 45_000 }, (_, i) => `bsv${String(i).padStart(5, "0")}`);
  const last = new Date("2026-11-01T00:00:00Z");
  const next = new Date("2026-12-01T00:00:00Z");

  it("hold the three series of a gMSA in under 200 bytes", () => {
    // A seeded domain has a countdown, a last and a next change time for every gMSA: in
    // prom-client's gauges, and a countdown set again on each scrape, they were a few hundred
    // bytes per series.
    const { bytes } = retainedBytes(() =>
      names.reduce(
        (r, name) => {
          r.setPasswordChangeAt(name, next);
          r.setPasswordTimes(name, { last, next });
          return r;
        },
        createMetricsRecorder({ now: () => last }),
      ),
    );
    expect(bytes / names.length, `${bytes / names.length} bytes per gMSA`).toBeLessThan(200);
  }, 60_000);

  it("are written to the scrape as prom-client writes them, the countdown as of the scrape", async () => {
    let now = last;
    const recorder = createMetricsRecorder({ now: () => now });
    const registry = new Registry();
    const reference = {
      countdown: new Gauge({
        name: "gmsa_gitops_gmsa_next_password_change_seconds",
        help: "x",
        labelNames: ["name"],
        registers: [registry],
      }),
      last: new Gauge({
        name: "gmsa_gitops_password_last_change_timestamp_seconds",
        help: "x",
        labelNames: ["name"],
        registers: [registry],
      }),
      next: new Gauge({
        name: "gmsa_gitops_password_next_change_timestamp_seconds",
        help: "x",
        labelNames: ["name"],
        registers: [registry],
      }),
    };
    now = new Date(last.getTime() + 1_500);
    for (const name of names.slice(0, 2_000)) {
      recorder.setPasswordChangeAt(name, next);
      recorder.setPasswordTimes(name, { last, next });
      reference.countdown.set({ name }, (next.getTime() - now.getTime()) / 1000);
      reference.last.set({ name }, last.getTime() / 1000);
      reference.next.set({ name }, next.getTime() / 1000);
    }
    recorder.setPasswordChangeAt("bsv00003", undefined);
    recorder.setPasswordTimes("bsv00004", undefined);
    reference.countdown.remove({ name: "bsv00003" });
    reference.last.remove({ name: "bsv00004" });
    reference.next.remove({ name: "bsv00004" });
    const text = await scrapeText(recorder);
    const theirs = await registry.metrics();
    for (const name of Object.values(reference).map((g) => (g as unknown as { name: string }).name))
      expect(body(name, text), name).toBe(body(name, theirs));
  }, 60_000);
});

describe("hosts", () => {
  it("exports retrievability as a state set with exactly one state at 1", async () => {
    const recorder = createMetricsRecorder();
    recorder.setHostRetrievable("SERVER1", "msa-service1", "pending");
    recorder.setHostRetrievable("SERVER1", "msa-service1", "yes");

    const states = await samples(recorder, "gmsa_gitops_host_password_retrievable");
    expect(Object.fromEntries(states.map((s) => [s.labels.state, s.value]))).toEqual({ yes: 1, no: 0, pending: 0 });
  });

  it("forgetHost removes reachability and every account of that host only", async () => {
    const recorder = createMetricsRecorder();
    recorder.setHostReachable("SERVER1", true);
    recorder.setHostRetrievable("SERVER1", "msa-a", "yes");
    recorder.setHostRetrievable("SERVER1", "msa-b", "no");
    recorder.setHostReachable("SERVER2", false);
    recorder.setHostRetrievable("SERVER2", "msa-a", "no");

    recorder.forgetHost("SERVER1");

    expect(await samples(recorder, "gmsa_gitops_host_reachable")).toEqual([{ labels: { host: "SERVER2" }, value: 0 }]);
    const retrievable = await samples(recorder, "gmsa_gitops_host_password_retrievable");
    expect(retrievable).toHaveLength(3);
    expect(retrievable.every((s) => s.labels.host === "SERVER2")).toBe(true);
  });

  it("forgetHostRetrievable removes one host/account pair", async () => {
    const recorder = createMetricsRecorder();
    recorder.setHostRetrievable("SERVER1", "msa-a", "yes");
    recorder.setHostRetrievable("SERVER1", "msa-b", "yes");

    recorder.forgetHostRetrievable("SERVER1", "msa-a");

    const retrievable = await samples(recorder, "gmsa_gitops_host_password_retrievable");
    expect(retrievable.every((s) => s.labels.account === "msa-b")).toBe(true);
  });
});

describe("registry", () => {
  it("is private: two recorders do not share series", async () => {
    const a = createMetricsRecorder();
    const b = createMetricsRecorder();
    a.setHostReachable("SERVER1", true);

    expect(await samples(b, "gmsa_gitops_host_reachable")).toEqual([]);
  });

  it("collects default process metrics into the same registry only when asked", () => {
    expect(
      createMetricsRecorder({ collectDefault: true }).registry.getSingleMetric("process_cpu_seconds_total"),
    ).toBeDefined();
    expect(createMetricsRecorder().registry.getSingleMetric("process_cpu_seconds_total")).toBeUndefined();
  });

  it("prefixes every metric of its own with gmsa_gitops_", () => {
    const names = createMetricsRecorder()
      .registry.getMetricsAsArray()
      .map((m) => m.name);
    expect(names.length).toBeGreaterThan(10);
    expect(names.every((n) => n.startsWith("gmsa_gitops_"))).toBe(true);
  });
});

describe("histogram buckets and labels", () => {
  const buckets = async (recorder: MetricsRecorder, name: string): Promise<number[]> =>
    [...new Set((await samples(recorder, name)).flatMap((s) => (typeof s.labels.le === "number" ? [s.labels.le] : [])))]
      .filter((le) => Number.isFinite(le))
      .sort((a, b) => a - b);

  it("LDAP latency buckets reach past the LDAP timeout, so a timed-out operation lands in a finite bucket", async () => {
    for (const timeoutSeconds of [30, 120]) {
      const recorder = createMetricsRecorder({ ldapTimeoutSeconds: timeoutSeconds });
      recorder.ldapOperation("search", timeoutSeconds + 0.05, false);
      const les = await buckets(recorder, "gmsa_gitops_ldap_operation_duration_seconds");
      expect(les, `timeout ${timeoutSeconds}s`).toContain(timeoutSeconds);
      // A paged search runs one timeout per page: room for several pages above the timeout.
      expect(les.at(-1), `timeout ${timeoutSeconds}s`).toBeGreaterThanOrEqual(4 * timeoutSeconds);
      const timedOut = (await samples(recorder, "gmsa_gitops_ldap_operation_duration_seconds")).filter(
        (s) => typeof s.labels.le === "number" && Number.isFinite(s.labels.le) && s.value === 1,
      );
      expect(timedOut.length, `timeout ${timeoutSeconds}s`).toBeGreaterThan(0);
    }
  });

  it("the reconcile duration histogram carries the reconcile's result", async () => {
    const recorder = createMetricsRecorder();
    recorder.reconcileFinished(1.5, "partial");
    recorder.reconcileFinished(40, "failure");
    const text = await scrapeText(recorder);
    expect(text).toContain('gmsa_gitops_reconcile_duration_seconds_count{result="partial"} 1');
    expect(text).toContain('gmsa_gitops_reconcile_duration_seconds_count{result="failure"} 1');
    expect(text).toContain('gmsa_gitops_reconcile_duration_seconds_bucket{le="2.5",result="partial"} 1');
  });
});

describe("build info", () => {
  it("is one series with the version, the Node.js version and, when known, the commit", async () => {
    const recorder = createMetricsRecorder({ build: { version: "0.1.0", node: "v24.1.0", commit: "0123abc" } });
    expect(await samples(recorder, "gmsa_gitops_build_info")).toEqual([
      { labels: { version: "0.1.0", node: "v24.1.0", commit: "0123abc" }, value: 1 },
    ]);
    const unknown = createMetricsRecorder({ build: { version: "0.1.0", node: "v24.1.0" } });
    expect(await samples(unknown, "gmsa_gitops_build_info")).toEqual([
      { labels: { version: "0.1.0", node: "v24.1.0" }, value: 1 },
    ]);
  });
});

describe("series a fresh recorder starts with", () => {
  it("are only combinations that can occur: per-resource and per-host series appear only once recorded", async () => {
    const text = await scrapeText(createMetricsRecorder({ build: { version: "0.1.0", node: "v24.1.0" } }));
    const series = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    const names = new Set(series.map((l) => l.replace(/[{ ].*$/, "")));
    for (const perObject of [
      "gmsa_gitops_resource_drift",
      "gmsa_gitops_resource_condition",
      "gmsa_gitops_host_reachable",
      "gmsa_gitops_host_password_retrievable",
      "gmsa_gitops_host_password_retrieval_around_rotation",
      "gmsa_gitops_gmsa_next_password_change_seconds",
      "gmsa_gitops_password_last_change_timestamp_seconds",
      "gmsa_gitops_password_next_change_timestamp_seconds",
      "gmsa_gitops_kds_root_key_effective",
      "gmsa_gitops_source_info",
    ])
      expect(names, perObject).not.toContain(perObject);
    // HostBindings are changed by the host script: no directory action series for them.
    expect(series.filter((l) => l.includes('kind="HostBinding"') && l.startsWith("gmsa_gitops_actions_total"))).toEqual(
      [],
    );
    // Reconcile and LDAP histograms: no bucket series before the first observation.
    expect(series.filter((l) => l.startsWith("gmsa_gitops_ldap_operation_duration_seconds"))).toEqual([]);
  });
});

describe("series of what left the repository", () => {
  it("a removed resource and a removed host leave no series behind", async () => {
    const recorder = createMetricsRecorder();
    recorder.setDrift("HostBinding", "web1-reports", new Set<DriftType>(["host-service"]));
    recorder.setResourceCondition("HostBinding", "web1-reports", "Ready", false);
    recorder.setResourceCondition("HostBinding", "web1-reports", "ApplyFailed", true);
    recorder.setHostReachable("WEB1", true);
    recorder.setHostRetrievable("WEB1", "reports", "yes");
    recorder.setRetrievalAroundRotation("WEB1", "reports", { before: true, after: true });

    recorder.forgetResource("HostBinding", "web1-reports");
    recorder.forgetHost("WEB1");
    const left = (await scrapeText(recorder)).split("\n").filter((l) => /web1/i.test(l) && !l.startsWith("#"));
    expect(left).toEqual([]);
  });
});
