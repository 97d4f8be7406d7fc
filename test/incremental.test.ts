// Incremental observe against a real Samba DC: which changes raise uSNChanged, and that a read
// after the first returns only what changed, yet the picture it keeps equals a full read. Hand
// edits are made with ldapmodify/ldapdelete, independently of the code under test.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { directorySession } from "../controller/clients.ts";
import { MARKER_PREFIX } from "../controller/directory/index.ts";
import { loadManifests } from "../controller/manifests/index.ts";
import type { DesiredState } from "../controller/manifests/index.ts";
import { IncrementalObserver } from "../controller/reconcile/incremental.ts";
import type { ChangeReader } from "../controller/reconcile/incremental.ts";
import type { ObservedDirectory } from "../controller/reconcile/model.ts";
import { observeDirectory } from "../controller/reconcile/observe.ts";
import { reconcilePass } from "../controller/reconcile/pass.ts";
import { hostMemory } from "../controller/reconcile/hosts.ts";
import { directoryOpener } from "../controller/clients.ts";
import { startDc } from "./harness/samba.ts";
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

  it("reads only what changed between full reads, deletions included, and keeps the same picture as a full read", async () => {
    const dir = await adminConnection(dc);
    try {
      const session = directorySession(dir) as unknown as ChangeReader;
      const observer = new IncrementalObserver(3_600_000);
      let t = 0;
      const first = await observer.observe(desired, session, scope(), (t += 1000));
      expect(first.mode).toBe("full");
      expect(first.entries).toBeGreaterThan(4);

      // Nothing changed: the read returns only the KDS root keys (always read, a handful).
      const idle = await observer.observe(desired, session, scope(), (t += 1000));
      expect(idle.mode).toBe("incremental");
      expect(idle.entries).toBe(idle.observed.kdsRootKeys.length);

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
});
