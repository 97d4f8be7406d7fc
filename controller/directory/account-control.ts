// userAccountControl: the flags of an account (MS-ADTS 2.2.16). Only ACCOUNTDISABLE is managed;
// every other bit is AD's or another tool's and is kept as read.

/** UF_WORKSTATION_TRUST_ACCOUNT (0x1000): what New-ADServiceAccount leaves on a gMSA. */
export const WORKSTATION_TRUST_ACCOUNT = 0x1000;

/** UF_ACCOUNTDISABLE (0x2): the account cannot log on. */
const ACCOUNT_DISABLE = 0x2;

/** The value with ACCOUNTDISABLE cleared (enabled) or set (disabled), every other bit kept. */
export function withAccountEnabled(userAccountControl: number, enabled: boolean): number {
  return enabled ? userAccountControl & ~ACCOUNT_DISABLE : userAccountControl | ACCOUNT_DISABLE;
}

/** How a person reads the value in a plan: the number, and whether the account is enabled. */
export function describeUac(userAccountControl: number): string {
  return `${userAccountControl} (${userAccountControl & ACCOUNT_DISABLE ? "disabled" : "enabled"})`;
}
