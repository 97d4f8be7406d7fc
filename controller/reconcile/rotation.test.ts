import { describe, expect, it } from "vitest";
import { passwordSchedule, RotationWatch } from "./rotation.ts";

// Samba cannot be made to rotate a managed password in a test (the shortest interval is one
// day), so a rotation is simulated here by a new pwdLastSet, as the DC would write it.
describe("password rotation health", () => {
  const day1 = new Date("2026-11-01T00:00:00Z");
  const day31 = new Date("2026-12-01T00:00:00Z");

  it("a host that retrieved before the rotation and fails after it shows before=yes, after=no", () => {
    const watch = new RotationWatch();
    expect(watch.observe("server1-service1", day1, "yes")).toEqual({ before: undefined, after: true });
    expect(watch.observe("server1-service1", day1, "yes")).toEqual({ before: undefined, after: true });
    expect(watch.observe("server1-service1", day31, "no")).toEqual({ before: true, after: false });
    expect(watch.observe("server1-service1", day31, "no")).toEqual({ before: true, after: false });
    expect(watch.observe("server1-service1", day31, "yes")).toEqual({ before: true, after: true });
  });

  it("pending and unknown observations change nothing", () => {
    const watch = new RotationWatch();
    watch.observe("b", day1, "no");
    expect(watch.observe("b", day31, "pending")).toEqual({ before: undefined, after: false });
    expect(watch.observe("b", day31, "yes")).toEqual({ before: false, after: true });
  });

  it("the next change is pwdLastSet plus the interval; none before the DC generated a password", () => {
    const gmsa = { dn: "CN=a", samAccountName: "a", sid: "S-1-5-21-1-2-3-4", servicePrincipalNames: [], managed: true };
    expect(passwordSchedule({ ...gmsa, pwdLastSet: day1, passwordIntervalDays: 30 })).toEqual({
      last: day1,
      next: day31,
    });
    expect(passwordSchedule({ ...gmsa, passwordIntervalDays: 30 })).toBeUndefined();
  });
});
