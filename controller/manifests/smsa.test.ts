// Standalone managed service accounts (issue 13 item 7): the kind's schema rules and the lint
// that involves it, each error at its file and line.
import { describe, expect, it } from "vitest";
import { parseManifests } from "./index.ts";

const SMSA = (name: string, spec: string, accountName = name): string =>
  `apiVersion: gmsa-gitops.io/v1alpha1\nkind: ManagedServiceAccount\nmetadata:\n  name: ${name}\nspec:\n  accountName: ${accountName}\n${spec}`;
const GMSA = (name: string, spec: string): string =>
  `apiVersion: gmsa-gitops.io/v1alpha1\nkind: GroupManagedServiceAccount\nmetadata:\n  name: ${name}\nspec:\n  accountName: ${name}\n  dnsHostName: ${name}.company.local\n${spec}`;

function check(text: string): string[] {
  const result = parseManifests([{ path: "accounts.yaml", content: new TextEncoder().encode(text) }]);
  return result.ok ? [] : result.errors.map((e) => `${e.file}:${e.line} ${e.code} ${e.message}`);
}

describe("ManagedServiceAccount", () => {
  it("an sMSA restricted to one computer is valid, with the defaults New-ADServiceAccount applies", () => {
    const result = parseManifests([
      { path: "a.yaml", content: new TextEncoder().encode(SMSA("sql1-svc", "  computer: SQL1\n")) },
    ]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const spec = result.desired.smsas.get("sql1-svc")?.spec;
    expect(spec).toMatchObject({
      accountName: "sql1-svc",
      computer: "SQL1",
      enabled: true,
      kerberosEncryptionTypes: ["AES128", "AES256"],
      servicePrincipalNames: [],
      path: "CN=Managed Service Accounts",
    });
  });

  it("needs exactly one computer: none, a list, or an unknown field fail at their line", () => {
    expect(
      check(
        [
          SMSA("none", "  description: no computer\n"),
          SMSA("two", "  computer: [SQL1, SQL2]\n"),
          SMSA("gmsa-like", "  computer: SQL1\n  principalsAllowedToRetrieveManagedPassword: [{ computer: SQL2 }]\n"),
        ].join("---\n"),
      ),
    ).toEqual([
      'accounts.yaml:5 missing-field spec: missing required field "computer"',
      "accounts.yaml:15 wrong-type spec.computer: must be a string, got a list",
      expect.stringMatching(
        /^accounts\.yaml:24 unknown-field spec\.principalsAllowedToRetrieveManagedPassword: unknown field/,
      ),
    ]);
  });

  it("shares SPNs, account names and weak encryption rules with gMSAs, at the line of each", () => {
    const errors = check(
      [
        GMSA("web", "  servicePrincipalNames: [HTTP/web.company.local]\n"),
        SMSA(
          "sql1-svc",
          "  computer: SQL1\n  servicePrincipalNames: [http/WEB.company.local]\n  kerberosEncryptionTypes: [RC4]\n",
        ),
        SMSA("web2", "  computer: SQL2\n", "WEB"),
      ].join("---\n"),
    );
    expect(errors).toEqual([
      expect.stringMatching(
        /^accounts\.yaml:8 duplicate-spn spec\.servicePrincipalNames\[0\]: SPN "HTTP\/web\.company\.local" is already registered by ManagedServiceAccount "sql1-svc" \(accounts\.yaml:17\)/,
      ),
      expect.stringMatching(/^accounts\.yaml:18 weak-encryption spec\.kerberosEncryptionTypes\[0\]: RC4/),
      expect.stringMatching(
        /^accounts\.yaml:25 duplicate-account-name spec\.accountName: "WEB" is already the accountName of GroupManagedServiceAccount "web" \(accounts\.yaml:6\)/,
      ),
    ]);
  });

  it("an sMSA named as a gMSA's password reader fails at its line, pointing at its computer", () => {
    const errors = check(
      [
        SMSA("sql1-svc", "  computer: SQL1\n"),
        GMSA("reports", "  principalsAllowedToRetrieveManagedPassword:\n    - serviceAccount: SQL1-SVC\n"),
      ].join("---\n"),
    );
    expect(errors).toEqual([
      'accounts.yaml:17 smsa-not-a-reader spec.principalsAllowedToRetrieveManagedPassword[0].serviceAccount: "SQL1-SVC" is ManagedServiceAccount "sql1-svc", a standalone account whose password only its computer knows; the computer that runs the service retrieves a gMSA\'s password: name it instead ({ computer: SQL1 })',
    ]);
  });

  it("an sMSA's accountName is unique among gMSAs and groups as well", () => {
    const errors = check([GMSA("svc", ""), SMSA("svc", "  computer: SQL1\n")].join("---\n"));
    expect(errors).toEqual([
      expect.stringMatching(
        /^accounts\.yaml:14 duplicate-account-name .*GroupManagedServiceAccount "svc" \(accounts\.yaml:6\)/,
      ),
    ]);
  });
});

describe("HostBinding of a ManagedServiceAccount", () => {
  const BINDING = (name: string, host: string, account: string): string =>
    `apiVersion: gmsa-gitops.io/v1alpha1\nkind: HostBinding\nmetadata:\n  name: ${name}\nspec:\n  host: ${host}\n  account: ${account}\n  services: [{ name: MSSQLSERVER }]\n`;

  it("binding an sMSA on the computer it is restricted to is valid, whatever the case", () => {
    expect(check([SMSA("sql1-svc", "  computer: SQL1\n"), BINDING("sql1", "sql1", "sql1-svc")].join("---\n"))).toEqual(
      [],
    );
  });

  it("binding an sMSA on another computer fails at spec.host, naming the computer it is restricted to", () => {
    const errors = check([SMSA("sql1-svc", "  computer: SQL1\n"), BINDING("sql2", "SQL2", "sql1-svc")].join("---\n"));
    expect(errors).toEqual([
      'accounts.yaml:14 smsa-other-host spec.host: ManagedServiceAccount "sql1-svc" (accounts.yaml:4) is restricted to computer SQL1 (spec.computer, accounts.yaml:7); Windows installs a standalone account on that computer only, so bind it on host SQL1, or use a GroupManagedServiceAccount to run the service on SQL2',
    ]);
  });

  it("a binding naming no account of either kind still fails as dangling", () => {
    const errors = check([SMSA("sql1-svc", "  computer: SQL1\n"), BINDING("sql1", "SQL1", "sql1-svv")].join("---\n"));
    expect(errors).toEqual([
      expect.stringMatching(
        /^accounts\.yaml:15 dangling-reference spec\.account: no GroupManagedServiceAccount or ManagedServiceAccount named "sql1-svv" in the repository; did you mean "sql1-svc"\?/,
      ),
    ]);
  });
});
