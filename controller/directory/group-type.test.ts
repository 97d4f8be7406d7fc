import { describe, expect, it } from "vitest";
import { describeGroupType, groupTypeFor, groupTypeSteps } from "./group-type.ts";

describe("groupType", () => {
  it("is a security group with the scope bit, signed as AD returns it", () => {
    expect(groupTypeFor("Global")).toBe(-2147483646);
    expect(groupTypeFor("DomainLocal")).toBe(-2147483644);
    expect(groupTypeFor("Universal")).toBe(-2147483640);
  });

  it("Global to DomainLocal goes through Universal, as AD requires", () => {
    expect(groupTypeSteps(groupTypeFor("Global"), groupTypeFor("DomainLocal"))).toEqual([
      groupTypeFor("Universal"),
      groupTypeFor("DomainLocal"),
    ]);
    expect(groupTypeSteps(groupTypeFor("Universal"), groupTypeFor("Global"))).toEqual([groupTypeFor("Global")]);
    expect(groupTypeSteps(groupTypeFor("Global"), groupTypeFor("Global") >>> 0)).toEqual([]);
  });

  it("names the scope, and says when a group is a distribution group", () => {
    expect(describeGroupType(groupTypeFor("DomainLocal"))).toBe("DomainLocal");
    expect(describeGroupType(0x2)).toBe("Global (distribution)");
    expect(describeGroupType(0x80000000 | 0)).toBe("0x0");
  });
});

describe("group category", () => {
  it("a distribution group has no security bit, and is named so", () => {
    expect(groupTypeFor("Global", "Distribution")).toBe(2);
    expect(describeGroupType(groupTypeFor("Universal", "Distribution"))).toBe("Universal (distribution)");
  });

  it("a security Global group becomes a distribution DomainLocal one through a distribution Universal group", () => {
    expect(groupTypeSteps(groupTypeFor("Global"), groupTypeFor("DomainLocal", "Distribution"))).toEqual([
      groupTypeFor("Universal", "Distribution"),
      groupTypeFor("DomainLocal", "Distribution"),
    ]);
    expect(groupTypeSteps(groupTypeFor("Global"), groupTypeFor("Global", "Distribution"))).toEqual([2]);
  });
});
