// Per-resource reuse of plans and publications (diff/memo.ts, republish.ts) must be exact: after
// every step of a random sequence of edits, to Git (descriptions, principals, members, renames,
// modes, added and removed resources) and to AD by hand (attributes, members, markers, deletions),
// with applies that sometimes fail, passwords the DC rotates and a clock that moves past KDS and
// back-off deadlines, the plan
// made with the loop's memo and the statuses and metrics published from it equal a plan made afresh
// and a publication that summarises every resource.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ParseCache, parseManifests } from "../manifests/index.ts";
import type { DesiredState } from "../manifests/index.ts";
import { createMetricsRecorder } from "../metrics/index.ts";
import type { MetricsRecorder } from "../metrics/index.ts";
import {
  computer,
  emptyDirectory,
  fakeDirectory,
  kdsObserved,
  observedGroup,
  OWNER,
  withUsns,
} from "../../test/support/reconcile.ts";
import { applyPlan } from "./apply.ts";
import type { ActionResult } from "./apply.ts";
import { DiffMemo } from "./diff/index.ts";
import { FailureGate } from "./gate.ts";
import { IncrementalObserver } from "./incremental.ts";
import type { ChangeReader } from "./incremental.ts";
import type { Plan } from "./model.ts";
import type { PassResult } from "./pass.ts";
import { planDirectory } from "./plan.ts";
import type { Policy } from "./plan.ts";
import { CyclePublisher } from "./publish.ts";
import { Backoff } from "./schedule.ts";
import { StatusStore } from "./status.ts";
import { scrapeText } from "../../test/support/metrics.ts";

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const POLICY: Policy = { mode: "enforce", prune: true, deletionBudget: 3, adopt: false, owner: OWNER };
const COMPUTERS = Array.from({ length: 12 }, (_, i) => `SRV${i}`);

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface GroupDoc {
  account: string;
  description: string;
  members: string[];
}
interface GmsaDoc {
  account: string;
  description: string;
  readers: string[];
  observe: boolean;
  spns: string[];
}

const groupYaml = (name: string, g: GroupDoc): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: ${name}
spec:
  accountName: ${g.account}
  description: ${g.description}
  membership: exact
  members:
${g.members.map((m) => `    - computer: ${m}`).join("\n") || "    []"}
`;

const gmsaYaml = (name: string, g: GmsaDoc): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: ${name}
spec:
  accountName: ${g.account}
  dnsHostName: ${name}.company.local
  description: ${g.description}
${g.observe ? "  mode: Observe\n" : ""}${g.spns.length > 0 ? `  servicePrincipalNames: [${g.spns.join(", ")}]\n` : ""}  principalsAllowedToRetrieveManagedPassword:
${g.readers.map((r) => (r.startsWith("ext:") ? `    - externalGroup: ${r.slice(4)}` : r.startsWith("pc:") ? `    - computer: ${r.slice(3)}` : `    - group: ${r}`)).join("\n")}
`;

/** Two publications of the same cycles: one reusing what it can, one summarising every resource. */
function publications() {
  const reusing = { statuses: new StatusStore(), metrics: createMetricsRecorder() };
  const fresh = { statuses: new StatusStore(), metrics: createMetricsRecorder() };
  const publisher = new CyclePublisher(reusing.statuses, reusing.metrics, silent);
  const gates = { reusing: new FailureGate(new Backoff(() => 0.5)), fresh: new FailureGate(new Backoff(() => 0.5)) };
  const publish = (
    side: { statuses: StatusStore; metrics: MetricsRecorder },
    by: CyclePublisher,
    gate: FailureGate,
    desired: DesiredState,
    pass: PassResult,
    now: Date,
    revision: string,
  ) =>
    by.cycle({
      desired,
      pass,
      revision,
      now,
      executed: true,
      enforce: true,
      hostTransport: false,
      remember: (entry, attempts) => gate.remember(entry, attempts, now.getTime(), revision),
    });
  return { reusing, fresh, publisher, gates, publish };
}

