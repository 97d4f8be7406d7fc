// Proves the throwaway DC harness (test/harness/samba.ts) and the Samba >= 4.21 gMSA behaviour
// other integration tests rely on, checked with ldap-utils and Node's TLS stack rather than
// through the controller's own LDAP code.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { connect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ldifValues } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";

const execFileAsync = promisify(execFile);

function ldifValue(ldif: string, attribute: string): string | undefined {
  return ldifValues(ldif, attribute)[0]?.toString("utf8");
}

/** BUILTIN\Administrators, S-1-5-32-544: the owner New-ADServiceAccount writes (docs/active-directory.md). */
const BUILTIN_ADMINISTRATORS = Buffer.from([1, 2, 0, 0, 0, 0, 0, 5, 0x20, 0, 0, 0, 0x20, 2, 0, 0]);

/**
 * msDS-GroupMSAMembership as New-ADServiceAccount builds it (docs/active-directory.md): self-relative,
 * owner BA, no group, a DACL with one ACCESS_ALLOWED ACE of mask 0xF01FF per binary SID.
 */
function groupMsaMembership(sids: Buffer[]): Buffer {
  const aces = sids.map((sid) => {
    const header = Buffer.alloc(8);
    header.writeUInt8(0x00, 0); // ACCESS_ALLOWED_ACE_TYPE
    header.writeUInt8(0x00, 1); // no inheritance flags
    header.writeUInt16LE(8 + sid.length, 2);
    header.writeUInt32LE(0x000f01ff, 4);
    return Buffer.concat([header, sid]);
  });
  const aceBytes = Buffer.concat(aces);
  const acl = Buffer.alloc(8);
  acl.writeUInt8(4, 0); // ACL revision 4 (DS)
  acl.writeUInt16LE(8 + aceBytes.length, 2);
  acl.writeUInt16LE(aces.length, 4);
  const header = Buffer.alloc(20);
  header.writeUInt8(1, 0); // revision
  header.writeUInt16LE(0x8004, 2); // SE_SELF_RELATIVE | SE_DACL_PRESENT
  header.writeUInt32LE(20, 4); // owner right after the header
  header.writeUInt32LE(0, 8); // no group
  header.writeUInt32LE(0, 12); // no SACL
  header.writeUInt32LE(20 + BUILTIN_ADMINISTRATORS.length, 16);
  return Buffer.concat([header, BUILTIN_ADMINISTRATORS, acl, aceBytes]);
}

async function objectSid(dc: Dc, dn: string): Promise<Buffer> {
  const out = await dc.ldap("ldapsearch", ["-b", dn, "-s", "base", "objectSid"]);
  const sid = ldifValues(out, "objectSid")[0];
  if (!sid) throw new Error(`no objectSid on ${dn}`);
  return sid;
}

function gmsaLdif(dc: Dc, name: string, allowed: Buffer[]): { dn: string; ldif: string } {
  const dn = `CN=${name},CN=Managed Service Accounts,${dc.baseDn}`;
  const ldif = [
    `dn: ${dn}`,
    "objectClass: msDS-GroupManagedServiceAccount",
    `sAMAccountName: ${name}$`,
    "userAccountControl: 4096",
    "msDS-ManagedPasswordInterval: 30",
    `dNSHostName: ${name.toLowerCase()}.${dc.realm.toLowerCase()}`,
    `msDS-GroupMSAMembership:: ${groupMsaMembership(allowed).toString("base64")}`,
    "",
  ].join("\n");
  return { dn, ldif };
}

/** Reads msDS-ManagedPassword bound as the given computer; undefined when the DC withholds it. */
async function readManagedPassword(
  dc: Dc,
  gmsaDn: string,
  bindDn: string,
  password: string,
): Promise<Buffer | undefined> {
  const out = await dc.ldap("ldapsearch", ["-b", gmsaDn, "-s", "base", "msDS-ManagedPassword"], { bindDn, password });
  return ldifValues(out, "msDS-ManagedPassword")[0];
}

