// Each fixture folder under test/fixtures/manifests/ is a small repository; these tests assert
// the exact file, line, column and code of every error it must produce, and nothing more.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadManifests } from "./index.ts";
import type { LoadResult } from "./index.ts";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/manifests/", import.meta.url));
const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));

/** `FILE:LINE:COL code path` for each error, in the order reported. */
function positions(result: LoadResult): string[] {
  if (result.ok) return [];
  return result.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.code} ${e.path}`);
}

async function load(fixture: string): Promise<LoadResult> {
  return loadManifests(join(FIXTURES, fixture));
}

function messages(result: LoadResult): string[] {
  return result.ok ? [] : result.errors.map((e) => e.message);
}

describe("the examples/ repository", () => {
  it("validates with zero errors", async () => {
    const result = await loadManifests(EXAMPLES);
    expect(positions(result)).toEqual([]);
    expect(result.ok && result.files).toBe(6);
  });
});

describe("a valid repository", () => {
  it("loads nested folders and multi-document .yaml/.yml files, ignoring other files and dot-folders", async () => {
    const result = await load("valid");
    if (!result.ok) throw new Error(positions(result).join("\n"));
    expect(result.files).toBe(4);
    expect([...result.desired.groups.keys()]).toEqual(["tier1-servers", "gmsa-service1-hosts"]);
    expect([...result.desired.gmsas.keys()]).toEqual(["gmsa-reports", "msa-service1"]);
    expect([...result.desired.bindings.keys()]).toEqual(["web7-reports", "server1-service1"]);
    expect([...result.desired.kdsRootKeys.keys()]).toEqual(["default"]);
  });

  it("applies schema defaults, so defaulted fields are always present", async () => {
    const result = await load("valid");
    if (!result.ok) throw new Error("invalid");
    const gmsa = result.desired.gmsas.get("msa-service1");
    expect(gmsa?.spec).toEqual({
      accountName: "MSA-service1",
      dnsHostName: "service1.company.local",
      restrictToOutboundAuthenticationOnly: false,
      servicePrincipalNames: ["HTTP/service1.company.local"],
      servicePrincipalNamesPolicy: "additive",
      removeServicePrincipalNames: [],
      enabled: true,
      principalsAllowedToRetrieveManagedPassword: [{ group: "gmsa-service1-hosts" }],
      principalsPolicy: "exact",
      removePrincipals: [],
      kerberosEncryptionTypes: ["AES128", "AES256"],
      allowWeakEncryption: false,
      allowDefaultEncryptionTypes: false,
      allowUnconstrainedDelegation: false,
      managedPasswordIntervalInDays: 30,
      allowReplacement: false,
      path: "CN=Managed Service Accounts",
      suspend: false,
    });
    const tasks = result.desired.bindings.get("server1-service1")?.spec.scheduledTasks;
    expect(tasks).toEqual([
      { name: "My Script", path: "\\SCSM\\", runLevel: "Highest" },
      { name: "My Script", path: "\\", runLevel: "Limited" },
    ]);
    expect(result.desired.kdsRootKeys.get("default")?.spec).toEqual({
      deletionPolicy: "Retain",
      effectiveImmediately: false,
      suspend: false,
    });
    expect(result.desired.groups.get("tier1-servers")?.spec).toMatchObject({
      scope: "Global",
      membership: "additive",
      path: "CN=Users",
    });
  });

  it("records each resource's source location, labels and annotations", async () => {
    const result = await load("valid");
    if (!result.ok) throw new Error("invalid");
    const gmsa = result.desired.gmsas.get("msa-service1");
    expect(gmsa?.source).toEqual({ file: "apps/service1/account.yaml", line: 24, column: 1 });
    expect(gmsa?.annotations).toEqual({ owner: "team-a" });
    expect(gmsa?.labels).toEqual({});
    expect(result.desired.groups.get("gmsa-service1-hosts")?.labels).toEqual({ "app.kubernetes.io/name": "service1" });
  });
});

describe("schema errors", () => {
  it("point at the offending key or value, one per problem, across all files", async () => {
    const result = await load("schema");
    expect(positions(result)).toEqual([
      "enums.yaml:7:10 invalid-value spec.scope",
      "enums.yaml:16:29 invalid-value spec.kerberosEncryptionTypes[0]",
      "enums.yaml:25:17 invalid-value spec.logonRights[0]",
      "enums.yaml:28:17 invalid-value spec.scheduledTasks[0].runLevel",
      "kinds.yaml:1:13 unknown-api-version apiVersion",
      "kinds.yaml:8:7 unknown-kind kind",
      "kinds.yaml:13:7 unknown-kind kind",
      "kinds.yaml:17:1 not-a-resource ",
      "missing.yaml:6:1 missing-field spec.accountName",
      "types.yaml:6:16 wrong-type spec.accountName",
      "types.yaml:8:34 wrong-type spec.managedPasswordIntervalInDays",
      "types.yaml:10:7 exactly-one spec.principalsAllowedToRetrieveManagedPassword[0]",
      "typo.yaml:8:3 unknown-field spec.dnsHostname",
    ]);
  });

  it("suggest the intended field for a typo such as dnsHostname", async () => {
    const result = await load("schema");
    expect(messages(result)).toContain('spec.dnsHostname: unknown field; did you mean "dnsHostName"?');
  });

  it("list the allowed values of an enum", async () => {
    const result = await load("schema");
    expect(messages(result)).toEqual(
      expect.arrayContaining([
        'spec.scope: "Glbal" is not allowed; use DomainLocal, Global or Universal (did you mean Global?)',
        'spec.logonRights[0]: "SeServiceLogon" is not allowed; use SeServiceLogonRight or SeBatchLogonRight',
        'spec.scheduledTasks[0].runLevel: "Admin" is not allowed; use Limited or Highest',
        'spec.kerberosEncryptionTypes[0]: "AES512" is not allowed; use DES, RC4, AES128 or AES256 (did you mean AES128?)',
      ]),
    );
  });

  it("name the missing field and the kinds that exist", async () => {
    const result = await load("schema");
    expect(messages(result)).toEqual(
      expect.arrayContaining([
        'spec: missing required field "accountName"',
        'kind: unknown kind "GMSA"; did you mean GroupManagedServiceAccount?',
        'kind: unknown kind "ConfigMap"; use ADGroup, GroupManagedServiceAccount, HostBinding, KdsRootKey or ManagedServiceAccount',
      ]),
    );
  });
});

describe("name rules", () => {
  it("refuse long, metacharacter-laden and all-digit account names, bad resource and host names, and non-positive or fractional intervals", async () => {
    const result = await load("names");
    expect(positions(result)).toEqual([
      "names.yaml:6:16 too-long spec.accountName",
      "names.yaml:14:16 invalid-format spec.accountName",
      "names.yaml:22:16 invalid-account-name spec.accountName",
      "names.yaml:28:9 invalid-format metadata.name",
      "names.yaml:31:16 invalid-format spec.dnsHostName",
      "names.yaml:40:34 out-of-range spec.managedPasswordIntervalInDays",
      "names.yaml:49:34 wrong-type spec.managedPasswordIntervalInDays",
    ]);
    expect(messages(result).slice(0, 2)).toEqual([
      `spec.accountName: "MSA-reporting-svc" is 17 characters long; at most 15 allowed (a gMSA's sAMAccountName is limited to 15 characters by NetBIOS)`,
      `spec.accountName: "MSA*(cn=x)" contains "*": it may hold only letters, digits, '-', '_' and inner '.' (AD refuses LDAP filter and DN metacharacters in names)`,
    ]);
  });
});

