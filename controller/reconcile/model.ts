/**
 * The vocabulary of reconciliation: what was observed in AD, what differs from Git (drift),
 * and what would be done about it (actions). Everything here is plain data, so `diff` and
 * `plan` stay pure and their results can be printed, serialised and compared in tests.
 */
import type {
  ObservedComputer,
  ObservedGmsa,
  ObservedGroup,
  ObservedKdsRootKey,
  ResolvedPrincipal,
} from "../directory/index.ts";
import type { BlockReason, DriftType, LastChange, Outcome, ResourceRef } from "../vocabulary.ts";

export type { BlockReason, DriftType, Kind, Outcome, ResourceRef } from "../vocabulary.ts";

/** Everything one reconcile read from the directory, in one consistent pass. */
export interface ObservedDirectory {
  readonly baseDn: string;
  readonly configDn: string;
  /** Every gMSA in the domain (one paged search). */
  readonly gmsas: readonly ObservedGmsa[];
  /** Groups named by the repository (managed and external) plus every group carrying the marker. */
  readonly groups: readonly ObservedGroup[];
  /** Computer accounts referenced by the repository. */
  readonly computers: readonly ObservedComputer[];
  readonly kdsRootKeys: readonly ObservedKdsRootKey[];
  /** Principals the repository names by user name, SID or DN (users, foreign principals...). */
  readonly principals: readonly ResolvedPrincipal[];
  /** Names of SIDs found in security descriptors that are none of the above (for display only). */
  readonly sidNames: ReadonlyMap<string, string>;
}

/** One attribute-level difference, old → new, as a person reads it in a plan. */
export interface AttributeChange {
  readonly attribute: string;
  readonly from: string | readonly string[] | undefined;
  readonly to: string | readonly string[] | undefined;
  /** Who last changed the attribute in AD, from its replication metadata (drifted objects only). */
  readonly lastChange?: LastChange;
}

/** Who last changed an attribute (the shared word, in vocabulary.ts). */
export type { LastChange } from "../vocabulary.ts";

/**
 * A principal or member as apply must write it: a DN/SID already known, a repo group resolved at
 * apply time, or a password reader known only by the SID in the descriptor (kept by an additive
 * reader policy; never a group member, which needs a DN).
 */
export type PrincipalTarget =
  | { readonly type: "object"; readonly dn: string; readonly sid: string; readonly label: string }
  | { readonly type: "repo-group"; readonly name: string; readonly label: string }
  | { readonly type: "sid"; readonly sid: string; readonly label: string };

/**
 * A reason a resource gets no write in this cycle. `stalled` waits for a person (a change in Git
 * or in AD), `waiting` for a known time (`until`), `backing-off` for the end of the back-off
 * after a transient failure (`until`). `failure` is the message of the failed write that put the
 * resource here, so its ApplyFailed condition stays true while it waits.
 */
export interface Blocker {
  readonly outcome: Exclude<Outcome, "transient"> | "backing-off";
  readonly reason: BlockReason;
  readonly message: string;
  readonly until?: Date;
  readonly failure?: string;
}