/** Runs ldapsearch outside the harness, so nothing of its TLS setup leaks into the check. */
async function rawLdapsearch(
  url: string,
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number; stderr: string }> {
  try {
    await execFileAsync("ldapsearch", ["-H", url, "-x", "-s", "base", "-b", "", "namingContexts"], {
      env: { PATH: process.env["PATH"], HOME: cwd, LDAPCONF: join(cwd, "none.conf"), ...env },
      cwd,
      timeout: 20_000,
    });
    return { code: 0, stderr: "" };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? "" };
  }
}

describe("a throwaway Samba DC with the default KDS root key", () => {
  let dc: Dc;
  let scratch: string;

  beforeAll(async () => {
    const started = Date.now();
    dc = await startDc();
    console.log(`throwaway DC answered LDAPS after ${Date.now() - started} ms`);
    scratch = mkdtempSync(join(tmpdir(), "gmsa-harness-test-"));
  });

  afterAll(async () => {
    await dc?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test("answers LDAPS on 127.0.0.1 with a certificate its own CA verifies", async () => {
    expect(dc.url).toMatch(/^ldaps:\/\/127\.0\.0\.1:\d+$/);
    const rootDse = await dc.ldap("ldapsearch", [
      "-s",
      "base",
      "-b",
      "",
      "defaultNamingContext",
      "configurationNamingContext",
    ]);
    expect(ldifValue(rootDse, "defaultNamingContext")).toBe(dc.baseDn);
    expect(ldifValue(rootDse, "configurationNamingContext")).toBe(dc.configDn);

    // Node's TLS stack checks the chain and the SAN IP independently of ldap-utils.
    const port = Number(new URL(dc.url).port);
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port, ca: readFileSync(dc.caFile) }, () => {
        resolve(socket.authorized);
        socket.end();
      });
      socket.on("error", reject);
    });
    expect(authorized).toBe(true);
  });

  test("ldapsearch refuses the DC when it trusts another CA", async () => {
    const otherCa = join(scratch, "other-ca.pem");
    await execFileAsync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"].concat([
        "-nodes",
        "-keyout",
        join(scratch, "other-ca.key"),
        "-out",
        otherCa,
        "-days",
        "1",
        "-subj",
        "/CN=other CA",
      ]),
    );
    const refused = await rawLdapsearch(dc.url, { LDAPTLS_CACERT: otherCa, LDAPTLS_REQCERT: "demand" }, scratch);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Can't contact LDAP server/);

    const accepted = await rawLdapsearch(dc.url, { LDAPTLS_CACERT: dc.caFile, LDAPTLS_REQCERT: "demand" }, scratch);
    expect(accepted.code).toBe(0);
  });

  test("the admin password file holds exactly the password and is private", () => {
    expect(readFileSync(dc.passwordFile, "utf8")).toBe(dc.adminPassword);
    expect(readFileSync(dc.passwordFile).length).toBe(Buffer.byteLength(dc.adminPassword));
    expect(statSync(dc.passwordFile).mode & 0o777).toBe(0o600);
  });

  test("a computer made by addComputer binds with its password and no other", async () => {
    const dn = await dc.addComputer("HARNESS1", "Computer-Pass-1");
    expect(dn).toBe(`CN=HARNESS1,CN=Computers,${dc.baseDn}`);
    const self = await dc.ldap("ldapsearch", ["-b", dn, "-s", "base", "sAMAccountName", "dNSHostName"], {
      bindDn: dn,
      password: "Computer-Pass-1",
    });
    expect(ldifValue(self, "sAMAccountName")).toBe("HARNESS1$");
    expect(ldifValue(self, "dNSHostName")).toBe(`harness1.${dc.realm.toLowerCase()}`);
    await expect(
      dc.ldap("ldapsearch", ["-b", dn, "-s", "base", "dn"], { bindDn: dn, password: "wrong-Pass-1" }),
    ).rejects.toThrow(/Invalid credentials \(49\)/);
  });

  test("provision created a KDS root key that is usable now (start time at least 10 hours ago)", async () => {
    const keys = await dc.ldap("ldapsearch", [
      "-b",
      `CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,${dc.configDn}`,
      "-s",
      "one",
      "(objectClass=msKds-ProvRootKey)",
      "msKds-UseStartTime",
    ]);
    const starts = ldifValues(keys, "msKds-UseStartTime").map((value) => BigInt(value.toString("utf8")));
    expect(starts).toHaveLength(1);
    // FILETIME: 100 ns ticks since 1601-01-01 UTC.
    const nowFiletime = BigInt(Date.now()) * 10_000n + 116_444_736_000_000_000n;
    const tenHours = 360_000_000_000n;
    expect(nowFiletime - (starts[0] ?? 0n)).toBeGreaterThanOrEqual(tenHours);
  });

  describe("a gMSA added over LDAP", () => {
    let gmsaDn: string;
    let allowedDn: string;
    let viaGroupDn: string;
    let outsiderDn: string;

    beforeAll(async () => {
      allowedDn = await dc.addComputer("ALLOWED1", "Allowed-Pass-1");
      viaGroupDn = await dc.addComputer("GROUPED1", "Grouped-Pass-1");
      outsiderDn = await dc.addComputer("OUTSIDER1", "Outsider-Pass-1");
      const groupDn = `CN=gmsa-svc1-hosts,CN=Users,${dc.baseDn}`;
      await dc.ldap("ldapadd", [], {
        input: [
          `dn: ${groupDn}`,
          "objectClass: group",
          "sAMAccountName: gmsa-svc1-hosts",
          `member: ${viaGroupDn}`,
          "",
        ].join("\n"),
      });
      const allowed = [await objectSid(dc, allowedDn), await objectSid(dc, groupDn)];
      const gmsa = gmsaLdif(dc, "svc1", allowed);
      gmsaDn = gmsa.dn;
      await dc.ldap("ldapadd", [], { input: gmsa.ldif });
    });

    test("gets a generated password: pwdLastSet and msDS-ManagedPasswordId are set", async () => {
      const out = await dc.ldap("ldapsearch", ["-b", gmsaDn, "-s", "base", "pwdLastSet", "msDS-ManagedPasswordId"]);
      expect(BigInt(ldifValue(out, "pwdLastSet") ?? "0")).toBeGreaterThan(0n);
      expect(ldifValues(out, "msDS-ManagedPasswordId")[0]?.length ?? 0).toBeGreaterThan(0);
    });

    test("a computer the membership allows reads msDS-ManagedPassword", async () => {
      const blob = await readManagedPassword(dc, gmsaDn, allowedDn, "Allowed-Pass-1");
      expect(blob).toBeDefined();
      // MSDS-MANAGEDPASSWORD_BLOB: Version 1, Reserved 0, Length = whole blob, current password at 16+.
      expect(blob?.readUInt16LE(0)).toBe(1);
      expect(blob?.readUInt32LE(4)).toBe(blob?.length);
      expect(blob?.readUInt16LE(8)).toBeGreaterThanOrEqual(16);
    });

    test("a computer allowed through a group it is a member of reads msDS-ManagedPassword", async () => {
      const blob = await readManagedPassword(dc, gmsaDn, viaGroupDn, "Grouped-Pass-1");
      expect(blob?.readUInt16LE(0)).toBe(1);
    });

    test("a computer the membership does not allow gets the entry without msDS-ManagedPassword", async () => {
      const out = await dc.ldap("ldapsearch", ["-b", gmsaDn, "-s", "base", "msDS-ManagedPassword"], {
        bindDn: outsiderDn,
        password: "Outsider-Pass-1",
      });
      expect(out).toContain(`dn: ${gmsaDn}`);
      expect(ldifValues(out, "msDS-ManagedPassword")).toHaveLength(0);
    });

    test("the administrator, not named in the membership, does not get msDS-ManagedPassword either", async () => {
      const out = await dc.ldap("ldapsearch", ["-b", gmsaDn, "-s", "base", "msDS-ManagedPassword"]);
      expect(ldifValues(out, "msDS-ManagedPassword")).toHaveLength(0);
    });
  });

  test("sambaTool runs samba-tool against the DC's database", async () => {
    const out = await dc.sambaTool(["computer", "list"]);
    expect(out).toMatch(/^DC1\$$/m);
  });
});

