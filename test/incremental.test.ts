// Incremental observe against a real Samba DC: which changes raise uSNChanged, and that a read
// after the first returns only what changed, yet the picture it keeps equals a full read. Hand
// edits are made with ldapmodify/ldapdelete, independently of the code under test.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { directorySession } from "../controller/clients.ts";
import { connectDirectory, MARKER_PREFIX } from "../controller/directory/index.ts";
import type { LdapDirectory } from "../controller/directory/index.ts";
import { loadManifests } from "../controller/manifests/index.ts";
import type { DesiredState } from "../controller/manifests/index.ts";
import { IncrementalObserver, observerFor } from "../controller/reconcile/incremental.ts";
import type { ChangeReader } from "../controller/reconcile/incremental.ts";
import type { ObservedDirectory } from "../controller/reconcile/model.ts";
import { observeDirectory } from "../controller/reconcile/observe.ts";
import { reconcilePass } from "../controller/reconcile/pass.ts";
import { hostMemory } from "../controller/reconcile/hosts.ts";
import { directoryOpener, keptDirectory } from "../controller/clients.ts";
import { createMetricsRecorder } from "../controller/metrics/index.ts";
import { scrapeText } from "./support/metrics.ts";
import { startDc } from "./harness/samba.ts";
import { runInProcess } from "./support/in-process.ts";
import { adminConnection, attr, directoryConfig } from "./support/directory.ts";
import { OWNER } from "./support/reconcile.ts";
import type { Dc } from "./harness/samba.ts";

const examples = join(import.meta.dirname, "..", "examples");

/** The observed directory in a form two reads can be compared by (order-free). */
function canonical(o: ObservedDirectory): unknown {
  const by = <T extends { dn: string }>(xs: readonly T[]): T[] => [...xs].sort((a, b) => a.dn.localeCompare(b.dn));
  return {
    gmsas: by(o.gmsas.map((g) => ({ ...g, groupMsaMembership: g.groupMsaMembership?.toString("hex") }))),
    groups: by(o.groups.map((g) => ({ ...g, members: [...g.members].sort() }))),
    computers: by(o.computers),
  };
}

