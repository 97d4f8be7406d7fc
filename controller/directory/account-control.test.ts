import { describe, expect, it } from "vitest";
import { describeUac, withAccountEnabled, withDelegationFlags, WORKSTATION_TRUST_ACCOUNT } from "./account-control.ts";

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

  it("delegation flags change only their own bits, and a flag left out is kept as read", () => {
    const disabledPreAuth = WORKSTATION_TRUST_ACCOUNT | 0x2 | 0x400000; // ACCOUNTDISABLE, DONT_REQ_PREAUTH
    expect(withDelegationFlags(disabledPreAuth, { trustedForDelegation: true })).toBe(disabledPreAuth | 0x80000);
    expect(withDelegationFlags(disabledPreAuth | 0x1000000, { trustedToAuthForDelegation: false })).toBe(
      disabledPreAuth,
    );
    expect(withDelegationFlags(disabledPreAuth | 0x100000, {})).toBe(disabledPreAuth | 0x100000);
    expect(withDelegationFlags(disabledPreAuth, { accountNotDelegated: true, trustedForDelegation: false })).toBe(
      disabledPreAuth | 0x100000,
    );
  });

  it("names the delegation flags that are set", () => {
    expect(describeUac(4096 | 0x80000)).toBe("528384 (enabled, trustedForDelegation)");
    expect(describeUac(4098 | 0x1000000 | 0x100000)).toBe(
      "17829890 (disabled, accountNotDelegated, trustedToAuthForDelegation)",
    );
  });
});
