/**
 * The answers behind the netapi32/advapi32 double (netapi32.c runs `node netapi-helper.ts
 * COMMAND ARG1 ARG2`; the host's state file is GMSA_DOUBLE_STATE). Prints a Win32 status on the
 * first line and, when it is 0, the answer on the next lines:
 *
 *   query ACCOUNT [SOURCE]  MSA_INFO_STATE of ACCOUNT$ (NetQueryServiceAccount), event by SOURCE
 *   query-quiet ACCOUNT     the same, without an event (for the Restart-Service double)
 *   add ACCOUNT             installs a standalone MSA (NetAddServiceAccount); an NTSTATUS first
 *   lookup-name NAME        SID, domain, SID_NAME_USE (LookupAccountNameW)
 *   lookup-sid SID          name, domain, SID_NAME_USE (LookupAccountSidW)
 *   group-members GROUP     the members' SIDs, one a line (NetLocalGroupGetMembers, level 0)
 *   group-add GROUP SID     adds a member (NetLocalGroupAddMembers, level 0)
 *
 * For `query` with `ad` set it asks the real DC the question Windows' LSA asks: bound as the
 * host's computer account (HOST$) over LDAPS, may it read the gMSA's msDS-ManagedPassword?
 * Samba serves that attribute only to principals msDS-GroupMSAMembership allows. With
 * kerberos.cacheTickets the first answer is kept until `klist -li 0x3e7 purge`, like a TGT
 * issued before a group change.
 *
 * A standalone MSA (objectClass msDS-ManagedServiceAccount) answers as Windows documents
 * (MSA_INFO_STATE; Test-ADServiceAccount's examples 2 and 3): MsaInfoCannotInstall when its
 * msDS-HostServiceAccountBL names another computer, MsaInfoCanInstall when it names this one or
 * none, MsaInfoInstalled once NetAddServiceAccount stored it in this host's LSA
 * (`installedServiceAccounts`) and it is still linked here. NetAddServiceAccount refuses what
 * cannot be installed; for an account linked to no computer it first links it to this one
 * (msDS-HostServiceAccount on HOST$, written as HOST$, as LSA would).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { parseSid } from "../../../controller/directory/sid.ts";
import type { DoubleHostState, DoublePrincipal } from "./state.ts";

/** MSA_INFO_STATE (lmaccess.h). */
const NOT_EXIST = 1;
const NOT_SERVICE = 2;
const CANNOT_INSTALL = 3;
const CAN_INSTALL = 4;
const INSTALLED = 5;
/** NTSTATUS values NetAddServiceAccount returns (its document names 0xC0000225 for a wrong name). */
const STATUS_NOT_FOUND = 0xc0000225;
const STATUS_ACCESS_DENIED = 0xc0000022;
const STATUS_INVALID_ACCOUNT_NAME = 0xc0000062;
/** Win32 errors the real calls return. */
const RPC_S_SERVER_UNAVAILABLE = 1722;
const ERROR_NO_SUCH_DOMAIN = 1355;
const ERROR_NONE_MAPPED = 1332;
const ERROR_NO_SUCH_ALIAS = 1376;
const ERROR_MEMBER_IN_ALIAS = 1378;
const ERROR_ACCESS_DENIED = 5;
/** SID_NAME_USE */
const SID_TYPE_USER = 1;
const SID_TYPE_ALIAS = 4;
const SID_TYPE_WELL_KNOWN = 5;

