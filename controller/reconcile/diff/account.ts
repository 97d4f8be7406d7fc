/**
 * What gMSAs and sMSAs keep alike: description and displayName, userAccountControl (the bits the
 * kind manages), Kerberos encryption types and SPNs. Each difference adds its drift type, its
 * plan line and the value to write; SPNs change by value (add and delete lists).
 */
import type { GroupManagedServiceAccountSpec } from "../../manifests/index.ts";
import type { ObservedGmsa } from "../../directory/index.ts";
import {
  describeEncryptionTypes,
  describeUac,
  encodeEncryptionTypes,
  MANAGED_ENCRYPTION_BITS,
  WORKSTATION_TRUST_ACCOUNT,
  withManagedEncryptionTypes,
} from "../../directory/index.ts";
import type { AttributeChange, DriftType } from "../model.ts";
import { lower } from "./references.ts";
import { sorted } from "./resource-diff.ts";

/** The account fields both kinds of managed service account have. */
export type AccountSpec = Pick<
  GroupManagedServiceAccountSpec,
  | "description"
  | "displayName"
  | "kerberosEncryptionTypes"
  | "servicePrincipalNames"
  | "removeServicePrincipalNames"
  | "servicePrincipalNamesPolicy"
>;

/** Where a kind's diff collects what it found. */
export interface DriftSink {
  readonly drift: Set<DriftType>;
  readonly set: Record<string, string | null>;
  readonly changes: AttributeChange[];
}

/**
 * How the manifest wants userAccountControl: `enabled` maps the value read to the enabled state
 * (drift type attribute); `delegation`, for gMSAs, then sets the delegation flags (drift type
 * delegation). One attribute, two drift types.
 */
export interface WantedUac {
  readonly enabled: (uac: number) => number;
  readonly delegation?: (uac: number) => number;
}

/**
 * Compares the shared account fields, userAccountControl as `wantUac` says. Returns the SPNs to
 * add and remove.
 */
export function accountDrift(
  spec: AccountSpec,
  observed: ObservedGmsa,
  wantUac: WantedUac,
  { drift, set, changes }: DriftSink,
): { addSpns: string[]; removeSpns: string[] } {
  for (const [attribute, want, have] of [
    ["description", spec.description, observed.description],
    ["displayName", spec.displayName, observed.displayName],
  ] as const) {
    // An optional text field left out of the manifest is not managed; "" clears it.
    if (want !== undefined && want !== (have ?? "")) {
      drift.add("attribute");
      set[attribute] = want === "" ? null : want;
      changes.push({ attribute, from: have, to: want === "" ? undefined : want });
    }
  }
  const uac = observed.userAccountControl ?? WORKSTATION_TRUST_ACCOUNT;
  const enabledUac = wantUac.enabled(uac);
  const wanted = wantUac.delegation ? wantUac.delegation(enabledUac) : enabledUac;
  if (wanted !== uac) {
    if (enabledUac !== uac) drift.add("attribute");
    if (wanted !== enabledUac) drift.add("delegation");
    set["userAccountControl"] = String(wanted);
    changes.push({ attribute: "userAccountControl", from: describeUac(uac), to: describeUac(wanted) });
  }
  const encryption = encodeEncryptionTypes(spec.kerberosEncryptionTypes);
  const observedBits = observed.encryptionTypes ?? 0;
  // An empty list (with its opt-in) wants no managed bit: the attribute cleared, or only AD's
  // other flags left in it; an absent attribute is then in sync.
  const absentWanted = encryption === 0 && observed.encryptionTypes === undefined;
  if (
    !absentWanted &&
    ((observedBits & MANAGED_ENCRYPTION_BITS) !== encryption || observed.encryptionTypes === undefined)
  ) {
    drift.add("encryption");
    const next = withManagedEncryptionTypes(observedBits, encryption);
    set["msDS-SupportedEncryptionTypes"] = next === 0 ? null : String(next);
    changes.push({
      attribute: "msDS-SupportedEncryptionTypes",
      from: observed.encryptionTypes === undefined ? undefined : describeEncryptionTypes(observedBits).join(","),
      to: next === 0 ? undefined : describeEncryptionTypes(next).join(","),
    });
  }

  const { addSpns, removeSpns } = spnChanges(spec, observed.servicePrincipalNames);
  if (addSpns.length > 0 || removeSpns.length > 0) {
    drift.add("spn");
    const removed = new Set(removeSpns.map(lower));
    changes.push({
      attribute: "servicePrincipalName",
      from: sorted(observed.servicePrincipalNames),
      to: sorted([...observed.servicePrincipalNames.filter((s) => !removed.has(lower(s))), ...addSpns]),
    });
  }
  return { addSpns, removeSpns };
}

/**
 * SPNs to add and remove, compared case-insensitively as AD does: the listed ones are added;
 * `exact` removes every other, `additive` (the default) only those in removeServicePrincipalNames,
 * so an SPN a service registered itself (SQL Server's MSSQLSvc/...) stays unless asked.
 */
function spnChanges(spec: AccountSpec, observed: readonly string[]): { addSpns: string[]; removeSpns: string[] } {
  const have = new Set(observed.map(lower));
  const want = new Set(spec.servicePrincipalNames.map(lower));
  const unwanted = new Set(spec.removeServicePrincipalNames.map(lower));
  const addSpns = [...new Map(spec.servicePrincipalNames.map((s) => [lower(s), s])).values()].filter(
    (s) => !have.has(lower(s)),
  );
  const removeSpns = observed.filter((s) =>
    spec.servicePrincipalNamesPolicy === "exact" ? !want.has(lower(s)) : unwanted.has(lower(s)),
  );
  return { addSpns, removeSpns };
}