describe("incremental observe against Samba", () => {
  let dc: Dc;
  let desired: DesiredState;
  const scope = (): { baseDn: string; configDn: string } => ({ baseDn: dc.baseDn, configDn: dc.configDn });

  beforeAll(async () => {
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2", "SPARE1"])
      await dc.addComputer(host, `Host-Pass-${host}-1!`);
    const loaded = await loadManifests(examples);
    if (!loaded.ok) throw new Error("examples do not load");
    desired = loaded.desired;
    // The examples applied once, so there are managed gMSAs and groups to watch.
    const config = directoryConfig(dc);
    await reconcilePass({
      desired,
      policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
      now: new Date(),
      write: true,
      openDirectory: directoryOpener(config),
      hostMemory: hostMemory(),
    });
  }, 180_000);
  afterAll(async () => {
    await dc?.stop();
  });

  const usn = async (dn: string): Promise<number> =>
    Number(attr(await dc.ldap("ldapsearch", ["-b", dn, "-s", "base", "uSNChanged"]), "uSNChanged")[0]);
  const groupDn = (): string => `CN=GMSA-Service1-Hosts,CN=Users,${dc.baseDn}`;
  const computerDn = (name: string): string => `CN=${name},CN=Computers,${dc.baseDn}`;

  it("on Samba, adding or removing a member raises the group's uSNChanged (not the member's); deleting the member does not", async () => {
    const dn = (await dc.ldap("ldapsearch", ["-b", dc.baseDn, "(sAMAccountName=GMSA-Service1-Hosts)", "dn"]))
      .split("\n")
      .find((l) => l.startsWith("dn: "))!
      .slice(4);
    expect(dn.toLowerCase()).toBe(groupDn().toLowerCase());
    const group0 = await usn(dn);
    const member0 = await usn(computerDn("SPARE1"));
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\nadd: member\nmember: ${computerDn("SPARE1")}\n-\n`,
    });
    const group1 = await usn(dn);
    expect(group1).toBeGreaterThan(group0);
    expect(await usn(computerDn("SPARE1"))).toBe(member0);
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\ndelete: member\nmember: ${computerDn("SPARE1")}\n-\n`,
    });
    const group2 = await usn(dn);
    expect(group2).toBeGreaterThan(group1);
    expect(await usn(computerDn("SPARE1"))).toBe(member0);
    // Deleting a member object removes it from the group without raising the group's USN: the
    // incremental read must learn it from the tombstone (see the next test).
    await dc.addComputer("GONE1", "Host-Pass-GONE1-1!");
    await dc.ldap("ldapmodify", [], {
      input: `dn: ${dn}\nchangetype: modify\nadd: member\nmember: ${computerDn("GONE1")}\n-\n`,
    });
    const group3 = await usn(dn);
    await dc.ldap("ldapdelete", [computerDn("GONE1")]);
    expect(await usn(dn)).toBe(group3);
    const members = attr(await dc.ldap("ldapsearch", ["-b", dn, "-s", "base", "member"]), "member");
    expect(members.map((m) => m.toLowerCase())).not.toContain(computerDn("GONE1").toLowerCase());
  });

  /** A connection to the DC that counts its searches. */
  const countingSearches = async (): Promise<{ dir: LdapDirectory; searches: { count: number } }> => {
    const searches = { count: 0 };
    const dir = await connectDirectory({
      url: dc.url,
      bindDn: dc.adminDn,
      bindPassword: dc.adminPassword,
      caFile: dc.caFile,
      onOperation: (op) => {
        if (op === "search") searches.count++;
      },
    });
    return { dir, searches };
  };

  it("a quiet incremental read asks the DC one search (the rootDSE); once its USN moved, also the changes and KDS keys", async () => {
    const { dir, searches } = await countingSearches();
    try {
      const session = directorySession(dir) as unknown as ChangeReader;
      const observer = new IncrementalObserver(3_600_000);
      expect((await observer.observe(desired, session, scope(), 1000)).mode).toBe("full");
      // The examples name no principal by user name, SID or DN: no principals search.
      searches.count = 0;
      const quiet = await observer.observe(desired, session, scope(), 2000);
      expect(quiet.mode).toBe("incremental");
      expect(quiet.entries).toBe(0);
      // The invocation id was read with the full read's watermark, once for this connection.
      expect(searches.count).toBe(1);
      // A write anywhere on the DC (here an object nobody manages) moves its USN: the changes
      // and the KDS keys are asked again, and nothing managed changed.
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${computerDn("SPARE1")}\nchangetype: modify\nreplace: description\ndescription: moves the USN\n-\n`,
      });
      searches.count = 0;
      const moved = await observer.observe(desired, session, scope(), 3000);
      expect(moved.mode).toBe("incremental");
      expect(searches.count).toBe(3);
      expect(moved.entries).toBeGreaterThan(0);
      expect(canonical(moved.observed)).toEqual(canonical(quiet.observed));
      // Another connection reads the invocation id again, with its first watermark only.
      const { dir: again, searches: theirs } = await countingSearches();
      try {
        const first = await again.watermark();
        expect(theirs.count).toBe(2);
        expect(first.invocationId).toMatch(/^[0-9a-f]{32}$/);
        expect((await again.watermark()).invocationId).toBe(first.invocationId);
        expect(theirs.count).toBe(3);
      } finally {
        await again.close();
      }
    } finally {
      await dir.close();
    }
  });

  it("a quiet cycle over the kept connection asks the DC one search: its watermark comes from the cycle's rootDSE read", async () => {
    let searches = 0;
    const kept = keptDirectory(directoryConfig(dc), {
      onOperation: (op) => {
        if (op === "search") searches++;
      },
    });
    const metrics = createMetricsRecorder();
    const observe = observerFor(new IncrementalObserver(3_600_000), metrics, { info() {}, warn() {}, error() {} });
    // What a pass does with a session: the rootDSE for its scope, then the observe step.
    const cycle = async (): Promise<ObservedDirectory> => {
      const session = await kept.open();
      try {
        const dse = await session.rootDse();
        return await observe(desired, session, {
          baseDn: dse.defaultNamingContext,
          configDn: dse.configurationNamingContext,
        });
      } finally {
        await session.close();
      }
    };
    try {
      await cycle();
      await cycle();
      searches = 0;
      await cycle();
      // The rootDSE (checks the connection, gives the scope and the watermark); the invocation id
      // was read on this connection's first cycle; the USN has not moved: no changes to ask for.
      expect(searches).toBe(1);
      // A hand edit is still seen by the next cycle.
      await dc.ldap("ldapmodify", [], {
        input: `dn: CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}\nchangetype: modify\nreplace: description\ndescription: seen next cycle\n-\n`,
      });
      const seen = await cycle();
      expect(seen.gmsas.find((g) => g.samAccountName === "MSA-service1")?.description).toBe("seen next cycle");
      expect(await scrapeText(metrics)).toMatch(/gmsa_gitops_ldap_entries_read_total\{mode="incremental"\} [1-9]/);
    } finally {
      await kept.close();
    }
  });

  it("reads only what changed between full reads, deletions included, and keeps the same picture as a full read", async () => {
    const dir = await adminConnection(dc);
    try {
      const session = directorySession(dir) as unknown as ChangeReader;
      const observer = new IncrementalObserver(3_600_000);
      let t = 0;
      const first = await observer.observe(desired, session, scope(), (t += 1000));
      expect(first.mode).toBe("full");
      expect(first.entries).toBeGreaterThan(4);

      // Nothing changed: the DC's USN has not moved, and nothing is read but the watermark.
      const idle = await observer.observe(desired, session, scope(), (t += 1000));
      expect(idle.mode).toBe("incremental");
      expect(idle.entries).toBe(0);
      expect(idle.observed).toBe(first.observed);

      // A hand edit of one gMSA and one member change: those two objects, and the result equals a full read.
      const gmsaDn = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${gmsaDn}\nchangetype: modify\nreplace: description\ndescription: edited by hand\n-\n`,
      });
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${groupDn()}\nchangetype: modify\nadd: member\nmember: ${computerDn("SPARE1")}\n-\n`,
      });
      const edited = await observer.observe(desired, session, scope(), (t += 1000));
      expect(edited.mode).toBe("incremental");
      expect(edited.entries - edited.observed.kdsRootKeys.length).toBe(2);
      expect(edited.observed.gmsas.find((g) => g.dn === gmsaDn)?.description).toBe("edited by hand");
      expect(canonical(edited.observed)).toEqual(canonical(await observeDirectory(desired, session, scope())));

      // A member computer deleted: the group's USN stays, the tombstone takes it out of the members.
      await dc.ldap("ldapdelete", [computerDn("SPARE1")]);
      const memberGone = await observer.observe(desired, session, scope(), (t += 1000));
      expect(memberGone.mode).toBe("incremental");
      const members = memberGone.observed.groups.find((g) => g.dn.toLowerCase() === groupDn().toLowerCase())?.members;
      expect(members?.map((m) => m.toLowerCase())).not.toContain(computerDn("SPARE1").toLowerCase());
      expect(canonical(memberGone.observed)).toEqual(canonical(await observeDirectory(desired, session, scope())));

      // A managed group deleted by hand: its tombstone removes it from the picture.
      await dc.ldap("ldapdelete", [groupDn()]);
      const deleted = await observer.observe(desired, session, scope(), (t += 1000));
      expect(deleted.mode).toBe("incremental");
      expect(deleted.observed.groups.some((g) => g.dn.toLowerCase() === groupDn().toLowerCase())).toBe(false);
      expect(canonical(deleted.observed)).toEqual(canonical(await observeDirectory(desired, session, scope())));
      expect(
        deleted.observed.groups.every((g) => g.adminDescription?.startsWith(MARKER_PREFIX) || g.samAccountName),
      ).toBe(true);

      // The resync interval passed: a full read again.
      const resync = await observer.observe(desired, session, scope(), t + 3_600_000);
      expect(resync.mode).toBe("full");
      expect(resync.reason).toBe("full resync due");
    } finally {
      await dir.close();
    }
  });

  /**
   * The controller as `run` builds it, in this process, reconciling `repo` every second as the
   * owner that applied the examples (OWNER), with its JSON log lines captured.
   */
  async function runController(repo: string) {
    const { running, text } = await runInProcess(dc, repo);
    const logs = (): { msg: string; reason?: string }[] =>
      text()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string });
    /** The reason of each full read so far. */
    const fullReads = (): string[] => logs().flatMap((l) => (l.msg === "full read of AD" ? [l.reason ?? ""] : []));
    /** How long until `probe` holds, in ms; fails after 30 s (30 cycles of 1 s) with the last log lines. */
    const fixed = async (what: string, probe: () => Promise<boolean>): Promise<number> => {
      const started = Date.now();
      while (!(await probe().catch(() => false))) {
        if (Date.now() - started > 30_000)
          throw new Error(`not within 30 s: ${what}; last log lines: ${text().split("\n").slice(-8).join("\n")}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return Date.now() - started;
    };
    const statusOf = async (
      name: string,
    ): Promise<{ dn: string | null; conditions: { type: string; status: string; reason: string }[] } | undefined> => {
      const body = (await (await fetch(`${running.url}/api/status`)).json()) as {
        resources: {
          name: string;
          dn: string | null;
          conditions: { type: string; status: string; reason: string }[];
        }[];
      };
      return body.resources.find((x) => x.name === name);
    };
    return { running, fullReads, fixed, statusOf };
  }

  const dnOf = async (filter: string): Promise<string | undefined> =>
    (await dc.ldap("ldapsearch", ["-b", dc.baseDn, "-s", "sub", filter, "dn"]))
      .split("\n")
      .find((l) => l.startsWith("dn: "))
      ?.slice(4);

  it("a running controller acts on hand edits within a few cycles, from incremental reads only", async () => {
    await dc.addComputer("SPARE2", "Host-Pass-SPARE2-1!");
    const { running, fullReads, fixed, statusOf } = await runController(examples);
    const members = async (): Promise<string[]> =>
      attr(await dc.ldap("ldapsearch", ["-b", groupDn(), "-s", "base", "member"]), "member").map((m) =>
        m.toLowerCase(),
      );
    const service1 = `CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`;
    const service1Fine = async (): Promise<boolean> =>
      (await dnOf("(sAMAccountName=MSA-service1$)"))?.toLowerCase() === service1.toLowerCase();
    const took: Record<string, number> = {};
    try {
      // Settled: the group an earlier test deleted is back, then one full read only (the first).
      await fixed("the examples applied", async () => fullReads().length > 0 && (await members()).length === 2);
      const settled = fullReads().length;
      expect(settled).toBeGreaterThan(0);

      // A member added and one removed by hand on an exact group: the group's uSNChanged moves.
      const before = await usn(groupDn());
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${groupDn()}\nchangetype: modify\nadd: member\nmember: ${computerDn("SPARE2")}\n-\ndelete: member\nmember: ${computerDn("SERVER2")}\n-\n`,
      });
      expect(await usn(groupDn())).toBeGreaterThan(before);
      took["member list edited"] = await fixed("the member list", async () => {
        const m = await members();
        return m.includes(computerDn("SERVER2").toLowerCase()) && !m.includes(computerDn("SPARE2").toLowerCase());
      });

      // A member added from the member's side: memberOf is a back link AD computes; it cannot be written.
      await expect(
        dc.ldap("ldapmodify", [], {
          input: `dn: ${computerDn("SPARE2")}\nchangetype: modify\nadd: memberOf\nmemberOf: ${groupDn()}\n-\n`,
        }),
      ).rejects.toThrow();

      // The managed gMSA deleted, renamed (modrdn) and moved to another OU by hand.
      await dc.ldap("ldapdelete", [service1]);
      took["gMSA deleted"] = await fixed("the deleted gMSA", service1Fine);
      // A CN renamed by hand (modrdn) is seen; without commonName in the manifest the CN is not
      // managed (docs/decisions/renames.md), so it stays.
      const renamed = `CN=renamed-by-hand,CN=Managed Service Accounts,${dc.baseDn}`;
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${service1}\nchangetype: modrdn\nnewrdn: CN=renamed-by-hand\ndeleteoldrdn: 1\n`,
      });
      took["gMSA renamed by modrdn (seen)"] = await fixed(
        "the renamed gMSA seen",
        async () => (await statusOf("msa-service1"))?.dn?.toLowerCase() === renamed.toLowerCase(),
      );
      // Moved to another OU by hand: moved back, its CN kept.
      await dc.ldap("ldapadd", [], {
        input: `dn: OU=Elsewhere,${dc.baseDn}\nobjectClass: organizationalUnit\nou: Elsewhere\n`,
      });
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${renamed}\nchangetype: modrdn\nnewrdn: CN=renamed-by-hand\ndeleteoldrdn: 1\nnewsuperior: OU=Elsewhere,${dc.baseDn}\n`,
      });
      took["gMSA moved to another OU"] = await fixed(
        "the moved gMSA",
        async () => (await dnOf("(sAMAccountName=MSA-service1$)"))?.toLowerCase() === renamed.toLowerCase(),
      );

      // The ownership marker removed: the controller stops owning it and says so.
      const sql = (await dnOf("(sAMAccountName=gMSA-SQL$)"))!;
      await dc.ldap("ldapmodify", [], {
        input: `dn: ${sql}\nchangetype: modify\ndelete: adminDescription\n-\n`,
      });
      took["ownership marker removed"] = await fixed(
        "the marker seen as removed",
        async () =>
          (await statusOf("gmsa-sql"))?.conditions.some(
            (c) => c.type === "Ready" && c.status === "False" && c.reason === "NotOwned",
          ) === true,
      );

      // None of it needed a full read.
      expect(fullReads().slice(settled)).toEqual([]);
      console.log(`hand edits put right after (ms): ${JSON.stringify(took)}`);
    } finally {
      await running.stop();
    }
  }, 240_000);

  it("a user the repository names, created by hand after the controller started, is added without a full read", async () => {
    const repo = mkdtempSync(join(tmpdir(), "gmsa-late-user-"));
    writeFileSync(
      join(repo, "group.yaml"),
      [
        "apiVersion: gmsa-gitops.io/v1alpha1",
        "kind: ADGroup",
        "metadata:",
        "  name: late-members",
        "spec:",
        "  accountName: Late-Members",
        "  scope: Global",
        "  membership: exact",
        "  members:",
        "    - user: late-alice",
        "",
      ].join("\n"),
    );
    const { running, fullReads, fixed, statusOf } = await runController(repo);
    try {
      // The group is created without its member, which does not exist yet: the plan says so.
      // Blocked while its member does not exist: no write at all, and the status says so.
      await fixed(
        "the group blocked on its missing member",
        async () =>
          (await statusOf("late-members"))?.conditions.some((c) => c.type === "Ready" && c.status === "False") === true,
      );
      const settled = fullReads().length;
      await dc.ldap("ldapadd", [], {
        input: `dn: CN=late-alice,CN=Users,${dc.baseDn}\nobjectClass: user\nsAMAccountName: late-alice\n`,
      });
      const took = await fixed("the new user added to the group", async () => {
        const groupDn = await dnOf("(sAMAccountName=Late-Members)");
        if (groupDn === undefined) return false;
        const members = attr(await dc.ldap("ldapsearch", ["-b", groupDn, "-s", "base", "member"]), "member");
        return members.some((m) => m.toLowerCase() === `cn=late-alice,cn=users,${dc.baseDn}`.toLowerCase());
      });
      expect(fullReads().slice(settled)).toEqual([]);
      console.log(`a user created late was added after ${took} ms`);
    } finally {
      await running.stop();
      rmSync(repo, { recursive: true, force: true });
    }
  }, 120_000);
});
