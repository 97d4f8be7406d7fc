// Principal references as an administrator types them: a principal listed twice in one list
// (an administrator's slip, named at the second entry's line), a user by UPN in every field.
import { describe, expect, it } from "vitest";
import { parseManifests } from "./index.ts";

function check(text: string): string[] {
  const result = parseManifests([{ path: "lists.yaml", content: new TextEncoder().encode(text) }]);
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.column} ${e.code} ${e.path}: ${e.message}`);
}

describe("a principal listed twice", () => {
  it("fails at the second entry's line in members, readers and their removal lists", () => {
    const errors = check(`apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: app-hosts
spec:
  accountName: App-Hosts
  members:
    - computer: SERVER1
    - user: alice
    - computer: server1
  removeMembers:
    - user: bob
    - user: BOB
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: app
spec:
  accountName: gMSA-App
  dnsHostName: app.company.local
  principalsAllowedToRetrieveManagedPassword:
    - group: app-hosts
    - group: app-hosts
  principalsAllowedToDelegateToAccount:
    - sid: S-1-5-21-1-2-3-1105
    - sid: S-1-5-21-1-2-3-1105
`);
    expect(errors.map((e) => e.slice(0, e.indexOf(": ")))).toEqual([
      "10:7 duplicate-item spec.members[2]",
      "13:7 duplicate-item spec.removeMembers[1]",
      "24:7 duplicate-item spec.principalsAllowedToRetrieveManagedPassword[1]",
      "27:7 duplicate-item spec.principalsAllowedToDelegateToAccount[1]",
    ]);
    expect(errors[0]).toContain(
      "spec.members[2]: this entry names the same principal as members[0] (AD compares account names without regard to case); list it once",
    );
  });
});

describe("a user named by userPrincipalName", () => {
  it("is taken as a group's manager and as a resource-based delegator, as it is as a member and reader", () => {
    expect(
      check(`apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: app-hosts
spec:
  accountName: App-Hosts
  managedBy: { user: alice@corp.example }
  members: [{ user: alice@corp.example }]
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: app
spec:
  accountName: gMSA-App
  dnsHostName: app.company.local
  principalsAllowedToRetrieveManagedPassword: [{ user: alice@corp.example }]
  principalsAllowedToDelegateToAccount: [{ user: alice@corp.example }]
`),
    ).toEqual([]);
  });
});

describe("a computer written with its sAMAccountName's '$'", () => {
  it("is refused with the name to write instead", () => {
    expect(
      check(`apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: app
spec:
  accountName: gMSA-App
  dnsHostName: app.company.local
  principalsAllowedToRetrieveManagedPassword: [{ computer: COMPUTER01$ }]
`),
    ).toEqual([
      "8:60 invalid-format spec.principalsAllowedToRetrieveManagedPassword[0].computer: spec.principalsAllowedToRetrieveManagedPassword[0].computer: \"COMPUTER01$\" ends with '$': write the name without it (COMPUTER01); the '$' of the sAMAccountName is added where AD needs it",
    ]);
  });
});

describe("a principal named by DN", () => {
  const group = (dn: string): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: app-hosts
spec:
  accountName: App-Hosts
  members:
    - dn: ${dn}
`;

  it("takes a ',' escaped inside a name, in any case", () => {
    expect(check(group("CN=Smith\\, John,OU=Staff,DC=company,DC=local"))).toEqual([]);
    expect(check(group("cn=JIM,cn=users,dc=company,dc=local"))).toEqual([]);
  });

  it("fails at its line when it is not a full DN, naming the part that is wrong", () => {
    const [unescaped] = check(group("CN=Smith, John,CN=Users,DC=company,DC=local"));
    expect(unescaped).toContain("8:11 invalid-format spec.members[0].dn");
    expect(unescaped).toContain(`has a part " John" that is not attr=value: write a ',' inside a name as '\\,'`);
    const [name] = check(group("john smith"));
    expect(name).toContain(`has a part "john smith" that is not attr=value`);
    const [relative] = check(group("CN=john,CN=Users"));
    expect(relative).toContain("does not end in the domain's DC= parts");
  });
});
