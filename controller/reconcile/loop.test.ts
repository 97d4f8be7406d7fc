// The controller across cycles, in the style of sample-controller's fixture tests: a fake source,
// a fake directory (reads and writes on one in-memory copy, failures injected per DN and outcome)
// and a clock the test moves. Each test asserts the conditions, the requeue delay and the metrics
// after every cycle, because a status that is right in the first cycle can be wrong in the second.
import { describe, expect, it } from "vitest";
import { scrapeText } from "../../test/support/metrics.ts";
import type { ObservedGroup, ObservedKdsRootKey } from "../directory/index.ts";
import { HOST_CONTRACT_VERSION } from "../hosts/index.ts";
import type { HostDriver } from "../hosts/index.ts";
import { createMetricsRecorder } from "../metrics/index.ts";
import type { Snapshot } from "../source/index.ts";
import {
  computer,
  emptyDirectory,
  fakeDirectory,
  kdsObserved,
  withUsns,
  observedGroup,
  OWNER,
} from "../../test/support/reconcile.ts";
import type { HostRequest, HostResult } from "../hosts/index.ts";
import { HostError } from "../hosts/index.ts";
import type { HostSettings } from "./hosts.ts";
import type { Logger } from "./loop.ts";
import type { OpenDirectory } from "./pass.ts";
import { STALLED_RETRY_MS } from "./gate.ts";
import { Controller, READY_FAILURE_LIMIT } from "./loop.ts";
import type { ResourceStatus } from "./status.ts";

const INTERVAL = 60_000;
/** Conditions of a resource whose drift was corrected this cycle, and of one in sync. */
const CORRECTED = {
  Ready: "True/DriftCorrected",
  Stalled: "False/DriftCorrected",
  Reconciling: "False/DriftCorrected",
  DriftDetected: "True/DriftCorrected",
};
/** Conditions of a resource created this cycle (no drift evidence: it never existed). */
const CREATED = { Ready: "True/Created", Stalled: "False/Created", Reconciling: "False/Created" };
const RECONCILED = { Ready: "True/Reconciled", Stalled: "False/Reconciled", Reconciling: "False/Reconciled" };
/** Conditions of a resource with uncorrected drift, waiting (Reconciling) for `reason`. */
const WAITING = (reason: string): Record<string, string> => ({
  Ready: `False/${reason}`,
  Stalled: `False/${reason}`,
  Reconciling: `True/${reason}`,
  DriftDetected: "True/DriftReported",
});
const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

const groupYaml = (description: string): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: app-hosts
spec:
  accountName: App-Hosts
  description: ${description}
  members:
    - computer: SERVER1
`;

const gmsaYaml = `apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: app
spec:
  accountName: gMSA-App
  dnsHostName: app.company.local
  principalsAllowedToRetrieveManagedPassword:
    - group: app-hosts