function escapeFilter(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** ldapsearch as the host's computer account; undefined when the DC cannot be asked. */
function searchDc(ad: NonNullable<DoubleHostState["ad"]>, filter: string, attributes: string[]): string | undefined {
  const [exe, ...rest] = ad.command;
  if (exe === undefined) return undefined;
  try {
    return execFileSync(
      exe,
      [
        ...rest,
        ...["-x", "-LLL", "-o", "ldif-wrap=no", "-H", ad.url, "-D", ad.bindDn, "-y", ad.passwordFile, "-b", ad.baseDn],
        filter,
        ...attributes,
      ],
      { encoding: "utf8", env: { ...process.env, LDAPTLS_CACERT: ad.caFile, LDAPTLS_REQCERT: "demand" } },
    );
  } catch {
    return undefined;
  }
}

/** An sMSA's place: linked to this host, to none, or to another computer (its msDS-HostServiceAccountBL). */
type Link = "here" | "none" | "other";

function askDc(
  s: DoubleHostState,
  ad: NonNullable<DoubleHostState["ad"]>,
  account: string,
): { status: number; state: number; smsa?: { dn: string; link: Link } } {
  const text = searchDc(ad, `(sAMAccountName=${escapeFilter(`${account}$`)})`, [
    "objectClass",
    "msDS-ManagedPassword",
    "msDS-HostServiceAccountBL",
  ]);
  if (text === undefined) return { status: ERROR_NO_SUCH_DOMAIN, state: 0 };
  if (!/^dn:/m.test(text)) return { status: 0, state: NOT_EXIST };
  if (/^objectClass: msDS-ManagedServiceAccount$/im.test(text)) {
    const dn = /^dn: (.*)$/m.exec(text)?.[1] ?? "";
    const hosts = [...text.matchAll(/^msDS-HostServiceAccountBL: (.*)$/gm)].map((m) => (m[1] ?? "").toLowerCase());
    const link: Link = hosts.length === 0 ? "none" : hosts.includes(ad.bindDn.toLowerCase()) ? "here" : "other";
    const installed = (s.installedServiceAccounts ?? []).some((a) => same(a, account));
    const state = link === "other" ? CANNOT_INSTALL : installed && link === "here" ? INSTALLED : CAN_INSTALL;
    return { status: 0, state, smsa: { dn, link } };
  }
  if (!/^objectClass: msDS-GroupManagedServiceAccount$/im.test(text)) return { status: 0, state: NOT_SERVICE };
  return { status: 0, state: /^msDS-ManagedPassword::/m.test(text) ? CAN_INSTALL : CANNOT_INSTALL };
}

function query(s: DoubleHostState, account: string): { status: number; state: number } {
  const cached = s.kerberos.cacheTickets ? s.kerberos.tickets[account] : undefined;
  let answer: { status: number; state: number };
  if (s.failOn?.includes("NetQueryServiceAccount")) answer = { status: RPC_S_SERVER_UNAVAILABLE, state: 0 };
  else if (cached !== undefined) answer = { status: 0, state: cached ? CAN_INSTALL : CANNOT_INSTALL };
  else if (s.ad) answer = askDc(s, s.ad, account);
  else {
    const known = s.retrievable?.[account];
    answer = { status: 0, state: known === undefined ? NOT_EXIST : known ? CAN_INSTALL : CANNOT_INSTALL };
  }
  if (s.kerberos.cacheTickets && cached === undefined && answer.status === 0 && answer.state >= CANNOT_INSTALL)
    s.kerberos.tickets[account] = answer.state !== CANNOT_INSTALL;
  return answer;
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function findPrincipal(s: DoubleHostState, text: string): DoublePrincipal | undefined {
  return s.principals.find((p) => same(p.sid, text) || p.names.some((n) => same(n, text)));
}

/** A domain account by DOMAIN\\name, name or UPN, through the DC (as LSA would ask it). */
function lookupInDc(s: DoubleHostState, name: string): string | undefined {
  if (!s.ad) return undefined;
  const sam = name.includes("\\") ? name.slice(name.indexOf("\\") + 1) : name.replace(/@.*$/, "");
  const text = searchDc(s.ad, `(sAMAccountName=${escapeFilter(sam)})`, ["objectSid", "objectClass"]);
  const sid = text === undefined ? undefined : /^objectSid:: (\S+)$/m.exec(text)?.[1];
  if (text === undefined || sid === undefined) return undefined;
  const kind = /^objectClass: msDS-GroupManagedServiceAccount$/im.test(text)
    ? "gmsa"
    : /^objectClass: msDS-ManagedServiceAccount$/im.test(text)
      ? "smsa"
      : "other";
  return `0\n${parseSid(Buffer.from(sid, "base64"))}\n${s.ad.domain ?? "DOMAIN"}\n${SID_TYPE_USER}\n${kind}\n`;
}

function findGroup(s: DoubleHostState, name: string): string | undefined {
  const bare = name.replace(/^(BUILTIN|[^\\]+)\\/i, "");
  return Object.keys(s.localGroups).find((g) => same(g, bare));
}

/** ldapmodify as the host's computer account; true when the DC accepted the change. */
function modifyDc(ad: NonNullable<DoubleHostState["ad"]>, ldif: string): boolean {
  const [exe, ...rest] = ad.command.map((c) => (c === "ldapsearch" ? "ldapmodify" : c));
  if (exe === undefined) return false;
  try {
    execFileSync(exe, [...rest, "-x", "-H", ad.url, "-D", ad.bindDn, "-y", ad.passwordFile], {
      input: ldif,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, LDAPTLS_CACERT: ad.caFile, LDAPTLS_REQCERT: "demand" },
    });
    return true;
  } catch {
    return false;
  }
}

/** NetAddServiceAccount(NULL, ACCOUNT$, NULL, SERVICE_ACCOUNT_FLAG_LINK_TO_HOST_ONLY): an NTSTATUS. */
function install(s: DoubleHostState, account: string): number {
  if (s.failOn?.includes("NetAddServiceAccount")) return STATUS_ACCESS_DENIED;
  if (!s.ad) return STATUS_NOT_FOUND;
  const a = askDc(s, s.ad, account);
  if (a.status !== 0 || a.state === NOT_EXIST) return STATUS_NOT_FOUND;
  if (a.state === NOT_SERVICE) return STATUS_INVALID_ACCOUNT_NAME;
  // A gMSA: the document says its credentials are retrieved; nothing is stored by the double.
  if (a.smsa === undefined) return a.state === CANNOT_INSTALL ? STATUS_ACCESS_DENIED : 0;
  // Linked to another computer: Windows refuses (the document names no code; access denied here).
  if (a.smsa.link === "other") return STATUS_ACCESS_DENIED;
  if (
    a.smsa.link === "none" &&
    !modifyDc(
      s.ad,
      `dn: ${s.ad.bindDn}\nchangetype: modify\nadd: msDS-HostServiceAccount\nmsDS-HostServiceAccount: ${a.smsa.dn}\n\n`,
    )
  )
    return STATUS_ACCESS_DENIED;
  if (a.state !== INSTALLED) s.installedServiceAccounts = [...(s.installedServiceAccounts ?? []), account];
  return 0;
}

function main(): string {
  const path = process.env["GMSA_DOUBLE_STATE"];
  const [command = "", arg1 = "", arg2 = ""] = process.argv.slice(2);
  if (path === undefined) return `${RPC_S_SERVER_UNAVAILABLE}\n`;
  const s = JSON.parse(readFileSync(path, "utf8")) as DoubleHostState;
  let out: string;
  let event: { command: string; detail: string } | undefined;
  switch (command) {
    case "query":
    case "query-quiet": {
      const account = arg1.replace(/\$$/, "");
      const a = query(s, account);
      out = a.status === 0 ? `0\n${a.state}\n` : `${a.status}\n`;
      if (command === "query")
        event = {
          command: arg2 || "NetQueryServiceAccount",
          detail: `${account}$=${a.status === 0 ? a.state : `error ${a.status}`}`,
        };
      break;
    }
    case "add": {
      const account = arg1.replace(/\$$/, "");
      const status = install(s, account);
      out = `${status}\n`;
      event = {
        command: "NetAddServiceAccount",
        detail: `${account}$=${status === 0 ? "installed" : `0x${status.toString(16)}`}`,
      };
      break;
    }
    case "lookup-name": {
      const group = findGroup(s, arg1);
      const groupSid = group !== undefined ? s.localGroupSids[group] : undefined;
      const p = findPrincipal(s, arg1);
      if (groupSid !== undefined) out = `0\n${groupSid}\nBUILTIN\n${SID_TYPE_ALIAS}\n`;
      else if (p !== undefined) {
        const [domain = s.computer] = (p.names[0] ?? "").split("\\");
        const use = p.sid.startsWith("S-1-5-21-") ? SID_TYPE_USER : SID_TYPE_WELL_KNOWN;
        out = `0\n${p.sid}\n${domain}\n${use}\n${p.gmsa ? "gmsa" : "other"}\n`;
      } else out = lookupInDc(s, arg1) ?? `${ERROR_NONE_MAPPED}\n`;
      break;
    }
    case "lookup-sid": {
      const group = Object.keys(s.localGroupSids).find((g) => s.localGroupSids[g] === arg1);
      const p = findPrincipal(s, arg1);
      if (group !== undefined) out = `0\n${group}\nBUILTIN\n${SID_TYPE_ALIAS}\n`;
      else if (p !== undefined) {
        const [domain = "", name = ""] = (p.names[0] ?? "").includes("\\")
          ? (p.names[0] ?? "").split("\\")
          : [s.computer, p.names[0] ?? ""];
        out = `0\n${name}\n${domain}\n${SID_TYPE_USER}\n`;
      } else out = `${ERROR_NONE_MAPPED}\n`;
      break;
    }
    case "group-members": {
      const group = findGroup(s, arg1);
      if (s.failOn?.includes("NetLocalGroupGetMembers")) out = `${ERROR_ACCESS_DENIED}\n`;
      else if (group === undefined) out = `${ERROR_NO_SUCH_ALIAS}\n`;
      else out = `0\n${(s.localGroups[group] ?? []).map((m) => `${m}\n`).join("")}`;
      break;
    }
    case "group-add": {
      const group = findGroup(s, arg1);
      if (group === undefined) out = `${ERROR_NO_SUCH_ALIAS}\n`;
      else if ((s.localGroups[group] ?? []).includes(arg2)) out = `${ERROR_MEMBER_IN_ALIAS}\n`;
      else {
        s.localGroups[group] = [...(s.localGroups[group] ?? []), arg2];
        event = { command: "NetLocalGroupAddMembers", detail: `${group} <- ${arg2}` };
        out = "0\n";
      }
      break;
    }
    default:
      return `87\n`;
  }
  if (event !== undefined || command === "query") {
    s.events = [...(s.events ?? []), ...(event ? [event] : [])];
    writeFileSync(`${path}.netapi.tmp`, JSON.stringify(s, null, 2));
    renameSync(`${path}.netapi.tmp`, path);
  }
  return out;
}

process.stdout.write(main());
