/**
 * Warnings: findings that do not make a revision invalid (validate still exits 0) but that a
 * reviewer should see. Today one: a manifest naming one of the domain's well-known accounts,
 * which the controller never touches (docs/decisions/ownership-and-prune.md), so the manifest
 * can only ever be reported as protected.
 */
import type { DesiredState } from "./types.ts";

/** A warning with its position (the resource's document), like an error but never failing validate. */
export interface ManifestWarning {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly message: string;
  readonly code: "protected-account";
}

/**
 * sAMAccountNames every domain is created with (well-known RIDs below 1000 and the builtin
 * S-1-5-32 groups), compared without regard to case as AD does.
 */
const WELL_KNOWN_ACCOUNTS = new Set(
  [
    "Administrator",
    "Guest",
    "krbtgt",
    "Domain Admins",
    "Domain Users",
    "Domain Guests",
    "Domain Computers",
    "Domain Controllers",
    "Cert Publishers",
    "Schema Admins",
    "Enterprise Admins",
    "Group Policy Creator Owners",
    "Read-only Domain Controllers",
    "Enterprise Read-only Domain Controllers",
    "Cloneable Domain Controllers",
    "Protected Users",
    "Key Admins",
    "Enterprise Key Admins",
    "RAS and IAS Servers",
    "Allowed RODC Password Replication Group",
    "Denied RODC Password Replication Group",
    "Administrators",
    "Users",
    "Guests",
    "Account Operators",
    "Server Operators",
    "Print Operators",
    "Backup Operators",
    "Replicator",
    "Remote Desktop Users",
    "Network Configuration Operators",
    "Performance Monitor Users",
    "Performance Log Users",
    "Distributed COM Users",
    "IIS_IUSRS",
    "Cryptographic Operators",
    "Event Log Readers",
    "Certificate Service DCOM Access",
    "RDS Remote Access Servers",
    "RDS Endpoint Servers",
    "RDS Management Servers",
    "Hyper-V Administrators",
    "Access Control Assistance Operators",
    "Remote Management Users",
    "Storage Replica Administrators",
    "Pre-Windows 2000 Compatible Access",
    "Incoming Forest Trust Builders",
    "Windows Authorization Access Group",
    "Terminal Server License Servers",
    // Not below RID 1000, yet as privileged: the DNS server role's groups.
    "DnsAdmins",
    "DnsUpdateProxy",
  ].map((n) => n.toLowerCase()),
);

/** The warnings of a valid desired state, sorted by file and line. */
export function manifestWarnings(desired: DesiredState): ManifestWarning[] {
  const out: ManifestWarning[] = [];
  for (const r of [...desired.groups.values(), ...desired.gmsas.values(), ...desired.smsas.values()]) {
    if (!WELL_KNOWN_ACCOUNTS.has(r.spec.accountName.toLowerCase())) continue;
    out.push({
      file: r.source.file,
      line: r.source.line,
      column: r.source.column,
      path: "spec.accountName",
      code: "protected-account",
      message: `spec.accountName: ${JSON.stringify(r.spec.accountName)} is one of the domain's well-known accounts; gmsa-gitops never touches it (plan reports it as protected)`,
    });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}
