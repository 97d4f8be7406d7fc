import { describe, expect, it } from "vitest";
import { accountDn, movedDn, normalizeDn, parentDn, sameParent } from "./dn.ts";

describe("distinguished names", () => {
  it("an account's DN escapes its name", () => {
    expect(accountDn("Svc,One", "CN=Users", "DC=x")).toBe("CN=Svc\\,One,CN=Users,DC=x");
  });

  it("compares DNs without regard to case or spaces around the RDNs", () => {
    expect(normalizeDn("CN=A, OU=Tier1 ,DC=X")).toBe("cn=a,ou=tier1,dc=x");
    expect(sameParent("CN=a,OU=T,DC=x", "cn=b, ou=t,dc=X")).toBe(true);
    expect(sameParent("CN=a,OU=T,DC=x", "CN=a,CN=Users,DC=x")).toBe(false);
  });

  it("an escaped comma is part of the RDN, not a separator", () => {
    expect(parentDn("CN=a\\,b,CN=Users,DC=x")).toBe("CN=Users,DC=x");
    expect(movedDn("CN=a\\,b,CN=Users,DC=x", "OU=T,DC=x")).toBe("CN=a\\,b,OU=T,DC=x");
    expect(parentDn("DC=x")).toBe("");
  });
});
