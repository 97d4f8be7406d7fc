// Two replicas, one leader: the lease in AD on the PDC emulator, against one real Samba DC, with
// the real CLI as child processes. Each process reaches the DC through its own forwarder, so one
// of them can be cut off from the DC (the forwarder stopped) while the other still reaches it.
// AD is checked through ldapsearch (uSNChanged, description), leadership through /api/status and
// the processes' JSON log lines.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectPdc, leaseOpener } from "../controller/clients.ts";
import { connectDirectory } from "../controller/directory/index.ts";
import { LeaderElector } from "../controller/reconcile/leader.ts";
import type { DirectoryConfig } from "../controller/config/index.ts";
import { createGitRepo } from "./harness/git-repo.ts";
import { startDc } from "./harness/samba.ts";
import { dcCommand } from "./support/cli.ts";
import { runPromtool } from "./support/promtool.ts";
import { attr, directoryConfig } from "./support/directory.ts";
import type { Dc } from "./harness/samba.ts";

const root = join(import.meta.dirname, "..");
const node = join(root, "node_modules", "node", "bin", "node");
const cliEntry = join(root, "bin", "gmsa-gitops.mjs");
const forwardScript = join(import.meta.dirname, "harness", "forward.ts");
const LEASE_MS = 10_000;
const CLI_WAIT_MS = 120_000;
const SERVICE1 = "service1/account.yaml";
const SERVICE1_DN = (base: string): string => `CN=MSA-service1,CN=Managed Service Accounts,${base}`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

interface LogLine {
  time: number;
  msg: string;
  [field: string]: unknown;
}

interface Leader {
  replicaId: string;
  leader: boolean;
  holder: string | null;
  server: string | null;
  message: string | null;
}

