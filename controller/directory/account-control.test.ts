import { describe, expect, it } from "vitest";
import { describeUac, withAccountEnabled, WORKSTATION_TRUST_ACCOUNT } from "./account-control.ts";

describe("userAccountControl", () => {
  it("enabling or disabling changes only ACCOUNTDISABLE (0x2), keeping every other bit", () => {
    const withDelegation = WORKSTATION_TRUST_ACCOUNT | 0x80000; // TRUSTED_FOR_DELEGATION
    expect(withAccountEnabled(withDelegation, false)).toBe(withDelegation | 0x2);
    expect(withAccountEnabled(withDelegation | 0x2, true)).toBe(withDelegation);
    expect(withAccountEnabled(WORKSTATION_TRUST_ACCOUNT, true)).toBe(4096);
  });

  it("reads as the number and the state", () => {
    expect(describeUac(4098)).toBe("4098 (disabled)");
    expect(describeUac(4096)).toBe("4096 (enabled)");
  });
});
