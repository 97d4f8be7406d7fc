// groupType: a group's scope and kind as AD encodes them in one signed 32-bit integer.

/** The scope of a group. */
export type GroupScope = "Global" | "DomainLocal" | "Universal";

/** Security groups can be granted access; distribution groups are e-mail lists only. */
export type GroupCategory = "Security" | "Distribution";

/** ADS_GROUP_TYPE_SECURITY_ENABLED; without it the group is a distribution group. */
const SECURITY_GROUP = 0x80000000;
const SCOPE_BITS: Readonly<Record<GroupScope, number>> = { Global: 0x2, DomainLocal: 0x4, Universal: 0x8 };
const SCOPE_MASK = 0x2 | 0x4 | 0x8;

/** The groupType of a scope and category (security unless said), as a signed 32-bit integer like AD returns it. */
export function groupTypeFor(scope: GroupScope, category: GroupCategory = "Security"): number {
  return (category === "Security" ? SECURITY_GROUP : 0) | SCOPE_BITS[scope] | 0;
}

/** How a person names a groupType: its scope, with " (distribution)" for a group that is not a security group. */
export function describeGroupType(groupType: number): string {
  const bits = groupType & SCOPE_MASK;
  const entry = Object.entries(SCOPE_BITS).find(([, b]) => b === bits);
  const scope = entry ? entry[0] : `0x${bits.toString(16)}`;
  return (groupType & SECURITY_GROUP) !== 0 ? scope : `${scope} (distribution)`;
}

/**
 * The groupType values to write, in order, to go from one groupType to another. AD refuses a
 * direct Global <-> DomainLocal change (unwillingToPerform); the AD module and ADUC go through
 * Universal, and so does this. Empty when nothing changes.
 */
export function groupTypeSteps(from: number, to: number): number[] {
  if ((from | 0) === (to | 0)) return [];
  const f = from & SCOPE_MASK;
  const t = to & SCOPE_MASK;
  const viaUniversal =
    (f === SCOPE_BITS.Global && t === SCOPE_BITS.DomainLocal) ||
    (f === SCOPE_BITS.DomainLocal && t === SCOPE_BITS.Global);
  // The step through Universal already has the target's category: two writes, not three.
  return viaUniversal ? [(to & SECURITY_GROUP) | SCOPE_BITS.Universal | 0, to | 0] : [to | 0];
}