describe("two replicas, one leader, against Samba", () => {
  let dc: Dc;
  const cleanups: (() => Promise<void> | void)[] = [];
  const defer = (fn: () => Promise<void> | void): void => void cleanups.push(fn);

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Host-Pass-${host}-1!`);
  }, 180_000);
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  afterAll(async () => {
    await dc?.stop();
  });

  const directory = (): DirectoryConfig => directoryConfig(dc);

  it("finds the PDC emulator through the domain's fSMORoleOwner, and the lease is a compare-and-swap", async () => {
    const { dir, pdc, baseDn } = await connectPdc(directory());
    await dir.close();
    // Read independently: the role owner on the domain object and the DC's own rootDSE.
    const owner = attr(await dc.ldap("ldapsearch", ["-b", dc.baseDn, "-s", "base", "fSMORoleOwner"]), "fSMORoleOwner");
    const dse = await dc.ldap("ldapsearch", ["-b", "", "-s", "base", "dsServiceName", "dnsHostName"]);
    expect(baseDn).toBe(dc.baseDn);
    expect(pdc.ntdsSettingsDn).toBe(owner[0]);
    expect(pdc.ntdsSettingsDn).toBe(attr(dse, "dsServiceName")[0]);
    expect(pdc.dnsHostName.toLowerCase()).toBe(attr(dse, "dnsHostName")[0]!.toLowerCase());
    expect(pdc.connected).toBe(true);

    const leaseDn = `CN=cas-test,CN=Managed Service Accounts,${dc.baseDn}`;
    const a = await leaseOpener(directory(), leaseDn, LEASE_MS)();
    const b = await leaseOpener(directory(), leaseDn, LEASE_MS)();
    try {
      expect(a.server).toBe(pdc.dnsHostName);
      expect(await a.read()).toBeUndefined();
      expect(await a.create("v0")).toBe(true);
      expect(await b.create("v0-b")).toBe(false);
      // Both saw v0; only the first swap from it wins, the second gets noSuchAttribute.
      expect(await a.swap(["v0"], "v1-a")).toBe(true);
      expect(await b.swap(["v0"], "v1-b")).toBe(false);
      expect(await b.read()).toEqual(["v1-a"]);
      expect(attr(await dc.ldap("ldapsearch", ["-b", leaseDn, "-s", "base", "description"]), "description")).toEqual([
        "v1-a",
      ]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  /** A forwarder of its own for one process: stopping it cuts that process off from the DC. */
  async function forwarder(): Promise<{ url: string; child: ChildProcess }> {
    const dir = mkdtempSync(join(tmpdir(), "gmsa-fwd-"));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const portFile = join(dir, "port");
    const child = spawn(process.execPath, [forwardScript, "tcp-to-unix", join(dc.dir, "ldaps.sock"), portFile], {
      stdio: "ignore",
    });
    defer(() => {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    });
    const port = await waitFor(
      "the forwarder's port",
      () => (existsSync(portFile) ? readFileSync(portFile, "utf8") : undefined),
      30_000,
    );
    return { url: `ldaps://127.0.0.1:${port}`, child };
  }

  type Replica = ReturnType<typeof replica>;

  it("a lease value cleared or doubled by hand: nobody writes for a lease duration, then one replica leads again", async () => {
    const leaseDn = `CN=repair-test,CN=Managed Service Accounts,${dc.baseDn}`;
    const durationMs = 2_000;
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const electors = ["repair-a", "repair-b"].map(
      (replicaId) =>
        new LeaderElector({
          open: leaseOpener(directory(), leaseDn, durationMs),
          replicaId,
          durationMs,
          logger: quiet,
        }),
    );
    defer(async () => {
      for (const e of electors) await e.stop();
    });
    const [a, b] = electors as [LeaderElector, LeaderElector];
    // Two writers at once, sampled every 5 ms for as long as the test runs.
    let both = 0;
    const sampler = setInterval(() => (both += a.canWrite() && b.canWrite() ? 1 : 0), 5);
    defer(() => clearInterval(sampler));
    const leading = (): Promise<LeaderElector> =>
      waitFor("a replica to lead", () => electors.find((e) => e.canWrite()), 8 * durationMs);
    const values = async (): Promise<string[]> =>
      attr(await dc.ldap("ldapsearch", ["-b", leaseDn, "-s", "base", "description"]), "description");
    const edit = (lines: string[]): Promise<string> =>
      dc.ldap("ldapmodify", [], { input: [`dn: ${leaseDn}`, "changetype: modify", ...lines, ""].join("\n") });

    a.start();
    b.start();
    const first = await leading();
    expect((await values()).length).toBe(1);

    // Cleared by hand: the leader's next renew finds its value gone and steps down; a new lease
    // is put back and taken again. Never two writers (checked below, sampled all along).
    expect(first.status().leader).toBe(true);
    await edit(["delete: description"]);
    const repaired = await waitFor(
      "the lease put back",
      async () => ((await values()).some((v) => v.includes('"holder":""')) ? Date.now() : undefined),
      4 * durationMs,
    );
    const held = await waitFor(
      "the lease taken again",
      async () => {
        const now = await values();
        return now.length === 1 && !now[0]!.includes('"holder":""') ? now : undefined;
      },
      8 * durationMs,
    );
    expect(Date.now()).toBeGreaterThan(repaired);
    const second = electors.find((e) => held[0]!.includes(`"holder":"${e.status().replicaId}"`))!;
    await waitFor("the new holder to write", () => (second.canWrite() ? true : undefined), 4 * durationMs);

    // A second value added by hand beside the leader's, then the leader stops (its release keeps
    // the stranger): the other replica takes the lease after a lease duration, one value again.
    await edit(["add: description", "description: added by hand"]);
    await second.stop();
    expect(await values()).toHaveLength(2);
    const other = electors.find((e) => e !== second)!;
    await waitFor("the other replica to lead", () => (other.canWrite() ? true : undefined), 8 * durationMs);
    const after = await values();
    expect(after).toHaveLength(1);
    expect(after[0]).toContain(`"holder":"${other.status().replicaId}"`);
    expect(both).toBe(0);
  });

  it("a connect cancelled while the DC does not answer the TLS handshake returns at once", async () => {
    // A stopped forwarder accepts the TCP connection (the kernel does) and then says nothing:
    // what a partition looks like to the step-down that cancels the cycle in flight.
    const fwd = await forwarder();
    fwd.child.kill("SIGSTOP");
    const started = Date.now();
    const connecting = connectDirectory(
      { url: fwd.url, bindDn: dc.adminDn, bindPassword: dc.adminPassword, caFile: dc.caFile, timeoutMs: 120_000 },
      AbortSignal.timeout(500),
    );
    await expect(connecting).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  const webhookSecret = randomBytes(24).toString("hex");

  function replica(id: string, ldapUrl: string, gitUrl: string, extra: readonly string[] = []) {
    const work = mkdtempSync(join(tmpdir(), "gmsa-replica-"));
    defer(() => rmSync(work, { recursive: true, force: true }));
    writeFileSync(join(work, "webhook-secret"), webhookSecret, { mode: 0o600 });
    const child = spawn(
      node,
      [
        cliEntry,
        "run",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
        "--ldap-url",
        ldapUrl,
        "--bind-dn",
        dc.adminDn,
        "--bind-password-file",
        dc.passwordFile,
        "--ca-file",
        dc.caFile,
        "--ownership-key-file",
        dc.ownershipKeyFile,
        "--git-url",
        gitUrl,
        "--work-dir",
        join(work, "clone"),
        "--interval",
        "2s",
        "--ldap-timeout",
        "5s",
        "--leader-election",
        "--lease-duration",
        `${LEASE_MS / 1000}s`,
        "--replica-id",
        id,
        "--webhook-secret-file",
        join(work, "webhook-secret"),
        ...extra,
      ],
      { cwd: root, env: { PATH: process.env["PATH"], HOME: tmpdir() }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    defer(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    });
    const lines = (): LogLine[] =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as LogLine);
    let url: string | undefined;
    const leader = async (): Promise<Leader> => {
      url ??= lines().find((l) => l.msg === "controller started")?.["url"] as string | undefined;
      if (url === undefined) throw new Error("not started");
      const body = (await (await fetch(`${url}/api/status`)).json()) as { controller: { leader: Leader } };
      return body.controller.leader;
    };
    const scrape = async (): Promise<string> => (await fetch(`${url!}/metrics`)).text();
    /** A signed push webhook, as the Git host sends it. */
    const hook = async (): Promise<{ status: number; body: string }> => {
      const body = JSON.stringify({ ref: "refs/heads/main" });
      const signature = `sha256=${createHmac("sha256", webhookSecret).update(body).digest("hex")}`;
      const res = await fetch(`${url!}/hooks/git`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Hub-Signature-256": signature },
        body,
      });
      return { status: res.status, body: await res.text() };
    };
    return { id, child, lines, leader, scrape, hook, out: () => out, url: () => url };
  }

  const description = async (): Promise<string | undefined> =>
    attr(await dc.ldap("ldapsearch", ["-b", SERVICE1_DN(dc.baseDn), "-s", "base", "description"]), "description")[0];
  const usnChanged = async (): Promise<number> =>
    Number(
      attr(await dc.ldap("ldapsearch", ["-b", SERVICE1_DN(dc.baseDn), "-s", "base", "uSNChanged"]), "uSNChanged")[0],
    );
  /** Waits until `follower` reports `leader` as the holder and does not lead itself. */
  const following = (follower: Replica, leader: Replica): Promise<Leader> =>
    waitFor(
      `${follower.id} to follow ${leader.id}`,
      async () => {
        const s = await follower.leader();
        return s.holder === leader.id && !s.leader ? s : undefined;
      },
      CLI_WAIT_MS,
    );
  const applied = (r: { lines: () => LogLine[] }): LogLine[] => r.lines().filter((l) => l.msg === "applied");
  const gauge = (text: string, name: string): number | undefined => {
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : undefined;
  };

  it("one writes, a partitioned leader steps down, a killed one is replaced within two lease durations", async () => {
    const repo = createGitRepo({ from: join(root, "examples") });
    defer(() => repo.remove());
    const fa = await forwarder();
    const fb = await forwarder();
    const a = replica("replica-a", fa.url, repo.url);
    const b = replica("replica-b", fb.url, repo.url);
    const both = [a, b];

    // 1. One leader; it creates the examples, the other never writes.
    const first = await waitFor(
      "one replica leading and the examples applied",
      async () => {
        const states = await Promise.all(both.map((r) => r.leader()));
        const leading = both.filter((_, i) => states[i]!.leader);
        return leading.length === 1 && (await description()) !== undefined ? leading[0] : undefined;
      },
      CLI_WAIT_MS,
    );
    const second = first === a ? b : a;
    const firstFwd = first === a ? fa : fb;
    await following(second, first);
    expect(applied(first).length).toBeGreaterThan(0);
    expect(applied(second)).toEqual([]);
    expect(gauge(await first.scrape(), "gmsa_gitops_leader")).toBe(1);
    expect(gauge(await second.scrape(), "gmsa_gitops_leader")).toBe(0);
    // A webhook that reaches the follower: it says who leads and triggers nothing there (it could
    // only observe); the leader picks the commit up by its poll.
    repo.replace(SERVICE1, "Service1 batch jobs and Windows service", "Announced to the follower");
    repo.commit("change announced to the follower only");
    const toFollower = await second.hook();
    expect(toFollower.status).toBe(202);
    expect(toFollower.body).toContain(`not the leader; the leader is ${first.id}`);
    await waitFor(
      "the leader to apply the commit by its poll",
      async () => ((await description()) === "Announced to the follower" ? true : undefined),
      CLI_WAIT_MS,
    );
    expect(second.lines().filter((l) => l.msg === "webhook: reconcile now")).toEqual([]);
    expect(second.lines().filter((l) => l.msg === "webhook not acted on")).toHaveLength(1);
    expect(applied(second)).toEqual([]);
    expect(await first.hook()).toEqual({ status: 202, body: "accepted\n" });
    // Steady state: nobody writes the gMSA again (two writers would fight or repeat).
    const settled = await usnChanged();
    await sleep(3 * 2_000);
    expect(await usnChanged()).toBe(settled);

    // 2. Cut the leader off from the DC: it stops leading, the other takes over and applies a commit.
    firstFwd.child.kill("SIGSTOP");
    const cut = Date.now();
    const steppedDown = await waitFor(
      "the cut-off leader to step down",
      // On a loaded machine a renew can time out before the cut too: the step-down that counts is the one after it.
      () => first.lines().find((l) => l.msg === "leader election: stepped down" && l.time >= cut),
      3 * LEASE_MS,
    );
    const tookOver = await waitFor(
      "the other replica to lead",
      () => second.lines().find((l) => l.msg === "leader election: this replica leads" && l.time >= cut),
      3 * LEASE_MS,
    );
    // Never two writers: the old leader stopped before the new one started.
    expect(steppedDown.time).toBeLessThan(tookOver.time);
    expect(steppedDown.time - cut).toBeLessThanOrEqual(LEASE_MS);
    repo.replace(SERVICE1, "Announced to the follower", "Changed after the partition");
    repo.commit("change after the partition");
    await waitFor(
      "the new leader to apply the commit",
      async () => ((await description()) === "Changed after the partition" ? true : undefined),
      CLI_WAIT_MS,
    );
    expect(applied(second).length).toBeGreaterThan(0);
    expect(applied(first).filter((l) => l.time >= steppedDown.time)).toEqual([]);
    expect(applied(second).every((l) => l.time >= tookOver.time)).toBe(true);

    // 3. Reconnect the old leader (it stays a follower), then SIGKILL the leader.
    firstFwd.child.kill("SIGCONT");
    await following(first, second);
    const usnBeforeKill = await usnChanged();
    second.child.kill("SIGKILL");
    const killed = Date.now();
    repo.replace(SERVICE1, "Changed after the partition", "Changed after the kill");
    repo.commit("change after the kill");
    await waitFor(
      "the survivor to apply the commit",
      async () => ((await description()) === "Changed after the kill" ? true : undefined),
      2 * LEASE_MS + 5_000,
    ).catch(async (error: unknown) => {
      // What the survivor did meanwhile, to tell a slow takeover from a missed change.
      const last = JSON.stringify(first.lines().slice(-12));
      const state = await (await fetch(`${first.url()!}/api/status`)).text();
      throw new Error(`${String(error)}; survivor's last log lines: ${last}; its status: ${state.slice(0, 6000)}`);
    });
    const took = Date.now() - killed;
    expect(took).toBeLessThanOrEqual(2 * LEASE_MS);
    expect(await usnChanged()).toBeGreaterThan(usnBeforeKill);
    expect((await first.leader()).leader).toBe(true);
    const text = await first.scrape();
    expect(gauge(text, "gmsa_gitops_leader")).toBe(1);
    // Cycles between full reads ask AD only for what changed (the full read is hourly by default).
    const read = (mode: string): number =>
      Number(new RegExp(`^gmsa_gitops_ldap_entries_read_total\\{mode="${mode}"\\} (\\S+)$`, "m").exec(text)?.[1]);
    expect(read("full")).toBeGreaterThan(0);
    // Every incremental read counts at least the KDS root keys, which it always reads.
    expect(read("incremental")).toBeGreaterThan(0);
    expect(text).toMatch(/^gmsa_gitops_leader_transitions_total\{to="leader"\} 2$/m);

    // The lease object is no managed object: a pruning plan of a repository without the reports
    // application deletes its gMSA, never the lease, which stays in AD.
    const pruneRepo = mkdtempSync(join(tmpdir(), "gmsa-prune-"));
    defer(() => rmSync(pruneRepo, { recursive: true, force: true }));
    cpSync(join(root, "examples"), pruneRepo, { recursive: true });
    rmSync(join(pruneRepo, "reports"), { recursive: true });
    const plan = await dcCommand(dc, "plan", pruneRepo, "--prune", "--deletion-budget", "100");
    expect(plan.stdout).toMatch(/- GroupManagedServiceAccount\/gmsa-reports/i);
    expect(plan.stdout).not.toMatch(/gmsa-gitops-leader/i);
    const leaseDn = `CN=gmsa-gitops-leader,CN=Managed Service Accounts,${dc.baseDn}`;
    expect(attr(await dc.ldap("ldapsearch", ["-b", leaseDn, "-s", "base", "description"]), "description")).toHaveLength(
      1,
    );
  }, 420_000);

  /** `count` gMSAs BULK-000.. in one file, all with `description`: a large commit. */
  const bulk = (count: number, description: string): string =>
    Array.from({ length: count }, (_, i) => {
      const n = String(i).padStart(3, "0");
      return [
        "apiVersion: gmsa-gitops.io/v1alpha1",
        "kind: GroupManagedServiceAccount",
        "metadata:",
        `  name: bulk-${n}`,
        "spec:",
        `  accountName: BULK-${n}`,
        `  dnsHostName: bulk-${n}.company.local`,
        `  description: ${description}`,
        "  kerberosEncryptionTypes: [AES256]",
        "  managedPasswordIntervalInDays: 30",
        "  principalsAllowedToRetrieveManagedPassword:",
        "    - group: gmsa-service1-hosts",
      ].join("\n");
    }).join("\n---\n");
  /** The BULK gMSAs in AD, as ldapsearch sees them. */
  const bulkObjects = async (): Promise<
    { sam: string; description: string; usnCreated: number; usnChanged: number }[]
  > => {
    const out = await dc.ldap("ldapsearch", [
      "-b",
      dc.baseDn,
      "(sAMAccountName=BULK-*)",
      "sAMAccountName",
      "description",
      "uSNCreated",
      "uSNChanged",
    ]);
    return out
      .split("\n\n")
      .filter((e) => e.includes("sAMAccountName: "))
      .map((e) => ({
        sam: attr(e, "sAMAccountName")[0]!.replace(/\$$/, ""),
        description: attr(e, "description")[0] ?? "",
        usnCreated: Number(attr(e, "uSNCreated")[0]),
        usnChanged: Number(attr(e, "uSNChanged")[0]),
      }));
  };
  /** When each replica led, from its own log lines: [took the lease, stepped down or still leading]. */
  const terms = (r: Replica): [number, number][] => {
    const out: [number, number][] = [];
    for (const l of r.lines()) {
      if (l.msg === "leader election: this replica leads") out.push([l.time, Infinity]);
      if (l.msg === "leader election: stepped down" && out.length > 0 && out.at(-1)![1] === Infinity)
        out.at(-1)![1] = l.time;
    }
    return out;
  };
  /**
   * Terms of different replicas that overlap after `since`: two writers at once. Only for
   * replicas alive and running throughout (a killed or frozen one logs no step-down in time).
   */
  const overlapping = (since: number, ...replicas: Replica[]): string[] => {
    const all = replicas.flatMap((r) =>
      terms(r)
        .filter(([, to]) => to > since)
        .map(([from, to]) => ({ id: r.id, from, to })),
    );
    return all.flatMap((x) =>
      all.filter((y) => y.id < x.id && x.from < y.to && y.from < x.to).map((y) => `${y.id} and ${x.id}`),
    );
  };
  it("a leader killed, then one frozen, in the middle of a large commit: the survivor finishes it, never two writers", async () => {
    const COUNT = 80;
    const repo = createGitRepo({ from: join(root, "examples") });
    defer(() => repo.remove());
    // A leader killed between creating a gMSA and writing its ownership marker leaves it
    // unmarked: without --adopt the survivor leaves it alone (NotOwned) and never finishes.
    const a = replica("trial-a", dc.url, repo.url, ["--adopt"]);
    const b = replica("trial-b", dc.url, repo.url, ["--adopt"]);
    const first = await waitFor(
      "one replica leading and the examples applied",
      async () => {
        const states = await Promise.all([a, b].map((r) => r.leader()));
        const leading = [a, b].filter((_, i) => states[i]!.leader);
        return leading.length === 1 && (await description()) !== undefined ? leading[0] : undefined;
      },
      CLI_WAIT_MS,
    );
    const second = first === a ? b : a;
    await following(second, first);
    const figures: Record<string, number> = {};
    /** Waits until the leader has done some of a commit's COUNT changes, not all; returns how many. */
    const partWay = (what: string, done: () => Promise<number>): Promise<number> =>
      waitFor(
        `the leader part-way through ${what}`,
        async () => {
          const n = await done();
          return n >= 3 && n < COUNT ? n : undefined;
        },
        CLI_WAIT_MS,
      );

    // 1. A commit of COUNT new gMSAs; the leader is SIGKILLed part-way through.
    repo.write("bulk/accounts.yaml", bulk(COUNT, "bulk v1"));
    repo.commit("bulk gMSAs");
    figures["created when killed"] = await partWay("the commit", async () => (await bulkObjects()).length);
    first.child.kill("SIGKILL");
    const killed = Date.now();
    await waitFor(
      "the survivor to finish the commit",
      async () => ((await bulkObjects()).length === COUNT ? true : undefined),
      CLI_WAIT_MS,
    );
    figures["kill to commit finished (ms)"] = Date.now() - killed;
    // Never two writers: every gMSA the survivor created has a higher USN than every one the
    // killed leader created (its log names them; one more may have been on the wire, unlogged).
    const created = (r: Replica): Set<string> =>
      new Set(
        applied(r).flatMap((l) =>
          String(l["resource"]).startsWith("bulk-") && l["action"] === "create-gmsa" ? [String(l["resource"])] : [],
        ),
      );
    const byFirst = created(first);
    const bySecond = created(second);
    const objects = await bulkObjects();
    const usnOf = (names: Set<string>): number[] =>
      objects.filter((o) => names.has(o.sam.toLowerCase())).map((o) => o.usnCreated);
    expect(byFirst.size).toBeGreaterThan(0);
    expect(Math.max(...usnOf(byFirst))).toBeLessThan(Math.min(...usnOf(bySecond)));
    expect(byFirst.size + bySecond.size).toBeGreaterThanOrEqual(COUNT - 1);
    expect([...byFirst].filter((n) => bySecond.has(n))).toEqual([]);
    expect(second.lines().filter((l) => l.msg === "action not applied")).toEqual([]);
    expect(applied(second).every((l) => l.time > killed)).toBe(true);

    // 2. The killed replica restarted: it follows. A commit changing every description; the
    // leader is frozen (SIGSTOP) part-way through and the restarted one takes over.
    const third = replica("trial-a2", dc.url, repo.url, ["--adopt"]);
    await following(third, second);
    repo.write("bulk/accounts.yaml", bulk(COUNT, "bulk v2"));
    repo.commit("bulk descriptions v2");
    figures["changed when frozen"] = await partWay(
      "the second commit",
      async () => (await bulkObjects()).filter((o) => o.description === "bulk v2").length,
    );
    second.child.kill("SIGSTOP");
    const frozen = Date.now();
    await waitFor(
      "the new leader to finish the second commit",
      async () => ((await bulkObjects()).every((o) => o.description === "bulk v2") ? true : undefined),
      CLI_WAIT_MS,
    ).catch(async (error: unknown) => {
      const left = (await bulkObjects()).filter((o) => o.description !== "bulk v2");
      const names = new Set(left.map((o) => o.sam.toLowerCase()));
      const about = (r: Replica): string => JSON.stringify(r.lines().filter((l) => names.has(String(l["resource"]))));
      const status = (await (await fetch(`${third.url()!}/api/status`)).json()) as {
        resources: { name: string }[];
      };
      throw new Error(
        `${String(error)}; left: ${JSON.stringify(left)}; new leader on them: ${about(third)}; frozen on them: ${about(second)}; status: ${JSON.stringify(status.resources.filter((x) => names.has(x.name)))}; leader lines: ${JSON.stringify(third.lines().filter((l) => String(l.msg).startsWith("leader") || String(l.msg).includes("full read")))}`,
      );
    });
    figures["freeze to commit finished (ms)"] = Date.now() - frozen;
    // A third commit, applied while the frozen leader still holds its revision-2 work in memory.
    repo.write("bulk/accounts.yaml", bulk(COUNT, "bulk v3"));
    repo.commit("bulk descriptions v3");
    await waitFor(
      "the new leader to apply the third commit",
      async () => ((await bulkObjects()).every((o) => o.description === "bulk v3") ? true : undefined),
      CLI_WAIT_MS,
    );
    const settled = Math.max(...(await bulkObjects()).map((o) => o.usnChanged));
    second.child.kill("SIGCONT");
    const woke = Date.now();
    await following(second, third);
    await sleep(4 * 2_000);
    // The woken leader wrote nothing: AD unchanged since, every description still the third commit's.
    const after = await bulkObjects();
    expect(after.every((o) => o.description === "bulk v3")).toBe(true);
    expect(Math.max(...after.map((o) => o.usnChanged))).toBe(settled);
    // No write begun after it woke. A write in flight when it was frozen is logged only once it
    // runs again (its durationMs then spans the freeze); the DC had applied it before, as the
    // USNs above show.
    expect(applied(second).filter((l) => l.time - Number(l["durationMs"] ?? 0) >= woke)).toEqual([]);

    // 3. The lease object deleted by hand, then overwritten with a value naming the follower:
    // leadership may pause for a lease duration, never overlap.
    const leaseDn = `CN=gmsa-gitops-leader,CN=Managed Service Accounts,${dc.baseDn}`;
    await dc.ldap("ldapdelete", [leaseDn]);
    const deleted = Date.now();
    /** The replica that took the lease after `since`, by its log. */
    const tookAfter = (since: number, what: string): Promise<Replica> =>
      waitFor(
        what,
        () =>
          [second, third].find((r) =>
            r.lines().some((l) => l.msg === "leader election: this replica leads" && l.time >= since),
          ),
        CLI_WAIT_MS,
      );
    let leading = await tookAfter(deleted, "a leader after the lease object was deleted");
    figures["lease deleted to a leader again (ms)"] = Date.now() - deleted;
    const follower = leading === second ? third : second;
    await following(follower, leading);
    const forged = `gmsa-gitops-lease ${JSON.stringify({ holder: follower.id, renewTime: new Date().toISOString(), durationSeconds: LEASE_MS / 1000, transitions: 99 })}`;
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${leaseDn}\nchangetype: modify\nreplace: description\ndescription: ${forged}\n-\n`,
    });
    const forgedAt = Date.now();
    leading = await tookAfter(forgedAt, "a leader after the forged value");
    figures["forged lease to a leader again (ms)"] = Date.now() - forgedAt;
    expect(overlapping(deleted, second, third)).toEqual([]);

    // 4. What the replicas say: one leader in /api/status and /metrics, a valid exposition format.
    const other = leading === second ? third : second;
    await following(other, leading);
    const [lead, follow] = await Promise.all([leading.scrape(), other.scrape()]);
    expect(gauge(lead, "gmsa_gitops_leader")).toBe(1);
    expect(gauge(follow, "gmsa_gitops_leader")).toBe(0);
    expect(lead).toMatch(/^gmsa_gitops_leader_transitions_total\{to="leader"\} [1-9]/m);
    expect(follow).toMatch(/^gmsa_gitops_leader_transitions_total\{to="follower"\} [1-9]/m);
    for (const text of [lead, follow])
      expect(await runPromtool(["check", "metrics"], text)).toEqual({ code: 0, output: "" });
    console.log(`failover figures: ${JSON.stringify(figures)}`);
  }, 600_000);
});
