import { describe, expect, it } from "vitest";
import { DirectoryError } from "../directory/index.ts";
import { createMetricsRecorder } from "../metrics/index.ts";
import { BindGuard } from "./bind.ts";

const silent = { info() {}, warn() {}, error() {} };
const refused = new DirectoryError(
  "bind as CN=svc,CN=Users,DC=company,DC=local failed: invalid credentials (LDAP 49)",
  {
    outcome: "stalled",
    reason: "InvalidCredentials",
    operation: "bind",
    resultCode: 49,
  },
);

describe("the directory condition", () => {
  it("says what the last cycle hit when, after a refused bind, the password file cannot be read", () => {
    const guard = new BindGuard(createMetricsRecorder(), silent, 10_000);
    const t0 = Date.parse("2026-11-30T12:00:00Z");
    guard.failed("InvalidCredentials", refused, t0);
    guard.unobserved(refused);
    expect(guard.condition()).toMatchObject({ status: "True", reason: "InvalidCredentials" });

    // A new password file ends the back-off; the file is then gone when the cycle reads it.
    guard.credentialsChanged(t0 + 60_000);
    const unreadable = new DirectoryError("bind password file: cannot read /run/secrets/bind: ENOENT", {
      outcome: "stalled",
      reason: "InvalidConfiguration",
      operation: "bind",
    });
    guard.unobserved(unreadable);
    expect(guard.condition()).toEqual({
      type: "Stalled",
      status: "Unknown",
      reason: "ObservationFailed",
      message: "not observed: bind password file: cannot read /run/secrets/bind: ENOENT",
      consecutiveFailures: 0,
      nextAttemptAt: null,
    });

    // Refused again: the refusal is what the last cycle hit.
    guard.failed("InvalidCredentials", refused, t0 + 120_000);
    guard.unobserved(refused);
    expect(guard.condition()).toMatchObject({ status: "True", reason: "InvalidCredentials", consecutiveFailures: 2 });
  });
});
