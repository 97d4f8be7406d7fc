// userAccountControl: the flags of an account (MS-ADTS 2.2.16). Only ACCOUNTDISABLE and the three
// delegation flags are managed, each only when the manifest says so; every other bit is AD's or
// another tool's and is kept as read.

/** UF_WORKSTATION_TRUST_ACCOUNT (0x1000): what New-ADServiceAccount leaves on a gMSA. */
export const WORKSTATION_TRUST_ACCOUNT = 0x1000;

/** UF_ACCOUNTDISABLE (0x2): the account cannot log on. */
const ACCOUNT_DISABLE = 0x2;

/** The delegation flags, by the name of the Set-ADAccountControl switch that sets each. */
export const DELEGATION_FLAGS = {
  /** UF_TRUSTED_FOR_DELEGATION (0x80000): unconstrained delegation. */
  trustedForDelegation: 0x80000,
  /** UF_NOT_DELEGATED (0x100000): sensitive, cannot be delegated. */
  accountNotDelegated: 0x100000,
  /** UF_TRUSTED_TO_AUTH_FOR_DELEGATION (0x1000000): protocol transition for constrained delegation. */
  trustedToAuthForDelegation: 0x1000000,
} as const;

/** Which delegation flags a manifest manages: true sets, false clears, undefined leaves the bit as read. */
export type DelegationFlags = { readonly [K in keyof typeof DELEGATION_FLAGS]?: boolean | undefined };

/** The value with ACCOUNTDISABLE cleared (enabled) or set (disabled), every other bit kept. */
export function withAccountEnabled(userAccountControl: number, enabled: boolean): number {
  return enabled ? userAccountControl & ~ACCOUNT_DISABLE : userAccountControl | ACCOUNT_DISABLE;
}

/** The value with each managed delegation flag set or cleared, every other bit kept. */
export function withDelegationFlags(userAccountControl: number, flags: DelegationFlags): number {
  let value = userAccountControl;
  for (const [name, bit] of Object.entries(DELEGATION_FLAGS)) {
    const want = flags[name as keyof typeof DELEGATION_FLAGS];
    if (want === true) value |= bit;
    else if (want === false) value &= ~bit;
  }
  return value >>> 0;
}

/**
 * How a person reads the value in a plan: the number, whether the account is enabled, and the
 * delegation flags that are set, by their Set-ADAccountControl names.
 */
export function describeUac(userAccountControl: number): string {
  const words = [userAccountControl & ACCOUNT_DISABLE ? "disabled" : "enabled"];
  for (const [name, bit] of Object.entries(DELEGATION_FLAGS)) if (userAccountControl & bit) words.push(name);
  return `${userAccountControl} (${words.join(", ")})`;
}
