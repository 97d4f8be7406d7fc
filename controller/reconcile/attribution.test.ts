// The ledger of the controller's own writes: which DN a write's metadata is read from.
import { describe, expect, it } from "vitest";
import type { AttributeHistory } from "../directory/index.ts";
import type { ActionResult } from "./apply.ts";
import { recordWrites, WriteLedger } from "./attribution.ts";

describe("recordWrites", () => {
  it("reads a renamed object's metadata at its new DN, where the next plan finds it", async () => {
    const oldDn = "CN=Hosts-Old,CN=Users,DC=company,DC=local";
    const newDn = "CN=Hosts-New,CN=Users,DC=company,DC=local";
    const change = { attribute: "sAMAccountName", from: "Hosts-Old", to: "Hosts-New" };
    const result: ActionResult = {
      status: "applied",
      action: {
        type: "rename",
        resource: { kind: "ADGroup", name: "hosts" },
        dn: oldDn,
        newDn,
        samAccountName: "Hosts-New",
        changes: [change],
      },
    };
    const history: AttributeHistory = {
      attribute: "sAMAccountName",
      time: new Date("2026-11-25T12:00:00Z"),
      version: 2,
      invocationId: undefined,
      dsaDn: undefined,
      objectLevel: false,
    };
    const read: string[] = [];
    const ledger = new WriteLedger();
    await recordWrites([result], (dn) => (read.push(dn), Promise.resolve(dn === newDn ? [history] : [])), ledger);
    expect(read).toEqual([newDn]);
    expect(ledger.isOurs(newDn, history)).toBe(true);
  });
});