test("without a KDS root key usable for 10 hours the DC refuses to add a gMSA, with 32 and NTE_NO_KEY", async () => {
  const dc = await startDc({ kdsRootKey: false });
  try {
    const keys = await dc.sambaTool(["domain", "kds", "root-key", "list", "--json"]);
    expect(JSON.parse(keys)).toEqual([]);
    const computer = await dc.addComputer("HOST1", "Host1-Pass-1");
    const sid = await objectSid(dc, computer);
    // Samba >= 4.21: noSuchObject (32) with WERR 0x8009000D NTE_NO_KEY (gkdi.c), not Windows' 53.
    const noKey = /No such object \(32\)[\s\S]*8009000D: failed to find a suitable root key/;
    await expect(dc.ldap("ldapadd", [], { input: gmsaLdif(dc, "svc2", [sid]).ldif })).rejects.toThrow(noKey);

    // A key whose use starts now is not usable yet: Samba wants start <= now - (10 h + 5 min).
    await dc.sambaTool(["domain", "kds", "root-key", "create"]);
    await expect(dc.ldap("ldapadd", [], { input: gmsaLdif(dc, "svc2", [sid]).ldif })).rejects.toThrow(noKey);

    const elevenHoursAgo = new Date(Date.now() - 11 * 3600_000).toISOString();
    await dc.sambaTool(["domain", "kds", "root-key", "create", `--use-start-time=${elevenHoursAgo}`]);
    const gmsa = gmsaLdif(dc, "svc2", [sid]);
    await dc.ldap("ldapadd", [], { input: gmsa.ldif });
    const out = await dc.ldap("ldapsearch", ["-b", gmsa.dn, "-s", "base", "pwdLastSet"]);
    expect(BigInt(ldifValue(out, "pwdLastSet") ?? "0")).toBeGreaterThan(0n);
  } finally {
    await dc.stop();
  }
});