describe("repeated names, account names, SPNs and list items", () => {
  it("are found across files: names per kind, account names and SPNs case-insensitively, KDS root keys, list items", async () => {
    const result = await load("repeated");
    expect(positions(result)).toEqual([
      "a.yaml:22:37 duplicate-item spec.kerberosEncryptionTypes[1]",
      "b.yaml:4:9 duplicate-name metadata.name",
      "b.yaml:16:27 duplicate-spn spec.servicePrincipalNames[0]",
      "b.yaml:23:16 duplicate-account-name spec.accountName",
      "b.yaml:26:7 duplicate-kds-root-key kind",
      "b.yaml:39:7 duplicate-item spec.services[1]",
    ]);
    expect(messages(result)[2]).toContain('registered by GroupManagedServiceAccount "msa-one" (a.yaml:8)');
  });
});

describe("references", () => {
  it("report dangling account and group references and group nesting cycles", async () => {
    const result = await load("references");
    expect(positions(result)).toEqual([
      "refs.yaml:7:12 dangling-reference spec.account",
      "refs.yaml:17:14 dangling-reference spec.principalsAllowedToRetrieveManagedPassword[0].group",
      "refs.yaml:27:14 dangling-reference spec.members[1].group",
      "refs.yaml:36:14 group-cycle spec.members[0].group",
    ]);
    expect(messages(result)[0]).toContain('did you mean "msa-service1"?');
    expect(messages(result)[3]).toContain("group-a → group-b → group-a");
  });

  it("into an invalid resource are not reported again as dangling", async () => {
    const result = await load("cascade");
    expect(positions(result)).toEqual([
      "account.yaml:8:16 too-long spec.accountName",
      "account.yaml:18:16 invalid-format spec.accountName",
      "binding.yaml:15:12 dangling-reference spec.account",
    ]);
  });
});

describe("encryption", () => {
  it("refuses RC4 and DES unless allowWeakEncryption is true", async () => {
    const result = await load("encryption");
    expect(positions(result)).toEqual([
      "weak.yaml:8:37 weak-encryption spec.kerberosEncryptionTypes[1]",
      "weak.yaml:8:42 weak-encryption spec.kerberosEncryptionTypes[2]",
    ]);
  });
});

