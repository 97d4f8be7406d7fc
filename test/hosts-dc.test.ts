// Retrievability asked of a real Samba AD DC: the script calls NetQueryServiceAccount through
// P/Invoke, and the netapi32 double answers by binding as the host's computer account (HOST$)
// and reading the gMSA's msDS-ManagedPassword over LDAPS, which Samba serves only to principals
// msDS-GroupMSAMembership allows. The gMSA and its group are
// made here with ldapadd (independently of the controller's directory writer).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeGroupMsaMembership } from "../controller/directory/security-descriptor.ts";
import { parseSid } from "../controller/directory/sid.ts";
import type { HostDriver, HostRequest, HostTarget } from "../controller/hosts/index.ts";
import { bindingRequest, createSshDriver } from "../controller/hosts/index.ts";
import type { DoubleHostState } from "./harness/pwsh-doubles/state.ts";
import { launcherShell, readHostState, sampleHost, writeHostState } from "./harness/pwsh-doubles/state.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { startSshd } from "./harness/sshd.ts";
import type { Sshd } from "./harness/sshd.ts";

let dc: Dc;
let sshd: Sshd;
let driver: HostDriver;
let groupDn: string;

beforeAll(async () => {
  [dc, sshd] = await Promise.all([startDc(), startSshd()]);
  driver = await createSshDriver({
    privateKeyPath: sshd.clientKeyPath,
    knownHostsPath: sshd.knownHostsPath,
    username: sshd.username,
    commandTimeoutMs: 90_000,
  });
  groupDn = `CN=GMSA-Service1-Hosts,CN=Users,${dc.baseDn}`;
  // Domain-local security group (ADS_GROUP_TYPE_DOMAIN_LOCAL_GROUP | SECURITY_ENABLED).
  await dc.ldap("ldapadd", [], {
    input: [
      `dn: ${groupDn}`,
      "objectClass: group",
      "sAMAccountName: GMSA-Service1-Hosts",
      "groupType: -2147483644",
      "",
    ].join("\n"),
  });
  const sidLine = (await dc.ldap("ldapsearch", ["-LLL", "-b", groupDn, "-s", "base", "objectSid"]))
    .split("\n")
    .find((l) => l.startsWith("objectSid:: "));
  if (sidLine === undefined) throw new Error("group has no objectSid");
  const groupSid = parseSid(Buffer.from(sidLine.slice("objectSid:: ".length), "base64"));
  await dc.ldap("ldapadd", [], {
    input: [
      `dn: CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}`,
      "objectClass: msDS-GroupManagedServiceAccount",
      "sAMAccountName: MSA-service1$",
      "userAccountControl: 4096",
      "msDS-ManagedPasswordInterval: 30",
      `dNSHostName: service1.${dc.realm.toLowerCase()}`,
      "msDS-SupportedEncryptionTypes: 24",
      `msDS-GroupMSAMembership:: ${encodeGroupMsaMembership([groupSid]).toString("base64")}`,
      "",
    ].join("\n"),
  });
}, 300_000);

afterAll(async () => {
  await Promise.all([sshd?.stop(), dc?.stop()]);
});

/** A computer account in the DC and a test host that binds as it. */
async function newHost(
  name: string,
  edit: (s: DoubleHostState) => void = () => undefined,
): Promise<{
  target: HostTarget;
  statePath: string;
  dn: string;
  password: string;
}> {
  const password = `Host-${name}-${Math.random().toString(36).slice(2)}Aa1!`;
  const dn = await dc.addComputer(name, password);
  const passwordFile = join(sshd.dir, `${name}.password`);
  await writeFile(passwordFile, password, { mode: 0o600 });
  const state = sampleHost(name);
  state.ad = { url: dc.url, caFile: dc.caFile, baseDn: dc.baseDn, bindDn: dn, passwordFile, command: ["ldapsearch"] };
  state.principals = state.principals.filter((p) => p.gmsa !== true);
  edit(state);
  const statePath = join(sshd.dir, `${name}.json`);
  await writeHostState(statePath, state);
  return {
    target: { host: name, address: sshd.address, port: sshd.port, shell: launcherShell(statePath) },
    statePath,
    dn,
    password,
  };
}

