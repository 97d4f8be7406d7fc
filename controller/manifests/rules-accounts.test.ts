// A gMSA's role (issue 13 item 7): outbound-only accounts have no dnsHostName and no SPNs;
// every other account needs a dnsHostName.
import { describe, expect, it } from "vitest";
import { parseManifests } from "./index.ts";

const GMSA = (name: string, spec: string): string =>
  `apiVersion: gmsa-gitops.io/v1alpha1\nkind: GroupManagedServiceAccount\nmetadata:\n  name: ${name}\nspec:\n  accountName: ${name}\n${spec}`;

function check(text: string): string[] {
  const result = parseManifests([{ path: "accounts.yaml", content: new TextEncoder().encode(text) }]);
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.column} ${e.code} ${e.message}`);
}

describe("restrictToOutboundAuthenticationOnly", () => {
  it("an outbound-only account needs no dnsHostName", () => {
    expect(check(GMSA("client", "  restrictToOutboundAuthenticationOnly: true\n"))).toEqual([]);
  });

  it("refuses dnsHostName and SPNs on an outbound-only account, and wants dnsHostName on the others, at their line", () => {
    const errors = check(
      [
        GMSA(
          "client",
          "  restrictToOutboundAuthenticationOnly: true\n  dnsHostName: client.company.local\n  servicePrincipalNames: [HTTP/client.company.local]\n",
        ),
        GMSA("server", "  description: no host name\n"),
      ].join("---\n"),
    );
    expect(errors).toEqual([
      "8:3 conflicting-fields spec.dnsHostName: an outbound-only account is never a service that clients look up: remove dnsHostName",
      "9:3 conflicting-fields spec.servicePrincipalNames: an outbound-only account is never a service that clients look up: remove servicePrincipalNames",
      '15:1 missing-field spec: missing required field "dnsHostName" (or restrictToOutboundAuthenticationOnly: true for an account used only as a client)',
    ]);
  });
});