describe("lists with removals", () => {
  it("an entry both listed and removed fails at its removal line, SPNs and account names without regard to case", async () => {
    const result = await load("removal");
    expect(positions(result)).toEqual([
      "lists.yaml:12:7 listed-and-removed spec.removeServicePrincipalNames[1]",
      "lists.yaml:17:7 listed-and-removed spec.removePrincipals[0]",
      "lists.yaml:31:7 listed-and-removed spec.removeMembers[1]",
    ]);
    expect(messages(result)[0]).toBe(
      "spec.removeServicePrincipalNames[1]: this entry is also listed in servicePrincipalNames[0] (AD compares account names and SPNs without regard to case); an entry is either wanted or removed, so drop one of the two",
    );
  });
});

describe("password retrieval", () => {
  it("a host outside the account's principals and their nested groups fails validation at its host line", async () => {
    const result = await load("retrieval");
    expect(positions(result)).toEqual(["bindings.yaml:23:9 host-cannot-retrieve spec.host"]);
    expect(messages(result)[0]).toBe(
      'spec.host: SERVER3 is not allowed to retrieve the password of GroupManagedServiceAccount "msa-app" (groups.yaml:22); add { computer: SERVER3 } to the members of ADGroup "outer" or ADGroup "inner", or to its principalsAllowedToRetrieveManagedPassword',
    );
  });
});

describe("hostile input (test/fixtures/invalid/hostile/, kept out of the formatter)", () => {
  const HOSTILE = fileURLToPath(new URL("../../test/fixtures/invalid/hostile/", import.meta.url));

  it("is refused at the offending byte, directive, tag or value, with a message that says what it is", async () => {
    const result = await loadManifests(HOSTILE);
    expect(
      result.ok ? [] : result.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.code} | ${e.message}`),
    ).toEqual([
      "bom.yaml:8:1 invalid-utf8 | a byte order mark (U+FEFF) in the middle of the file; only the very start of a file may hold one (was a second file pasted in?)",
      "deep.yaml:1:67 too-deep | nested more than 64 levels deep",
      'dn.yaml:8:9 invalid-format | spec.path: "CN=Managed Service Accounts\\n,OU=Injected" contains the control character U+000A, which no DN component may hold; remove it',
      'dn.yaml:16:9 invalid-format | spec.path: "OU=Servers\\u0000" contains the control character U+0000, which no DN component may hold; remove it',
      'hosts.yaml:7:16 invalid-format | spec.dnsHostName: "service1" is a single label; write the fully qualified DNS name (e.g. service1.company.local): Kerberos clients resolve the account by it',
      'hosts.yaml:15:16 invalid-format | spec.dnsHostName: "10.0.0.5" is an IP address; dnsHostName is the account\'s fully qualified DNS name (e.g. service1.company.local)',
      'hosts.yaml:26:7 out-of-range | spec.servicePrincipalNames[1]: "HTTP/port.company.local:99999" has port 99999; a port is between 1 and 65535',
      "nul.yaml:1:1 invalid-utf8 | not UTF-8 text (NUL byte at offset 0: UTF-16 without a byte order mark, or a binary file); save the file as UTF-8",
      "tags.yaml:6:16 tag-refused | spec.accountName: YAML tags (!evil) are not allowed; write a plain value (quote it to make it a string)",
      "tags.yaml:8:24 tag-refused | spec.allowWeakEncryption: YAML tags (!!bool) are not allowed; write a plain value (quote it to make it a string)",
      "utf16.yaml:1:2 invalid-utf8 | not UTF-8 text (NUL byte at offset 1: UTF-16 without a byte order mark, or a binary file); save the file as UTF-8",
      'yaml11.yaml:1:1 directive-refused | "%YAML 1.1" is not allowed: manifests are YAML 1.2 (under YAML 1.1, 030 is 24 and yes is true); remove the directive or write %YAML 1.2',
    ]);
  });
});

describe("delegation and group attributes", () => {
  it("unconstrained delegation without the opt-in, a bad CN, SPN or category, and dangling groups fail at their lines", async () => {
    const result = await load("delegation");
    expect(positions(result)).toEqual([
      "accounts.yaml:8:25 unconstrained-delegation spec.trustedForDelegation",
      "accounts.yaml:9:51 dangling-reference spec.principalsAllowedToDelegateToAccount[0].group",
      "accounts.yaml:27:15 invalid-format spec.commonName",
      "accounts.yaml:29:59 invalid-format spec.allowedToDelegateTo[1]",
      "accounts.yaml:39:15 invalid-format spec.commonName",
      "accounts.yaml:40:13 invalid-value spec.category",
      "accounts.yaml:51:23 dangling-reference spec.managedBy.group",
    ]);
    expect(messages(result)[0]).toBe(
      "spec.trustedForDelegation: unconstrained delegation lets this account act as any user who reaches it, against any service; list the services in allowedToDelegateTo instead, or set allowUnconstrainedDelegation: true if it is truly needed",
    );
  });
});