function request(
  target: HostTarget,
  mode: HostRequest["mode"],
  state: { recentlyAllowed?: boolean } = {},
  purge = false,
): HostRequest {
  return {
    version: 2,
    mode,
    host: target.host,
    domain: dc.domain,
    bindings: [bindingRequest("server-service1", "MSA-service1", { purgeKerberosTickets: purge }, state)],
  };
}

async function addToGroup(computerDn: string): Promise<void> {
  await dc.ldap("ldapmodify", [], {
    input: [`dn: ${groupDn}`, "changetype: modify", "add: member", `member: ${computerDn}`, ""].join("\n"),
  });
}

/** The independent check: does the DC hand the managed password to this computer? */
async function dcServesPassword(computerDn: string, password: string): Promise<boolean> {
  const out = await dc.ldap(
    "ldapsearch",
    [
      "-LLL",
      "-b",
      `CN=Managed Service Accounts,${dc.baseDn}`,
      "(sAMAccountName=MSA-service1$)",
      "msDS-ManagedPassword",
    ],
    { bindDn: computerDn, password },
  );
  return /^msDS-ManagedPassword::/m.test(out);
}

describe("retrievability against a real DC", () => {
  it("a host outside the allowed group cannot retrieve the password, and can once it is added", async () => {
    const host = await newHost("SERVER1");
    expect(await dcServesPassword(host.dn, host.password)).toBe(false);

    const before = await driver.run(host.target, request(host.target, "observe"));
    expect(before.bindings[0]?.retrievable).toBe(false);
    expect(before.bindings[0]?.items[0]).toMatchObject({
      item: "retrievable",
      observed: false,
      action: "failed",
      reason: "NotRetrievable",
    });

    await addToGroup(host.dn);
    expect(await dcServesPassword(host.dn, host.password)).toBe(true);

    const after = await driver.run(host.target, request(host.target, "observe"));
    expect(after.bindings[0]?.retrievable).toBe(true);
    expect(after.bindings[0]?.items[0]).toMatchObject({ item: "retrievable", observed: true, action: "none" });
  });

  it("a host just allowed but holding an old ticket is pending, and purging its tickets makes it retrievable", async () => {
    // cacheTickets: the double answers from the first answer (the TGT) until klist purge.
    const host = await newHost("SERVER2", (s) => {
      s.kerberos.cacheTickets = true;
    });
    const first = await driver.run(host.target, request(host.target, "observe"));
    expect(first.bindings[0]?.retrievable).toBe(false);

    await addToGroup(host.dn);
    expect(await dcServesPassword(host.dn, host.password)).toBe(true);

    const waiting = await driver.run(host.target, request(host.target, "observe", { recentlyAllowed: true }, true));
    expect(waiting.bindings[0]?.retrievable).toBe("pending");
    expect(waiting.bindings[0]?.items[0]).toMatchObject({ action: "pending", reason: "TicketNotRefreshed" });

    // Without purgeKerberosTickets, apply waits too.
    const noPurge = await driver.run(host.target, request(host.target, "apply", { recentlyAllowed: true }, false));
    expect(noPurge.bindings[0]?.retrievable).toBe("pending");

    const purged = await driver.run(host.target, request(host.target, "apply", { recentlyAllowed: true }, true));
    expect(purged.bindings[0]?.retrievable).toBe(true);
    expect(purged.bindings[0]?.items[0]).toMatchObject({
      observed: false,
      action: "changed",
      reason: "TicketNotRefreshed",
    });
    const events = (await readHostState(host.statePath)).events ?? [];
    expect(events.filter((e) => e.command === "klist").map((e) => e.detail)).toEqual(["-li 0x3e7 purge"]);
  });
});