test("a DC started with a chosen admin password binds with it, and stop() leaves no process or folder behind", async () => {
  const dc = await startDc({ adminPassword: "Chosen-Admin-Pass-1" });
  const whoami = await dc.ldap("ldapsearch", ["-b", dc.adminDn, "-s", "base", "sAMAccountName"]);
  expect(ldifValue(whoami, "sAMAccountName")).toBe("Administrator");
  expect(readFileSync(dc.passwordFile, "utf8")).toBe("Chosen-Admin-Pass-1");
  const sambaPid = Number(readFileSync(join(dc.dir, "ns.pid"), "utf8"));
  // Process group of a live process; undefined for exited ones. Zombies count as exited: killed
  // prefork children are orphans that init reaps in its own time.
  const groupOf = (pid: string): number | undefined => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return fields[0] === "Z" ? undefined : Number(fields[2]);
    } catch {
      return undefined;
    }
  };
  const pgid = groupOf(String(sambaPid));
  expect(pgid).toBeDefined();
  const members = readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && groupOf(pid) === pgid);
  // bash (watchdog), two forwarders, samba and its prefork children.
  expect(members.length).toBeGreaterThan(4);

  await dc.stop();
  await dc.stop(); // idempotent

  const survivors = readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && groupOf(pid) === pgid);
  expect(survivors).toEqual([]);
  const mentioning = readdirSync("/proc").filter((pid) => {
    try {
      return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dc.dir);
    } catch {
      return false;
    }
  });
  expect(mentioning).toEqual([]);
  expect(() => readdirSync(dc.dir)).toThrow(/ENOENT/);
});

test("a missing Samba root fails with the installer's name", async () => {
  const emptyRoot = mkdtempSync(join(tmpdir(), "gmsa-no-root-"));
  const saved = process.env["GMSA_SAMBA_ROOT"];
  process.env["GMSA_SAMBA_ROOT"] = emptyRoot;
  try {
    await expect(startDc()).rejects.toThrow(
      `Samba 4.21+ root not found at ${emptyRoot}: run scripts/install-test-deps.sh`,
    );
  } finally {
    if (saved === undefined) delete process.env["GMSA_SAMBA_ROOT"];
    else process.env["GMSA_SAMBA_ROOT"] = saved;
    rmSync(emptyRoot, { recursive: true, force: true });
  }
});
