/**
 * Per-document rules of a gMSA's role that the schema cannot say: an outbound-only account
 * (New-ADServiceAccount -RestrictToOutboundAuthenticationOnly) has no dnsHostName and no SPNs;
 * every other account needs a dnsHostName.
 */
import type { ErrorCode, GroupManagedServiceAccountSpec } from "./types.ts";
import type { PathSegment } from "./yaml.ts";

/** Reports each rule broken by one gMSA spec through `report` (path, code, message). */
export function gmsaRoleRules(
  spec: GroupManagedServiceAccountSpec,
  report: (path: PathSegment[], at: "key" | "value", code: ErrorCode, message: string) => void,
): void {
  if (!spec.restrictToOutboundAuthenticationOnly) {
    if (spec.dnsHostName === undefined)
      report(
        ["spec"],
        "key",
        "missing-field",
        'missing required field "dnsHostName" (or restrictToOutboundAuthenticationOnly: true for an account used only as a client)',
      );
    return;
  }
  const why = "an outbound-only account is never a service that clients look up";
  if (spec.dnsHostName !== undefined)
    report(["spec", "dnsHostName"], "key", "conflicting-fields", `${why}: remove dnsHostName`);
  if (spec.servicePrincipalNames.length > 0)
    report(["spec", "servicePrincipalNames"], "key", "conflicting-fields", `${why}: remove servicePrincipalNames`);
}