`;

/** A source whose files the test replaces; each change is a new revision. */
function fakeSource(files: Record<string, string>) {
  let revision = 1;
  let current = files;
  const source = {
    url: "file:///repo",
    /** Runs inside each sync, before it answers: a fetch that takes time, or fails. */
    fetching: undefined as (() => Promise<void>) | undefined,
    sync: async (): Promise<Snapshot> => {
      await source.fetching?.();
      return {
        revision: `rev-${revision}`,
        files: Object.entries(current).map(([path, text]) => ({ path, content: new TextEncoder().encode(text) })),
        fetchedAt: new Date(0),
      };
    },
    commit(next: Record<string, string>): void {
      current = next;
      revision++;
    },
  };
  return source;
}

/** What a test may change about the controller the harness builds. */
interface HarnessOptions {
  readonly start?: Date;
  readonly kdsRootKeys?: ObservedKdsRootKey[];
  /** Marked groups already in AD (prune candidates when Git does not list them). */
  readonly groups?: ObservedGroup[];
  readonly hosts?: HostSettings;
  readonly prune?: boolean;
  readonly deletionBudget?: number;
  /** Called on every status change (a throw there is a fault after observing). */
  readonly onStatusChange?: () => void;
  /** Incremental reads (a directory that keeps USNs), with a full read only once a day. */
  readonly incremental?: boolean;
  /** Where the sessions' opens, watermark reads and closes are logged, in order. */
  readonly trace?: string[];
}

/** The opener, logging each session's open, watermark read and close into `trace`. */
function traced(open: OpenDirectory, trace: string[]): OpenDirectory {
  return async (signal) => {
    const session = await open(signal);
    trace.push("open");
    return {
      ...session,
      ...(session.watermark
        ? {
            watermark: (...a: Parameters<NonNullable<typeof session.watermark>>) => (
              trace.push("watermark"),
              session.watermark!(...a)
            ),
          }
        : {}),
      close: () => (trace.push("close"), session.close()),
    };
  };
}

function harness(files: Record<string, string>, options: HarnessOptions = {}) {
  const start = options.start ?? new Date("2026-01-01T00:00:00Z");
  let now = start;
  const dir = fakeDirectory(
    emptyDirectory(now, {
      computers: [computer("SERVER1")],
      kdsRootKeys: options.kdsRootKeys ?? [kdsObserved(start, 11)],
      groups: options.groups ?? [],
    }),
  );
  const source = fakeSource(files);
  const metrics = createMetricsRecorder();
  const { hosts } = options;
  const controller = new Controller({
    source,
    openDirectory: ((open) => (options.trace ? traced(open, options.trace) : open))(
      options.incremental ? withUsns(dir.open, dir.observed) : dir.open,
    ),
    ...(options.incremental ? { fullResyncMs: 24 * 3_600_000 } : {}),
    metrics,
    logger: silent,
    policy: {
      mode: "enforce",
      prune: options.prune ?? false,
      deletionBudget: options.deletionBudget ?? 5,
      adopt: false,
      owner: OWNER,
    },
    intervalMs: INTERVAL,
    jitterFraction: 0,
    now: () => now,
    random: () => 0.5, // no jitter: delays are exact
    ...(hosts ? { hosts } : {}),
    ...(options.onStatusChange ? { onStatusChange: options.onStatusChange } : {}),
  });
  const status = (kind: string, name: string): ResourceStatus => {
    const s = controller.status().resources.find((r) => r.kind === kind && r.name === name);
    if (!s) throw new Error(`no status for ${kind}/${name}`);
    return s;
  };
  const conditions = (kind: string, name: string): Record<string, string> =>
    Object.fromEntries(status(kind, name).conditions.map((c) => [c.type, `${c.status}/${c.reason}`]));
  const metric = async (pattern: RegExp): Promise<string[]> =>
    (await scrapeText(metrics)).split("\n").filter((line) => pattern.test(line));
  return {
    controller,
    dir,
    source,
    status,
    conditions,
    metric,
    advance(ms: number): void {
      now = new Date(now.getTime() + ms);
    },
    get now(): Date {
      return now;
    },
  };
}

/** A failure injected for DNs matching `match`, counting how often the writer hit it. */
function inject(h: ReturnType<typeof harness>, match: RegExp, outcome: "stalled" | "transient") {
  const failure = { match, outcome };
  h.dir.failures.push(failure);
  return () => h.dir.failures.splice(h.dir.failures.indexOf(failure), 1);
}

describe("Controller across cycles", () => {
  it("a write refused as stalled stays Stalled with ApplyFailed in later cycles, not retried on the same revision and object", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    inject(h, /CN=App-Hosts/, "stalled");

    const first = await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")).toEqual({
      Ready: "False/ApplyFailed",
      Stalled: "True/ApplyFailed",
      Reconciling: "False/ApplyFailed",
      DriftDetected: "True/DriftReported",
      ApplyFailed: "True/ApplyFailed",
    });
    expect(first).toBe(INTERVAL);
    expect(h.dir.writes).toHaveLength(0);
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app-hosts".*type="Stalled"/)).toEqual([
      expect.stringMatching(/ 1$/),
    ]);
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="partial"\}/)).toEqual([expect.stringMatching(/ 1$/)]);

    // Second and third cycles at the same revision: no attempt, the same conditions (the bug was
    // Ready=False/DeletionPending, Stalled=False, Reconciling=True and ApplyFailed gone).
    const opened = h.dir.state.opened;
    for (let cycle = 2; cycle <= 3; cycle++) {
      h.advance(INTERVAL);
      const delay = await h.controller.reconcile();
      expect(delay).toBe(INTERVAL);
      expect(h.conditions("ADGroup", "app-hosts")).toEqual({
        Ready: "False/ApplyFailed",
        Stalled: "True/ApplyFailed",
        Reconciling: "False/ApplyFailed",
        DriftDetected: "True/DriftReported",
        ApplyFailed: "True/ApplyFailed",
      });
      expect(h.status("ADGroup", "app-hosts").conditions.find((c) => c.type === "Stalled")?.message).toContain(
        "simulated stalled failure",
      );
    }
    expect(h.dir.state.opened).toBe(opened + 2);
    expect(await h.metric(/^gmsa_gitops_actions_total\{.*result="failure"\}/)).toContainEqual(
      expect.stringMatching(/kind="ADGroup",action="create".* 1$/),
    );
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="partial"\}/)).toEqual([expect.stringMatching(/ 3$/)]);

    // A new revision (and AD now accepting the write): retried, created, Ready.
    h.dir.failures.length = 0;
    h.source.commit({ "group.yaml": groupYaml("v2") });
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")).toEqual(CREATED);
    // add, then the ownership marker once the group has its objectGUID, then the members.
    expect(h.dir.writes.map((w) => w.op)).toEqual(["add", "modify", "addMembers"]);
    expect(h.status("ADGroup", "app-hosts").lastAppliedRevision).toBe("rev-2");
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app-hosts".*type="Stalled"/)).toEqual([
      expect.stringMatching(/ 0$/),
    ]);

    // Next cycle: nothing to do, Ready/Reconciled, and the last drift kept as evidence.
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")).toEqual(RECONCILED);
    // Created, not drift corrected: the failed attempts' pending creation is no drift evidence.
    expect(h.status("ADGroup", "app-hosts").lastDrift).toBeNull();
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="success"\}/)).toEqual([expect.stringMatching(/ 2$/)]);
  });

  it("a write refused as stalled is tried again when the object changes in AD, or an hour later, not only on a new revision", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    await h.controller.reconcile();
    const group = h.dir.observed().groups[0]!;
    const handEdit = (text: string) =>
      h.dir.writer.modify(group.dn, [{ operation: "replace", attribute: "description", values: [text] }]);
    await handEdit("hand edit");
    const remove = inject(h, /CN=App-Hosts/, "stalled");
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Stalled"]).toBe("True/ApplyFailed");

    // Same revision, same object: held, and the message says what releases it.
    const writes = h.dir.writes.length;
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.dir.writes.length).toBe(writes);
    const message = h.status("ADGroup", "app-hosts").conditions.find((c) => c.type === "Stalled")!.message;
    expect(message).toContain("when Git or this object in AD changes");
    expect(message).not.toContain("until the revision in Git changes");

    // The object changes in AD (the DC now accepts, too): tried again at once and corrected.
    remove();
    await handEdit("second hand edit");
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Ready"]).toBe("True/DriftCorrected");
    expect(h.dir.observed().groups[0]?.description).toBe("v1");

    // Refused again, then nothing changes: tried again after STALLED_RETRY_MS.
    await handEdit("third hand edit");
    const again = inject(h, /CN=App-Hosts/, "stalled");
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Stalled"]).toBe("True/ApplyFailed");
    again();
    h.advance(STALLED_RETRY_MS - 1);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Stalled"]).toBe("True/ApplyFailed");
    h.advance(1);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Ready"]).toBe("True/DriftCorrected");
  });

  it("a transient failure backs off: no retry before it is due, the requeue says when, then it recovers", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    let attempts = 0;
    h.dir.failures.push({
      match: {
        test: () => {
          attempts++;
          return true;
        },
      } as unknown as RegExp,
      outcome: "transient",
    });

    const first = await h.controller.reconcile();
    expect(attempts).toBe(1);
    // 5 s base back-off, no jitter: requeued in 5 s, well before the interval.
    expect(first).toBe(5_000);
    expect(h.conditions("ADGroup", "app-hosts")).toEqual({
      Ready: "False/RetryingAfterFailure",
      Stalled: "False/RetryingAfterFailure",
      Reconciling: "True/RetryingAfterFailure",
      DriftDetected: "True/DriftReported",
      ApplyFailed: "True/ApplyFailed",
    });

    // A cycle before the back-off is due (e.g. a webhook): no attempt, same conditions, and the
    // requeue is the time left.
    h.advance(2_000);
    const second = await h.controller.reconcile();
    expect(attempts).toBe(1);
    expect(second).toBe(3_000);
    expect(h.conditions("ADGroup", "app-hosts")).toMatchObject({
      Reconciling: "True/RetryingAfterFailure",
      ApplyFailed: "True/ApplyFailed",
    });
    expect(h.status("ADGroup", "app-hosts").nextAttemptAt).toBe(new Date(h.now.getTime() + 3_000).toISOString());

    // Due, and failing again: the back-off doubles.
    h.advance(3_000);
    expect(await h.controller.reconcile()).toBe(10_000);
    expect(attempts).toBe(2);

    // Due again, and AD accepts: Ready, ApplyFailed gone, requeue at the interval.
    h.dir.failures.length = 0;
    h.advance(10_000);
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("ADGroup", "app-hosts")).toEqual(CREATED);
    expect(h.status("ADGroup", "app-hosts").nextAttemptAt).toBeNull();
  });

  it("ApplyFailed is a condition series: absent before any failure, 1 while writes fail, 0 once one applies", async () => {
    const h = harness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml });
    const applyFailed = (name: string) =>
      h.metric(new RegExp(`^gmsa_gitops_resource_condition\\{.*name="${name}".*type="ApplyFailed"`));
    const remove = inject(h, /CN=App-Hosts/, "transient");
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["ApplyFailed"]).toBe("True/ApplyFailed");
    expect(await applyFailed("app-hosts")).toEqual([expect.stringMatching(/ 1$/)]);
    // A resource that never failed has no ApplyFailed series (it would be one more per resource).
    expect(await applyFailed("app")).toEqual([]);

    remove();
    h.advance(5_000);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["ApplyFailed"]).toBeUndefined();
    expect(await applyFailed("app-hosts")).toEqual([expect.stringMatching(/ 0$/)]);
  });

  it("a gMSA waits for the KDS root key until a known time, requeued for that time, then is created", async () => {
    const start = new Date("2026-01-01T00:00:00Z");
    // A key whose use starts 10 h 4 min 30 s before now: effective (10 h 5 min) in 30 s.
    const key = kdsObserved(start, 10 + 4.5 / 60);
    const effectiveAt = new Date(key.useStartTime.getTime() + (10 * 60 + 5) * 60_000);
    const h = harness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml }, { start, kdsRootKeys: [key] });

    expect(await h.controller.reconcile()).toBe(30_000);
    expect(h.conditions("GroupManagedServiceAccount", "app")).toEqual(WAITING("KdsRootKeyNotEffective"));
    expect(h.status("GroupManagedServiceAccount", "app").nextAttemptAt).toBe(effectiveAt.toISOString());
    // The group does not wait for the key.
    expect(h.conditions("ADGroup", "app-hosts")["Ready"]).toBe("True/Created");
    expect(h.dir.writes.filter((w) => w.op === "add").map((w) => w.dn)).toEqual([
      expect.stringMatching(/^CN=App-Hosts,/),
    ]);

    h.advance(30_000);
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("GroupManagedServiceAccount", "app")["Ready"]).toBe("True/Created");
    expect(h.dir.writes.filter((w) => w.op === "add").map((w) => w.dn)).toContainEqual(
      expect.stringMatching(/^CN=gMSA-App,/),
    );
  });

  it("when AD cannot be observed, conditions become Unknown saying why, and come back when it can", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Ready"]).toBe("True/Created");

    h.dir.state.down = true;
    h.advance(INTERVAL);
    const delay = await h.controller.reconcile();
    expect(delay).toBe(5_000);
    expect(h.conditions("ADGroup", "app-hosts")).toEqual({
      Ready: "Unknown/ObservationFailed",
      Stalled: "Unknown/ObservationFailed",
      Reconciling: "Unknown/ObservationFailed",
    });
    expect(h.status("ADGroup", "app-hosts").conditions[0]?.message).toContain("ECONNREFUSED");
    expect(h.controller.status().controller.lastReconcile).toMatchObject({ result: "failure" });
    // The directory's own condition says so too, not the "bound" of the last cycle that read it.
    expect(h.controller.status().controller.directory).toMatchObject({
      status: "Unknown",
      reason: "ObservationFailed",
      message: expect.stringContaining("ECONNREFUSED"),
    });
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app-hosts".*type="Ready"/)).toEqual([
      expect.stringMatching(/ 0$/),
    ]);

    h.dir.state.down = false;
    h.advance(delay);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Ready"]).toBe("True/Reconciled");
    expect(h.controller.status().controller.directory).toMatchObject({ status: "False", reason: "Bound" });
  });
});

const bindingYaml = `apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: server1-app
spec:
  host: SERVER1
  account: app
  localGroups: [Administrators]
`;

describe("host bindings without a transport", () => {
  it("are listed Ready=Unknown with the reason, and logged once, not every cycle", async () => {
    const warnings: { obj: object; msg: string | undefined }[] = [];
    const h = harness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml, "binding.yaml": bindingYaml });
    const controller = new Controller({
      source: h.source,
      openDirectory: h.dir.open,
      metrics: createMetricsRecorder(),
      logger: { ...silent, warn: (obj, msg) => warnings.push({ obj, msg }) },
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      intervalMs: INTERVAL,
    });
    for (let cycle = 0; cycle < 3; cycle++) await controller.reconcile();

    const binding = controller.status().resources.find((r) => r.kind === "HostBinding" && r.name === "server1-app");
    expect(binding?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      "Ready=Unknown/NoHostTransport",
      "Stalled=Unknown/NoHostTransport",
      "Reconciling=Unknown/NoHostTransport",
    ]);
    expect(binding?.conditions[0]?.message).toMatch(/no host transport.*--host-transport ssh.*agent/);
    expect(binding?.source).toEqual({ file: "binding.yaml", line: 1 });
    expect(binding?.host).toEqual({ name: "SERVER1", reachable: null, retrievable: null });
    const logged = warnings.filter((w) => w.msg?.includes("no host transport"));
    expect(logged).toHaveLength(1);
    expect(logged[0]?.obj).toEqual({ bindings: ["server1-app"] });
  });
});

/** What a host answers when every binding of the request is retrievable and its items are `items`. */
function hostAnswer(request: HostRequest, items: HostResult["bindings"][number]["items"]): HostResult {
  return {
    version: HOST_CONTRACT_VERSION,
    host: request.host,
    mode: request.mode,
    powershell: "7.6.9",
    bindings: request.bindings.map((b) => ({
      name: b.name,
      account: b.account,
      retrievable: true,
      install: "NotNeeded",
      items,
    })),
  };
}

describe("series of what left the repository", () => {
  it("a HostBinding removed from Git takes its host's series with it", async () => {
    const h = harness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml, "binding.yaml": bindingYaml });
    const metrics = createMetricsRecorder();
    // A host that answers every binding as retrievable and in sync (the real script runs in test/).
    const driver: HostDriver = { run: (_target, request) => Promise.resolve(hostAnswer(request, [])) };
    const controller = new Controller({
      source: h.source,
      openDirectory: h.dir.open,
      metrics,
      logger: silent,
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      intervalMs: INTERVAL,
      hosts: { driver, domain: "COMPANY", concurrency: 1, target: (host) => ({ host, address: "127.0.0.1" }) },
    });
    const server1 = async () =>
      (await scrapeText(metrics)).split("\n").filter((l) => !l.startsWith("#") && /SERVER1|server1-app/.test(l));
    await controller.reconcile();
    expect(await server1()).toEqual(
      expect.arrayContaining([
        'gmsa_gitops_host_reachable{host="SERVER1"} 1',
        'gmsa_gitops_host_password_retrievable{host="SERVER1",account="gMSA-App",state="yes"} 1',
      ]),
    );

    h.source.commit({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml });
    await controller.reconcile();
    expect(controller.status().resources.map((r) => r.name)).not.toContain("server1-app");
    expect(await server1()).toEqual([]);
  });
});

describe("readiness", () => {
  it("is lost while AD cannot be observed (conditions Unknown) and comes back with the next observation", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    expect(h.controller.ready()).toBe(false);
    expect(h.controller.notReady()).toBe("no reconcile has completed yet");
    await h.controller.reconcile();
    expect(h.controller.ready()).toBe(true);
    expect(h.controller.notReady()).toBeUndefined();
    const observedAt = async () =>
      Number((await h.metric(/^gmsa_gitops_last_observed_timestamp_seconds /))[0]?.split(" ")[1]);
    expect(await observedAt()).toBe(h.now.getTime() / 1000);
    const before = h.now.getTime() / 1000;

    h.dir.state.down = true;
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")["Ready"]).toBe("Unknown/ObservationFailed");
    expect(h.controller.ready()).toBe(false);
    // Why, in the words the last reconcile's error has in /api/status.
    const error = h.controller.status().controller.lastReconcile?.error;
    expect(error).toEqual(expect.any(String));
    expect(h.controller.notReady()).toBe(`Active Directory could not be observed: ${error}`);
    // The time of the last observation stays where it was: the stale-observation alert's input.
    expect(await observedAt()).toBe(before);

    h.dir.state.down = false;
    h.advance(5_000);
    await h.controller.reconcile();
    expect(h.controller.ready()).toBe(true);
    expect(await observedAt()).toBe(h.now.getTime() / 1000);
  });

  it(`is lost after ${READY_FAILURE_LIMIT} failed cycles in a row even when AD was observed, and comes back after one that completes`, async () => {
    let failing = false;
    const h = harness(
      { "group.yaml": groupYaml("v1") },
      {
        onStatusChange: () => {
          if (failing) throw new Error("simulated fault after observing");
        },
      },
    );
    await h.controller.reconcile();
    expect(h.controller.ready()).toBe(true);
    failing = true;
    for (let cycle = 1; cycle <= READY_FAILURE_LIMIT; cycle++) {
      h.advance(INTERVAL);
      await h.controller.reconcile();
      expect(h.controller.status().controller.lastReconcile?.result).toBe("failure");
      expect(h.controller.ready(), `after ${cycle} failed cycles`).toBe(cycle < READY_FAILURE_LIMIT);
    }
    expect(h.controller.notReady()).toBe(
      `${READY_FAILURE_LIMIT} reconciles failed in a row: simulated fault after observing`,
    );
    failing = false;
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.controller.ready()).toBe(true);
  });

  it("exports the reconcile interval, the scale of the stale-observation alert", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    expect(await h.metric(/^gmsa_gitops_reconcile_interval_seconds /)).toEqual([
      `gmsa_gitops_reconcile_interval_seconds ${INTERVAL / 1000}`,
    ]);
  });
});

describe("drift evidence", () => {
  it("a correction is counted per kind and drift type and logged at warn with old and new values", async () => {
    const warnings: { obj: object; msg: string }[] = [];
    const h = harness({ "group.yaml": groupYaml("v1") });
    await h.controller.reconcile();
    // Someone edits the description by hand: the next cycle corrects it.
    const group = h.dir.observed().groups[0]!;
    await h.dir.writer.modify(group.dn, [{ operation: "replace", attribute: "description", values: ["hand edit"] }]);
    const logged = new Controller({
      source: h.source,
      openDirectory: h.dir.open,
      metrics: createMetricsRecorder(),
      logger: { ...silent, warn: (obj, msg) => void warnings.push({ obj, msg: msg ?? "" }) },
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      intervalMs: INTERVAL,
    });
    await h.controller.reconcile();
    expect(await h.metric(/^gmsa_gitops_drift_corrections_total\{kind="ADGroup",drift_type="attribute"\}/)).toEqual([
      expect.stringMatching(/ 1$/),
    ]);
    expect(h.status("ADGroup", "app-hosts").lastDrift).toMatchObject({
      drift: ["attribute"],
      changes: [{ attribute: "description", from: "hand edit", to: "v1" }],
    });
    await h.dir.writer.modify(group.dn, [{ operation: "replace", attribute: "description", values: ["again"] }]);
    await logged.reconcile();
    expect(warnings).toContainEqual({
      msg: "drift corrected",
      obj: expect.objectContaining({
        kind: "ADGroup",
        resource: "app-hosts",
        changes: [{ attribute: "description", from: "again", to: "v1" }],
      }),
    });
  });
});

describe("a bind the DC refuses (LDAP 49)", () => {
  it("backs off exponentially to a cap, says so once in the log, in status and metrics, and binds at once on new credentials", async () => {
    let now = new Date("2026-01-01T00:00:00Z");
    const dir = fakeDirectory(emptyDirectory(now, { computers: [computer("SERVER1")] }));
    const lines: Array<{ level: string; msg: string | undefined; obj: object }> = [];
    const log =
      (level: string) =>
      (obj: object, msg?: string): void =>
        void lines.push({ level, msg, obj });
    const metrics = createMetricsRecorder();
    const controller = new Controller({
      source: fakeSource({ "g.yaml": groupYaml("ours") }),
      openDirectory: dir.open,
      metrics,
      logger: { info: log("info"), warn: log("warn"), error: log("error") },
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      intervalMs: INTERVAL,
      jitterFraction: 0,
      now: () => now,
      random: () => 0.5,
    });
    const metric = async (name: string): Promise<string[]> =>
      (await scrapeText(metrics)).split("\n").filter((l) => l.startsWith(name));
    const advance = (ms: number): void => void (now = new Date(now.getTime() + ms));

    dir.state.refuseBind = "52e";
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      const wait = await controller.reconcile();
      waits.push(wait / 1000);
      // A webhook or a push in between does not bind again before the wait is over.
      advance(30_000);
      expect(await controller.reconcile()).toBe(wait - 30_000);
      advance(wait - 30_000);
    }
    expect(waits).toEqual([300, 600, 1200, 2400, 3600, 3600, 3600]);
    expect(dir.state.binds).toBe(7);
    const errors = lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ obj: { reason: "InvalidCredentials", failures: 1 } });
    expect(await metric("gmsa_gitops_directory_bind_failures_total")).toEqual([
      'gmsa_gitops_directory_bind_failures_total{reason="InvalidCredentials"} 7',
      'gmsa_gitops_directory_bind_failures_total{reason="AccountLocked"} 0',
    ]);
    expect(await metric("gmsa_gitops_directory_bind_backoff_seconds ")).toEqual([
      "gmsa_gitops_directory_bind_backoff_seconds 3600",
    ]);
    expect(controller.status().controller.directory).toEqual({
      type: "Stalled",
      status: "True",
      reason: "InvalidCredentials",
      message: expect.stringMatching(
        /bind as CN=svc,CN=Users,DC=company,DC=local failed: invalid credentials \(LDAP 49/,
      ),
      consecutiveFailures: 7,
      nextAttemptAt: now.toISOString(), // the loop above waited the last back-off out
    });
    expect(JSON.stringify(controller.status())).not.toContain("the-wrong-password");

    // The account got locked meanwhile: a new reason is a new log line.
    advance(3_600_000);
    dir.state.refuseBind = "775";
    await controller.reconcile();
    expect(lines.filter((l) => l.level === "error").map((l) => (l.obj as { reason: string }).reason)).toEqual([
      "InvalidCredentials",
      "AccountLocked",
    ]);

    // A new password file: the next cycle binds at once, and the condition clears.
    dir.state.refuseBind = undefined;
    advance(60_000);
    expect(await controller.reconcile()).toBeGreaterThan(60_000); // still held: nothing changed
    expect(dir.state.binds).toBe(8);
    controller.credentialsChanged();
    expect(await controller.reconcile()).toBe(INTERVAL);
    expect(dir.state.binds).toBe(9);
    expect(controller.status().controller.directory).toMatchObject({
      status: "False",
      reason: "Bound",
      nextAttemptAt: null,
    });
    expect(await metric("gmsa_gitops_directory_bind_backoff_seconds ")).toEqual([
      "gmsa_gitops_directory_bind_backoff_seconds 0",
    ]);
    expect(lines.filter((l) => l.msg === "bound to the domain controller again")).toHaveLength(1);
  });
});

describe("Controller across cycles, other shapes", () => {
  it("a gMSA stalled on a missing principal, then waiting for the KDS key after a fix in Git, then created", async () => {
    const start = new Date("2026-01-01T00:00:00Z");
    // The key's use starts 10 h 3 min before now: effective (10 h 5 min) in 2 min.
    const key = kdsObserved(start, 10 + 3 / 60);
    const effectiveAt = new Date(key.useStartTime.getTime() + (10 * 60 + 5) * 60_000);
    const missing = gmsaYaml.replace("- group: app-hosts", "- computer: SERVER9");
    const h = harness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": missing }, { start, kdsRootKeys: [key] });

    // Cycle 1: SERVER9 is not in AD: stalled, no write for the gMSA, requeued at the interval.
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("GroupManagedServiceAccount", "app")).toEqual({
      Ready: "False/PrincipalNotFound",
      Stalled: "True/PrincipalNotFound",
      Reconciling: "False/PrincipalNotFound",
      DriftDetected: "True/DriftReported",
    });
    expect(h.status("GroupManagedServiceAccount", "app").nextAttemptAt).toBeNull();
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app".*\}/)).toEqual([
      expect.stringMatching(/type="Ready"\} 0$/),
      expect.stringMatching(/type="Reconciling"\} 0$/),
      expect.stringMatching(/type="Stalled"\} 1$/),
    ]);
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="partial"\}/)).toEqual([expect.stringMatching(/ 1$/)]);

    // Cycle 2, 90 s later: Git names the group now; the gMSA waits for the key, requeued for it
    // (in 30 s, before the interval).
    h.source.commit({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml });
    h.advance(90_000);
    expect(await h.controller.reconcile()).toBe(30_000);
    expect(h.conditions("GroupManagedServiceAccount", "app")).toEqual(WAITING("KdsRootKeyNotEffective"));
    expect(h.status("GroupManagedServiceAccount", "app").nextAttemptAt).toBe(effectiveAt.toISOString());
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app".*\}/)).toEqual([
      expect.stringMatching(/type="Ready"\} 0$/),
      expect.stringMatching(/type="Reconciling"\} 1$/),
      expect.stringMatching(/type="Stalled"\} 0$/),
    ]);
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="success"\}/)).toEqual([expect.stringMatching(/ 1$/)]);

    // Cycle 3, when the key is effective: created, Ready, back to the interval.
    h.advance(30_000);
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("GroupManagedServiceAccount", "app")).toEqual(CREATED);
    expect(h.status("GroupManagedServiceAccount", "app")).toMatchObject({
      nextAttemptAt: null,
      lastAppliedRevision: "rev-2",
    });
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app".*\}/)).toEqual([
      expect.stringMatching(/type="Ready"\} 1$/),
      expect.stringMatching(/type="Reconciling"\} 0$/),
      expect.stringMatching(/type="Stalled"\} 0$/),
    ]);
    // Created, not a drift correction: the series exists (zero), the count does not move.
    expect(
      await h.metric(/^gmsa_gitops_drift_corrections_total\{kind="GroupManagedServiceAccount",drift_type="missing"\}/),
    ).toEqual([expect.stringMatching(/ 0$/)]);
  });

  it("a stalled write is forgotten once the resource is in sync again: later drift at the same revision is corrected", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    await h.controller.reconcile();
    const dn = h.dir.observed().groups[0]!.dn;

    // Someone edits the description and AD refuses our fix as stalled (say, a constraint).
    await h.dir.writer.modify(dn, [{ operation: "replace", attribute: "description", values: ["hand edit"] }]);
    const release = inject(h, /CN=App-Hosts/, "stalled");
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")).toMatchObject({ Stalled: "True/ApplyFailed" });

    // A person puts the description back by hand (and lifts the constraint): in sync, Ready.
    release();
    await h.dir.writer.modify(dn, [{ operation: "replace", attribute: "description", values: ["v1"] }]);
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(h.conditions("ADGroup", "app-hosts")).toEqual(RECONCILED);

    // Drift again, same revision: corrected, not held back by the old refusal.
    await h.dir.writer.modify(dn, [{ operation: "replace", attribute: "description", values: ["again"] }]);
    const writes = h.dir.writes.length;
    h.advance(INTERVAL);
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("ADGroup", "app-hosts")).toEqual(CORRECTED);
    expect(h.dir.writes.slice(writes).map((w) => w.op)).toEqual(["modify"]);
  });

  it("a transient failure says when it is retried in the very cycle it fails", async () => {
    const h = harness({ "group.yaml": groupYaml("v1") });
    inject(h, /CN=App-Hosts/, "transient");
    expect(await h.controller.reconcile()).toBe(5_000);
    expect(h.status("ADGroup", "app-hosts").nextAttemptAt).toBe(new Date(h.now.getTime() + 5_000).toISOString());
  });

  it("deletions held by the budget go one per cycle over three cycles, each waiting until its turn", async () => {
    const three = ["Old-A", "Old-B", "Old-C"];
    const h = harness(
      { "group.yaml": groupYaml("v1") },
      { groups: three.map((n) => observedGroup(n, [])), prune: true, deletionBudget: 1 },
    );
    const conditionsOf = (name: string): Record<string, string> =>
      h.controller.status().resources.some((r) => r.kind === "ADGroup" && r.name === name)
        ? h.conditions("ADGroup", name)
        : {};
    const readyMetric = (name: string): Promise<string[]> =>
      h.metric(new RegExp(`^gmsa_gitops_resource_condition\\{kind="ADGroup",name="${name}",type="Ready"\\}`));
    const held = WAITING("DeletionBudgetExhausted");
    const deleted = CORRECTED;

    for (let cycle = 0; cycle < 3; cycle++) {
      expect(await h.controller.reconcile()).toBe(INTERVAL);
      const gone = three.slice(0, cycle + 1).map((n) => n.toLowerCase());
      // The one deleted this cycle reads DriftCorrected; those deleted before have left status and metrics.
      expect(conditionsOf(gone[cycle]!)).toEqual(deleted);
      for (const name of gone.slice(0, cycle)) {
        expect(conditionsOf(name)).toEqual({});
        expect(await readyMetric(name)).toEqual([]);
      }
      for (const name of three.slice(cycle + 1).map((n) => n.toLowerCase())) {
        expect(conditionsOf(name)).toEqual(held);
        expect(await readyMetric(name)).toEqual([expect.stringMatching(/ 0$/)]);
      }
      expect(h.dir.writes.filter((w) => w.op === "delete")).toHaveLength(cycle + 1);
      h.advance(INTERVAL);
    }
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.controller.status().resources.map((r) => `${r.kind}/${r.name}`)).toEqual(["ADGroup/app-hosts"]);
  });
});

describe("a host binding across cycles", () => {
  it("a host that cannot be reached backs off, says when it is tried again, then recovers and is Ready", async () => {
    const requests: HostRequest[] = [];
    let member = false;
    let reachable = false;
    const driver = {
      run(_target: unknown, request: HostRequest): Promise<HostResult> {
        requests.push(request);
        if (!reachable)
          return Promise.reject(new HostError("Unreachable", "SERVER1", "connect ECONNREFUSED 10.0.0.1:22"));
        const changed = !member && request.mode === "apply";
        const item = {
          item: "localGroup" as const,
          name: "Administrators",
          observed: member,
          desired: true,
          action: member ? ("none" as const) : changed ? ("changed" as const) : ("would-change" as const),
          ...(member ? {} : { reason: "NotMember" as const }),
        };
        if (changed) member = true;
        return Promise.resolve({
          version: request.version,
          host: request.host,
          mode: request.mode,
          powershell: "7.6.9",
          bindings: [
            { name: "server1-app", account: "gMSA-App", retrievable: true, install: "NotNeeded", items: [item] },
          ],
        });
      },
    };
    const hosts: HostSettings = {
      driver,
      domain: "COMPANY",
      concurrency: 1,
      target: (host, dns) => ({ host, address: dns ?? host }),
    };
    const h = harness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml, "binding.yaml": bindingYaml }, { hosts });
    const reachableMetric = () => h.metric(/^gmsa_gitops_host_reachable\{host="SERVER1"\}/);

    // Cycle 1: AD is created, the host does not answer: retried with back-off, and status says when.
    expect(await h.controller.reconcile()).toBe(5_000);
    expect(requests).toHaveLength(1);
    expect(h.conditions("HostBinding", "server1-app")).toEqual({
      Ready: "False/RetryingAfterFailure",
      Stalled: "False/RetryingAfterFailure",
      Reconciling: "True/RetryingAfterFailure",
      ApplyFailed: "True/ApplyFailed",
    });
    expect(h.status("HostBinding", "server1-app")).toMatchObject({
      host: { name: "SERVER1", reachable: false, retrievable: null },
      nextAttemptAt: new Date(h.now.getTime() + 5_000).toISOString(),
    });
    expect(await reachableMetric()).toEqual([expect.stringMatching(/ 0$/)]);
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="partial"\}/)).toEqual([expect.stringMatching(/ 1$/)]);

    // Cycle 2, when due: the host answers and is fixed.
    reachable = true;
    h.advance(5_000);
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("HostBinding", "server1-app")).toEqual(CORRECTED);
    expect(h.status("HostBinding", "server1-app")).toMatchObject({
      host: { name: "SERVER1", reachable: true, retrievable: "yes" },
      nextAttemptAt: null,
      lastAppliedRevision: "rev-1",
    });
    expect(await reachableMetric()).toEqual([expect.stringMatching(/ 1$/)]);
    expect(
      await h.metric(/^gmsa_gitops_drift_corrections_total\{kind="HostBinding",drift_type="host-group"\}/),
    ).toEqual([expect.stringMatching(/ 1$/)]);

    // Cycle 3: in sync.
    h.advance(INTERVAL);
    expect(await h.controller.reconcile()).toBe(INTERVAL);
    expect(h.conditions("HostBinding", "server1-app")).toEqual(RECONCILED);
    expect(requests.map((r) => r.mode)).toEqual(["apply", "apply", "apply"]);
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="success"\}/)).toEqual([expect.stringMatching(/ 2$/)]);
  });

  it("a binding removed from Git and added back starts afresh: no logon right is remembered as granted before", async () => {
    const requests: HostRequest[] = [];
    const driver = {
      run(_target: unknown, request: HostRequest): Promise<HostResult> {
        requests.push(request);
        return Promise.resolve(
          hostAnswer(request, [
            { item: "logonRight", name: "SeServiceLogonRight", observed: true, desired: true, action: "none" },
          ]),
        );
      },
    };
    const withRight = bindingYaml.replace("localGroups: [Administrators]", "logonRights: [SeServiceLogonRight]");
    const files = { "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml };
    const h = harness(
      { ...files, "binding.yaml": withRight },
      { hosts: { driver, domain: "COMPANY", concurrency: 1, target: (host) => ({ host, address: host }) } },
    );
    await h.controller.reconcile();
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(requests.at(-1)?.bindings[0]?.rightsGrantedBefore).toEqual(["SeServiceLogonRight"]);

    h.source.commit(files);
    h.advance(INTERVAL);
    await h.controller.reconcile();
    h.source.commit({ ...files, "binding.yaml": withRight });
    h.advance(INTERVAL);
    await h.controller.reconcile();
    expect(requests.at(-1)?.bindings[0]?.rightsGrantedBefore).toEqual([]);
  });
});

describe("a cycle that writes for a long time", () => {
  it("records when it observed AD, before applying, so a slow first apply is not a stale observation", async () => {
    let now = new Date("2026-01-01T00:00:00Z");
    const dir = fakeDirectory(emptyDirectory(now, { computers: [computer("SERVER1")] }));
    // Each write takes ten minutes, as thousands of gMSA creations on a slow DC add up to.
    const open: OpenDirectory = async (signal) => {
      const session = await dir.open(signal);
      const writer = new Proxy(session.writer, {
        get: (target, key, receiver): unknown => {
          const value: unknown = Reflect.get(target, key, receiver);
          if (typeof value !== "function") return value;
          return (...args: unknown[]): unknown => {
            now = new Date(now.getTime() + 600_000);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      return { ...session, writer };
    };
    const metrics = createMetricsRecorder();
    const controller = new Controller({
      source: fakeSource({ "g.yaml": groupYaml("ours") }),
      openDirectory: open,
      metrics,
      logger: silent,
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      intervalMs: INTERVAL,
      jitterFraction: 0,
      now: () => now,
      random: () => 0.5,
    });
    const observedAt = now.getTime() / 1000;
    await controller.reconcile();
    expect(now.getTime() / 1000).toBeGreaterThanOrEqual(observedAt + 600);
    expect((await scrapeText(metrics)).split("\n")).toContain(
      `gmsa_gitops_last_observed_timestamp_seconds ${observedAt}`,
    );
  });
});

// Cycles that find nothing new: the loop with incremental reads of a fake directory that keeps
// USNs as a DC does (every change to an object raises its uSNChanged), so a cycle knows what
// changed since the last one. A cycle with nothing new must cost what changed (nothing), not what
// exists; anything due (a hand edit, a new revision, a KDS key becoming effective, a back-off or
// a stalled write's hour ending) is still acted on in the cycle it is due.

/** The harness with incremental reads, counting the resources each cycle summarises into their status. */
function quietHarness(files: Record<string, string>, kdsRootKeys?: ObservedKdsRootKey[], trace?: string[]) {
  let summarised = 0;
  const h = harness(files, {
    incremental: true,
    ...(trace ? { trace } : {}),
    onStatusChange: () => summarised++,
    ...(kdsRootKeys ? { kdsRootKeys } : {}),
  });
  return {
    ...h,
    get now(): Date {
      return h.now;
    },
    condition: (kind: string, name: string, type: string): string | undefined => h.conditions(kind, name)[type],
    /** One cycle `ms` after the last; returns how many resources it summarised. */
    async cycle(ms = INTERVAL): Promise<number> {
      h.advance(ms);
      const before = summarised;
      await h.controller.reconcile();
      return summarised - before;
    },
  };
}

describe("a cycle with nothing new", () => {
  it("summarises no resource again, yet says when AD was observed and that the reconcile ran", async () => {
    const h = quietHarness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml });
    expect(await h.cycle(0)).toBe(2); // creates both
    expect(await h.cycle()).toBe(2); // sees its own writes
    const writes = h.dir.writes.length;
    const transition = h.status("ADGroup", "app-hosts").conditions.find((c) => c.type === "Ready")!.lastTransitionTime;

    for (let i = 0; i < 3; i++) expect(await h.cycle()).toBe(0);

    expect(h.dir.writes.length).toBe(writes);
    const at = h.now.toISOString();
    // Observed: the incremental read found neither object changed, which is an observation.
    expect(h.status("ADGroup", "app-hosts").lastObservedAt).toBe(at);
    expect(h.status("GroupManagedServiceAccount", "app").lastObservedAt).toBe(at);
    expect(h.condition("ADGroup", "app-hosts", "Ready")).toBe("True/Reconciled");
    expect(h.status("ADGroup", "app-hosts").conditions.find((c) => c.type === "Ready")!.lastTransitionTime).toBe(
      transition,
    );
    expect(h.controller.status().controller.lastReconcile).toMatchObject({ startedAt: at, result: "success" });
    expect(h.controller.ready()).toBe(true);
    expect(await h.metric(/^gmsa_gitops_last_observed_timestamp_seconds /)).toEqual([
      `gmsa_gitops_last_observed_timestamp_seconds ${h.now.getTime() / 1000}`,
    ]);
    expect(await h.metric(/^gmsa_gitops_reconciles_total\{result="success"\}/)).toEqual([expect.stringMatching(/ 5$/)]);
    expect(await h.metric(/^gmsa_gitops_resource_condition\{.*name="app-hosts".*type="Ready"/)).toEqual([
      expect.stringMatching(/ 1$/),
    ]);
  });

  it("a hand edit seen by the incremental read is corrected in the cycle it is seen", async () => {
    const h = quietHarness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml });
    await h.cycle(0);
    await h.cycle();
    expect(await h.cycle()).toBe(0);
    const group = h.dir.observed().groups[0]!;
    await h.dir.writer.modify(group.dn, [{ operation: "replace", attribute: "description", values: ["by hand"] }]);
    expect(await h.cycle()).toBeGreaterThan(0);
    expect(h.dir.observed().groups[0]!.description).toBe("v1");
    expect(h.condition("ADGroup", "app-hosts", "Ready")).toBe("True/DriftCorrected");
    expect(await h.cycle()).toBeGreaterThan(0); // its own write seen
    expect(await h.cycle()).toBe(0);
  });

  it("a new revision is applied in the cycle it is fetched", async () => {
    const h = quietHarness({ "group.yaml": groupYaml("v1") });
    await h.cycle(0);
    await h.cycle();
    expect(await h.cycle()).toBe(0);
    const fullReads = await h.metric(/^gmsa_gitops_ldap_entries_read_total\{mode="full"\}/);
    h.source.commit({ "group.yaml": groupYaml("v2") });
    expect(await h.cycle()).toBe(1);
    // The new revision references the same objects: AD is still read incrementally.
    expect(await h.metric(/^gmsa_gitops_ldap_entries_read_total\{mode="full"\}/)).toEqual(fullReads);
    expect(h.dir.observed().groups[0]!.description).toBe("v2");
    expect(h.status("ADGroup", "app-hosts").lastAppliedRevision).toBe("rev-2");
  });

  it("a gMSA waiting for the KDS root key is created in the cycle the key becomes effective", async () => {
    const start = new Date("2026-01-01T00:00:00Z");
    // Effective (10 h 5 min after its start) 3 minutes from now.
    const key = kdsObserved(start, 10 + 2 / 60);
    const h = quietHarness({ "group.yaml": groupYaml("v1"), "gmsa.yaml": gmsaYaml }, [key]);
    await h.cycle(0);
    await h.cycle();
    expect(h.condition("GroupManagedServiceAccount", "app", "Reconciling")).toBe("True/KdsRootKeyNotEffective");
    expect(await h.cycle()).toBe(0);
    expect(h.dir.observed().gmsas).toHaveLength(0);
    await h.cycle(); // 3 min: due
    expect(h.dir.observed().gmsas.map((g) => g.samAccountName)).toEqual(["gMSA-App"]);
    expect(h.condition("GroupManagedServiceAccount", "app", "Ready")).toBe("True/Created");
  });

  it("a write backing off is tried again in the cycle its back-off ends", async () => {
    const h = quietHarness({ "group.yaml": groupYaml("v1") });
    h.dir.failures.push({ match: /CN=App-Hosts/, outcome: "transient" });
    await h.cycle(0); // fails: due in 5 s
    expect(h.condition("ADGroup", "app-hosts", "Reconciling")).toBe("True/RetryingAfterFailure");
    expect(await h.cycle(1_000)).toBe(1); // held by the gate, summarised once
    expect(await h.cycle(1_000)).toBe(0); // nothing new
    h.dir.failures.length = 0;
    await h.cycle(3_000); // due
    expect(h.dir.observed().groups.map((g) => g.samAccountName)).toEqual(["App-Hosts"]);
    expect(h.condition("ADGroup", "app-hosts", "Ready")).toBe("True/Created");
  });

  it("a write refused as stalled is tried again an hour later though nothing changed", async () => {
    const h = quietHarness({ "group.yaml": groupYaml("v1") });
    h.dir.failures.push({ match: /CN=App-Hosts/, outcome: "stalled" });
    await h.cycle(0);
    const refused = h.now.getTime();
    expect(h.condition("ADGroup", "app-hosts", "Stalled")).toBe("True/ApplyFailed");
    await h.cycle();
    expect(await h.cycle()).toBe(0);
    h.dir.failures.length = 0;
    await h.cycle(refused + STALLED_RETRY_MS - 1 - h.now.getTime());
    expect(h.dir.observed().groups).toHaveLength(0);
    await h.cycle(1);
    expect(h.dir.observed().groups.map((g) => g.samAccountName)).toEqual(["App-Hosts"]);
    expect(h.condition("ADGroup", "app-hosts", "Ready")).toBe("True/Created");
  });
});

// A change plans only what it touches: every other resource keeps its last plan entry and status
// (diff/memo.ts, republish.ts), counted in gmsa_gitops_plan_resources_total{mode}.

const appGmsaYaml = (i: number, description: string): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: app${i}
spec:
  accountName: gMSA-App${i}
  dnsHostName: app${i}.company.local
  description: ${description}
  principalsAllowedToRetrieveManagedPassword:
    - group: app-hosts
`;

describe("a change to one resource among many", () => {
  const files = (changed: string): Record<string, string> => ({
    "group.yaml": groupYaml("v1"),
    ...Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`app${i}.yaml`, appGmsaYaml(i, i === 3 ? changed : "v1")]),
    ),
  });
  const planned = async (h: ReturnType<typeof quietHarness>): Promise<{ diffed: number; reused: number }> => {
    const count = async (mode: string): Promise<number> =>
      Number((await h.metric(new RegExp(`^gmsa_gitops_plan_resources_total\\{mode="${mode}"\\}`)))[0]?.split(" ")[1]);
    return { diffed: await count("diffed"), reused: await count("reused") };
  };

  it("a one-resource commit plans and summarises only that resource, and applies it", async () => {
    const h = quietHarness(files("v1"));
    await h.cycle(0); // creates all 7
    await h.cycle(); // sees its own writes
    expect(await h.cycle()).toBe(0); // quiet
    const before = await planned(h);
    const writes = h.dir.writes.length;

    h.source.commit(files("v2"));
    expect(await h.cycle()).toBe(1);

    expect(await planned(h)).toEqual({ diffed: before.diffed + 1, reused: before.reused + 6 });
    expect(h.dir.writes.slice(writes).map((w) => [w.op, "dn" in w ? w.dn : undefined])).toEqual([
      ["modify", expect.stringContaining("CN=gMSA-App3,")],
    ]);
    expect(h.dir.observed().gmsas.find((g) => g.samAccountName === "gMSA-App3")?.description).toBe("v2");
    expect(h.condition("GroupManagedServiceAccount", "app3", "Ready")).toBe("True/DriftCorrected");
    // The others were not summarised again, yet their status says they are at the new revision.
    for (const name of ["app0", "app5"]) {
      expect(h.status("GroupManagedServiceAccount", name).lastAppliedRevision).toBe("rev-2");
      expect(h.status("GroupManagedServiceAccount", name).lastObservedAt).toBe(h.now.toISOString());
    }
    expect(h.status("ADGroup", "app-hosts").lastAppliedRevision).toBe("rev-2");
  });

  it("a hand edit of one object is corrected, planning only that resource", async () => {
    const h = quietHarness(files("v1"));
    await h.cycle(0);
    await h.cycle();
    expect(await h.cycle()).toBe(0);
    const before = await planned(h);
    const victim = h.dir.observed().gmsas.find((g) => g.samAccountName === "gMSA-App4")!;
    await h.dir.writer.modify(victim.dn, [{ operation: "replace", attribute: "description", values: ["by hand"] }]);

    expect(await h.cycle()).toBe(1);

    expect(await planned(h)).toEqual({ diffed: before.diffed + 1, reused: before.reused + 6 });
    expect(h.dir.observed().gmsas.find((g) => g.samAccountName === "gMSA-App4")?.description).toBe("v1");
    expect(h.condition("GroupManagedServiceAccount", "app4", "Ready")).toBe("True/DriftCorrected");
    expect(h.status("GroupManagedServiceAccount", "app4").corrections.count).toBe(1);
    expect(
      await h.metric(
        /^gmsa_gitops_drift_corrections_total\{kind="GroupManagedServiceAccount",drift_type="attribute"\}/,
      ),
    ).toEqual([expect.stringMatching(/ 1$/)]);
  });
});