/** What reconcile would write. Semantic, not raw LDAP: apply maps each to directory calls. */
export type Action =
  | {
      /** A new root key starting at `useStartTime` (ISO 8601), tagged for its resource, marked when its policy is Delete. */
      readonly type: "create-kds-root-key";
      readonly resource: ResourceRef;
      readonly useStartTime: string;
      readonly tag: string;
      readonly mark: boolean;
      readonly changes: readonly AttributeChange[];
    }
  | {
      /** The marker (adminDescription) and tag (adminDisplayName) of an existing key: a value, or null to clear. */
      readonly type: "update-kds-root-key";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly set: Readonly<Record<string, string | null>>;
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "create-group";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly accountName: string;
      readonly groupType: number;
      readonly description: string | undefined;
      /** displayName and info (notes), when the manifest gives them. */
      readonly text?: Readonly<Record<string, string>>;
      /** The principal written to managedBy (a DN). */
      readonly managedBy?: PrincipalTarget;
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "update-group";
      readonly resource: ResourceRef;
      readonly dn: string;
      /** groupType steps, in order (a Global ↔ DomainLocal change goes through Universal, as AD requires). */
      readonly groupTypeSteps: readonly number[];
      readonly description?: string | null;
      /** displayName and info (notes) to replace; null clears the attribute. */
      readonly text?: Readonly<Record<string, string | null>>;
      /** The principal to write to managedBy (a DN). */
      readonly managedBy?: PrincipalTarget;
      readonly adopt: boolean;
      /** With adopt: the ownership marker to write (bound to the group's objectGUID). */
      readonly marker?: string;
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "add-members";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly members: readonly PrincipalTarget[];
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "remove-members";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly memberDns: readonly string[];
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "create-gmsa";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly accountName: string;
      /** Absent for an outbound-only account (restrictToOutboundAuthenticationOnly). */
      readonly dnsHostName: string | undefined;
      readonly encryptionTypes: number;
      readonly servicePrincipalNames: readonly string[];
      readonly passwordIntervalDays: number;
      /** WORKSTATION_TRUST_ACCOUNT, with ACCOUNTDISABLE when the manifest says enabled: false. */
      readonly userAccountControl: number;
      readonly description: string | undefined;
      readonly displayName: string | undefined;
      readonly principals: readonly PrincipalTarget[];
      /** msDS-AllowedToDelegateTo (constrained delegation), written when not empty. */
      readonly allowedToDelegateTo?: readonly string[];
      /** msDS-AllowedToActOnBehalfOfOtherIdentity (resource-based), written when not empty. */
      readonly delegators?: readonly PrincipalTarget[];
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "update-gmsa";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly set: Readonly<Record<string, string | null>>;
      readonly addSpns: readonly string[];
      readonly removeSpns: readonly string[];
      /** When present, msDS-GroupMSAMembership is rewritten (whole value) for these principals. */
      readonly principals?: readonly PrincipalTarget[];
      /** msDS-AllowedToDelegateTo values to add and delete. */
      readonly addDelegateTo?: readonly string[];
      readonly removeDelegateTo?: readonly string[];
      /** When present, msDS-AllowedToActOnBehalfOfOtherIdentity is rewritten for these principals (cleared when empty). */
      readonly delegators?: readonly PrincipalTarget[];
      readonly adopt: boolean;
      readonly changes: readonly AttributeChange[];
    }
  | {
      /**
       * A standalone managed service account, as New-ADServiceAccount -RestrictToSingleComputer
       * writes it (no password: the computer sets it at Install-ADServiceAccount).
       */
      readonly type: "create-smsa";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly accountName: string;
      readonly encryptionTypes: number;
      readonly servicePrincipalNames: readonly string[];
      /** WORKSTATION_TRUST_ACCOUNT, with ACCOUNTDISABLE when the manifest says enabled: false. */
      readonly userAccountControl: number;
      readonly description: string | undefined;
      readonly displayName: string | undefined;
      readonly changes: readonly AttributeChange[];
    }
  | {
      /**
       * The computer's msDS-HostServiceAccount link to an sMSA: added as Add-ADComputerServiceAccount
       * does, or deleted as Remove-ADComputerServiceAccount does. `dn` is the computer's.
       */
      readonly type: "link-host-account";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly accountDn: string;
      readonly operation: "add" | "delete";
      readonly changes: readonly AttributeChange[];
    }
  | {
      /** A new account name for an owned object found by its resource key: sAMAccountName, then the CN when it followed the name. */
      readonly type: "rename";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly newDn: string;
      readonly samAccountName: string;
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "move";
      readonly resource: ResourceRef;
      readonly dn: string;
      readonly newDn: string;
      readonly changes: readonly AttributeChange[];
    }
  | {
      readonly type: "delete";
      readonly resource: ResourceRef;
      readonly dn: string;
      /** A delete that is the first half of an approved replacement (immutable field). */
      readonly replacement: boolean;
      readonly changes: readonly AttributeChange[];
    };

/** The per-resource outcome of diff + plan: the drift found, what will be done, and why not more. */
export interface ResourcePlan {
  readonly resource: ResourceRef;
  /** The DN the resource has (or will have) in AD. */
  readonly dn: string | undefined;
  readonly drift: ReadonlySet<DriftType>;
  readonly changes: readonly AttributeChange[];
  readonly actions: readonly Action[];
  /** True when drift is only reported (observe mode, globally or per resource). */
  readonly observeOnly: boolean;
  readonly blocker?: Blocker;
  /** Informational lines for the plan (e.g. a deletion deferred by the budget). */
  readonly notes: readonly string[];
}

/** The whole plan: per resource, in dependency order, plus refusals that apply to the revision. */
export interface Plan {
  readonly resources: readonly ResourcePlan[];
  readonly kds: { readonly effective: boolean; readonly effectiveAt?: Date | undefined };
  readonly notes: readonly string[];
}

/** Counts actions of a plan that apply would execute. */
export function countActions(plan: Plan): number {
  return plan.resources.reduce((n, r) => n + (r.observeOnly ? 0 : r.actions.length), 0);
}
