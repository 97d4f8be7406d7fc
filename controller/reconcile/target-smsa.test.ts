// `apply --target HostBinding/NAME` takes the binding's account along: for a binding of a
// standalone MSA that is the ManagedServiceAccount (issue 13 item 7), not a gMSA of that name.
import { describe, expect, it } from "vitest";
import { parseManifests } from "../manifests/index.ts";
import { targetClosure } from "./target.ts";

const TEXT = `apiVersion: gmsa-gitops.io/v1alpha1
kind: ManagedServiceAccount
metadata:
  name: sql1-svc
spec:
  accountName: sql1-svc
  computer: SQL1
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: sql1-mssql
spec:
  host: SQL1
  account: sql1-svc
`;

describe("target closure of a HostBinding", () => {
  it("a binding of an sMSA depends on its ManagedServiceAccount", () => {
    const parsed = parseManifests([{ path: "sql.yaml", content: new TextEncoder().encode(TEXT) }]);
    if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join("; "));
    expect([...targetClosure(parsed.desired, [{ kind: "HostBinding", name: "sql1-mssql" }])].sort()).toEqual([
      "HostBinding/sql1-mssql",
      "ManagedServiceAccount/sql1-svc",
    ]);
  });
});