// A new revision is fetched (git fetch, reading and parsing the changed files) while AD is read for
// the revision in force: when the new one references the same objects, that read is the one it
// needs, and commit → applied no longer pays the fetch and the read one after the other.
describe("a cycle that fetches a new revision", () => {
  /** A controller in sync with one group, quiet, its sessions traced from here on. */
  const settled = async (): Promise<{ h: ReturnType<typeof quietHarness>; trace: string[] }> => {
    const trace: string[] = [];
    const h = quietHarness({ "group.yaml": groupYaml("v1") }, undefined, trace);
    await h.cycle(0);
    await h.cycle();
    expect(await h.cycle()).toBe(0);
    trace.length = 0;
    return { h, trace };
  };
  const fetchTakes = (h: ReturnType<typeof quietHarness>, trace: string[], ms: number): void => {
    h.source.fetching = async () => {
      trace.push("fetch");
      await new Promise((resolve) => setTimeout(resolve, ms));
      trace.push("fetched");
    };
  };

  it("reads AD while the source fetches, and applies the new revision in that cycle with that read", async () => {
    const { h, trace } = await settled();
    const fullReads = await h.metric(/^gmsa_gitops_ldap_entries_read_total\{mode="full"\}/);
    fetchTakes(h, trace, 20);

    h.source.commit({ "group.yaml": groupYaml("v2") });
    expect(await h.cycle()).toBe(1);

    // One session, opened and read before the fetch ended, and closed once.
    expect(trace).toEqual(["fetch", "open", "watermark", "fetched", "close"]);
    expect(await h.metric(/^gmsa_gitops_ldap_entries_read_total\{mode="full"\}/)).toEqual(fullReads);
    expect(h.dir.observed().groups[0]!.description).toBe("v2");
    expect(h.status("ADGroup", "app-hosts").lastAppliedRevision).toBe("rev-2");
    expect(h.condition("ADGroup", "app-hosts", "Ready")).toBe("True/DriftCorrected");
  });

  it("reads AD again, in full, when the new revision references other objects", async () => {
    const { h, trace } = await settled();
    const entries = async (): Promise<number> =>
      Number((await h.metric(/^gmsa_gitops_ldap_entries_read_total\{mode="full"\}/))[0]?.split(" ")[1]);
    const before = await entries();
    fetchTakes(h, trace, 20);

    // A second group: a name the last revision did not reference.
    const second = groupYaml("v1").replace("name: app-hosts", "name: db-hosts").replace("App-Hosts", "Db-Hosts");
    h.source.commit({ "group.yaml": groupYaml("v1"), "db.yaml": second });
    expect(await h.cycle()).toBeGreaterThan(0);

    expect(trace).toEqual(["fetch", "open", "watermark", "fetched", "watermark", "close"]);
    expect(await entries()).toBeGreaterThan(before);
    expect(
      h.dir
        .observed()
        .groups.map((g) => g.samAccountName)
        .sort(),
    ).toEqual(["App-Hosts", "Db-Hosts"]);
    expect(h.condition("ADGroup", "db-hosts", "Ready")).toBe("True/Created");
  });

  it("a fetch that fails keeps the revision in force, reconciled with the read made meanwhile", async () => {
    const { h, trace } = await settled();
    const group = h.dir.observed().groups[0]!;
    await h.dir.writer.modify(group.dn, [{ operation: "replace", attribute: "description", values: ["by hand"] }]);
    h.source.fetching = async () => {
      trace.push("fetch");
      await new Promise((resolve) => setTimeout(resolve, 20));
      trace.push("failed");
      throw new Error("fetch failed: the remote hung up");
    };

    expect(await h.cycle()).toBe(1);

    expect(trace).toEqual(["fetch", "open", "watermark", "failed", "close"]);
    expect(h.controller.status().controller.source.lastFetchError).toMatch(/remote hung up/);
    expect(h.dir.observed().groups[0]!.description).toBe("v1");
    expect(h.condition("ADGroup", "app-hosts", "Ready")).toBe("True/DriftCorrected");
  });

  it("stopping during the fetch releases the session the read opened", async () => {
    const { h, trace } = await settled();
    const stop = new AbortController();
    h.source.fetching = async () => {
      trace.push("fetch");
      await new Promise((resolve) => setTimeout(resolve, 20));
      stop.abort();
      trace.push("stopped");
      throw new Error("fetch aborted");
    };

    h.advance(INTERVAL);
    await h.controller.reconcile(stop.signal);
    await new Promise((resolve) => setTimeout(resolve, 20));

    expect(h.controller.status().controller.lastReconcile).toMatchObject({ error: "interrupted: stopping" });
    expect(trace).toEqual(["fetch", "open", "watermark", "stopped", "close"]);
  });
});
