import { describe, expect, it } from "vitest";
import { secondsUntilPasswordChange } from "./password.ts";

describe("secondsUntilPasswordChange", () => {
  const pwdLastSet = new Date("2025-01-01T00:00:00Z");

  it("counts from pwdLastSet plus the interval in days", () => {
    expect(secondsUntilPasswordChange(pwdLastSet, 30, new Date("2025-01-01T00:00:00Z"))).toBe(30 * 86_400);
    expect(secondsUntilPasswordChange(pwdLastSet, 30, new Date("2025-01-30T23:00:00Z"))).toBe(3600);
  });

  it("is zero at the moment the change is due", () => {
    expect(secondsUntilPasswordChange(pwdLastSet, 1, new Date("2025-01-02T00:00:00Z"))).toBe(0);
  });

  it("is negative once overdue (the DC rolls the password on the next retrieval)", () => {
    expect(secondsUntilPasswordChange(pwdLastSet, 1, new Date("2025-01-03T00:00:00Z"))).toBe(-86_400);
  });

  it("refuses an interval that is not a positive number of days", () => {
    for (const days of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => secondsUntilPasswordChange(pwdLastSet, days, pwdLastSet)).toThrow(RangeError);
    }
  });

  it("refuses an invalid date", () => {
    expect(() => secondsUntilPasswordChange(new Date("not a date"), 30, pwdLastSet)).toThrow(RangeError);
  });
});