async function run(seed: number, steps: number): Promise<{ diffed: number; reused: number }> {
  const random = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  let now = new Date("2026-01-01T00:00:00Z");
  // The forest's key becomes effective a few hours in: gMSAs wait, then are created.
  const dir = fakeDirectory(
    emptyDirectory(now, {
      computers: COMPUTERS.map(computer),
      kdsRootKeys: [kdsObserved(now, 7)],
      groups: [observedGroup("Tier1-Servers", [], { adminDescription: undefined, managed: false })],
    }),
  );
  const open = withUsns(dir.open, dir.observed);
  const observer = new IncrementalObserver(86_400_000);
  const scope = { baseDn: emptyDirectory(now).baseDn, configDn: emptyDirectory(now).configDn };

  const groups = new Map<string, GroupDoc>();
  const gmsas = new Map<string, GmsaDoc>();
  for (let i = 0; i < 40; i++)
    groups.set(`hosts${i}`, {
      account: `Hosts-${i}`,
      description: "v0",
      members: [pick(COMPUTERS), pick(COMPUTERS)].filter((m, k, all) => all.indexOf(m) === k),
    });
  let nextGmsa = 0;
  const newGmsa = (): void => {
    const i = nextGmsa++;
    gmsas.set(`svc${i}`, {
      account: `Svc-${i}`,
      description: "v0",
      readers: [pick([...groups.keys()]), ...(random() < 0.1 ? ["ext:Tier1-Servers"] : [])],
      observe: random() < 0.05,
      spns: random() < 0.2 ? [`HTTP/svc${i}.company.local`] : [],
    });
  };
  for (let i = 0; i < 200; i++) newGmsa();

  // Several resources a file, as a team lays a repository out: an edit re-parses its neighbours.
  const files = () => {
    const out: { path: string; content: Uint8Array }[] = [];
    const chunk = (prefix: string, docs: string[]): void => {
      for (let i = 0; i < docs.length; i += 4)
        out.push({
          path: `${prefix}-${i / 4}.yaml`,
          content: new TextEncoder().encode(docs.slice(i, i + 4).join("---\n")),
        });
    };
    chunk(
      "groups/g",
      [...groups].map(([n, g]) => groupYaml(n, g)),
    );
    chunk(
      "apps/a",
      [...gmsas].map(([n, g]) => gmsaYaml(n, g)),
    );
    return out;
  };
  const cache = new ParseCache();
  const memo = new DiffMemo();
  const sides = publications();
  let revision = 0;
  let desired: DesiredState | undefined;
  let counted = { diffed: 0, reused: 0 };

  for (let step = 0; step < steps; step++) {
    // Git: one to three edits, some steps none.
    const gitEdits = step === 0 ? 0 : Math.floor(random() * 4);
    for (let e = 0; e < gitEdits; e++) {
      const r = random();
      const [name, g] = pick([...gmsas]);
      const [groupName, group] = pick([...groups]);
      if (r < 0.25) g.description = `v${step}`;
      else if (r < 0.4) g.readers = [pick([...groups.keys()])];
      else if (r < 0.45) g.observe = !g.observe;
      else if (r < 0.55) gmsas.delete(name);
      else if (r < 0.65) newGmsa();
      else if (r < 0.8) group.members = [pick(COMPUTERS)];
      else if (r < 0.85) group.account = `Hosts-${groupName.slice(5)}-r${step}`;
      else if (r < 0.9) g.spns = [`HTTP/${name}.company.local`];
      else group.description = `v${step}`;
    }
    const loaded = parseManifests(files(), {}, [], cache);
    if (!loaded.ok) throw new Error(`generated revision is invalid: ${JSON.stringify(loaded.errors.slice(0, 3))}`);
    if (desired === undefined || gitEdits > 0) revision++;
    desired = loaded.desired;

    // AD by hand: none to two edits.
    const handEdits = step < 2 ? 0 : Math.floor(random() * 3);
    for (let e = 0; e < handEdits; e++) {
      const state = dir.observed();
      const r = random();
      const objects = [...state.gmsas, ...state.groups.filter((g) => g.managed)];
      if (objects.length === 0) break;
      const o = pick(objects);
      if (r < 0.4)
        await dir.writer.modify(o.dn, [{ operation: "replace", attribute: "description", values: ["hand"] }]);
      else if (r < 0.55 && "members" in o && o.members.length > 0)
        await dir.writer.removeMembers(o.dn, [o.members[0]!]);
      else if (r < 0.7) await dir.writer.delete(o.dn);
      else if (r < 0.8)
        await dir.writer.modify(o.dn, [{ operation: "replace", attribute: "adminDescription", values: ["someone"] }]);
      else await dir.writer.modify(o.dn, [{ operation: "replace", attribute: "description", values: ["v0"] }]);
    }

    now = new Date(now.getTime() + Math.floor(random() * 3) * 3_600_000 + Math.floor(random() * 60_000));
    const session = await open();
    const { observed } = await observer.observe(desired, session as unknown as ChangeReader, scope, now.getTime());

    const reusing = sides.gates.reusing.hold(
      planDirectory(desired, observed, POLICY, now, memo),
      now.getTime(),
      `r${revision}`,
    );
    const fresh = sides.gates.fresh.hold(planDirectory(desired, observed, POLICY, now), now.getTime(), `r${revision}`);
    expect(reusing, `seed ${seed} step ${step}: plan`).toEqual(fresh);
    const [diffed, reused] = memo.counted();
    counted = { diffed: counted.diffed + diffed, reused: counted.reused + reused };

    // Apply (most steps), some writes failing, transiently or for good.
    let results: readonly ActionResult[] = [];
    if (random() < 0.7) {
      dir.failures.length = 0;
      if (random() < 0.3)
        dir.failures.push({
          match: new RegExp(`CN=Svc-${Math.floor(random() * nextGmsa)},`),
          outcome: random() < 0.5 ? "transient" : "stalled",
        });
      results = (await applyPlan(reusing, dir.writer, { now, owner: OWNER })).results;
    }
    // The DC generates a new gMSA's password, and rotates one now and then.
    for (const g of dir.observed().gmsas) {
      const rotated = g as { pwdLastSet?: Date };
      if (rotated.pwdLastSet === undefined || random() < 0.02) rotated.pwdLastSet = new Date(now);
    }
    const pass = (plan: Plan): PassResult => ({
      observed,
      plan,
      results,
      aborted: false,
      hosts: undefined,
      afterApply: undefined,
    });
    const a = sides.publish(
      sides.reusing,
      sides.publisher,
      sides.gates.reusing,
      desired,
      pass(reusing),
      now,
      `r${revision}`,
    );
    // A new publisher each cycle over the same store and metrics: it remembers nothing, so it summarises every resource.
    const b = sides.publish(
      sides.fresh,
      new CyclePublisher(sides.fresh.statuses, sides.fresh.metrics, silent),
      sides.gates.fresh,
      desired,
      pass(fresh),
      now,
      `r${revision}`,
    );
    expect(a, `seed ${seed} step ${step}: published`).toEqual(b);
    expect(sides.reusing.statuses.all(), `seed ${seed} step ${step}: statuses`).toEqual(sides.fresh.statuses.all());
    expect(await scrapeText(sides.reusing.metrics), `seed ${seed} step ${step}: metrics`).toEqual(
      await scrapeText(sides.fresh.metrics),
    );
  }
  return counted;
}

describe("plans and publications reused per resource", () => {
  // The password countdown is evaluated at scrape time: both scrapes of a step at the same time.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-06-01T00:00:00Z"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([1, 2, 3, 4])(
    "equal a fresh plan and a full publication after every random edit (seed %i)",
    async (seed) => {
      const { diffed, reused } = await run(seed, 30);
      // The point of it: most resources were reused, and some were diffed.
      expect(reused).toBeGreaterThan(diffed);
      expect(diffed).toBeGreaterThan(0);
      // Two plans and two publications of 240 resources, 30 times: seconds on a busy machine.
    },
    60_000,
  );
});
