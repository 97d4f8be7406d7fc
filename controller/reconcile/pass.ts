/**
 * One reconcile pass, the same for `plan`, `apply` and every cycle of the controller: observe AD,
 * plan, (gate,) apply, then, when hosts are configured, the host side against AD as it is after
 * apply. The loop and the CLI differ only in what they do with the result.
 */
import type { AttributeHistory, DirectoryWriter, RootDse } from "../directory/index.ts";
import type { DesiredState } from "../manifests/index.ts";
import type { ActionResult } from "./apply.ts";
import type { WriteLedger } from "./attribution.ts";
import { attributeDrift, recordWrites } from "./attribution.ts";
import { applyPlan } from "./apply.ts";
import type { DiffMemo } from "./diff/index.ts";
import type { HostBindingOutcome, HostMemory, HostOutcome, HostSettings } from "./hosts.ts";
import { forgetRemovedBindings, reconcileHosts } from "./hosts.ts";
import type { ChangeReader } from "./incremental.ts";
import type { ObservedDirectory, Plan } from "./model.ts";
import type { DirectoryReader } from "./observe.ts";
import { observeDirectory } from "./observe.ts";
import type { Policy } from "./plan.ts";
import { planDirectory } from "./plan.ts";

/** A bound directory connection, as a pass uses it (the LDAP client provides it). */
export interface DirectorySession extends DirectoryReader, Partial<Pick<ChangeReader, "watermark" | "changedSince">> {
  readGmsas(baseDn: string, sinceUsn?: string): ReturnType<ChangeReader["readGmsas"]>;
  rootDse(): Promise<Pick<RootDse, "defaultNamingContext" | "configurationNamingContext">>;
  /** One object's replication metadata (who changed what); absent: drift is not attributed. */
  readChangeHistory?(dn: string, configDn: string): Promise<AttributeHistory[]>;
  readonly writer: DirectoryWriter;
  close(): Promise<void>;
}

/** Opens a bound session; the pass closes it. */
export type OpenDirectory = (signal?: AbortSignal) => Promise<DirectorySession>;

/** Everything one pass needs. */
export interface PassInput {
  readonly desired: DesiredState;
  readonly policy: Policy;
  readonly now: Date;
  /** `apply` executes the plan and fixes hosts; `plan` only observes. */
  readonly write: boolean;
  /** Absent for the host agent, which never talks to AD. */
  readonly openDirectory?: OpenDirectory;
  /** The domain's base DN; default: the rootDSE's defaultNamingContext. */
  readonly baseDn?: string;
  readonly hosts?: HostSettings;
  readonly hostMemory: HostMemory;
  /** The controller's own writes (time and version), to tell its changes from a second writer's. */
  readonly writes?: WriteLedger;
  /** Only the bindings of this host (the agent). */
  readonly onlyHost?: string;
  /** Turns a plan into the one to execute: the loop's back-off and stalled gate, the CLI's `--target`. */
  readonly gate?: (plan: Plan) => Plan;
  /** How AD is read (the loop reads incrementally); default: a full read. */
  readonly observe?: (
    desired: DesiredState,
    session: DirectorySession,
    scope: { baseDn: string; configDn: string },
  ) => Promise<ObservedDirectory>;
  /**
   * Given what observe read, a pass to return as this one's instead of planning (the loop's quiet
   * cycles, quiet.ts); undefined: plan as usual.
   */
  readonly reuse?: (observed: ObservedDirectory) => PassResult | undefined;
  /** The loop's diffs of its last plan, reused per resource when nothing it reads changed. */
  readonly memo?: DiffMemo;
  readonly signal?: AbortSignal;
  /** Called after each action, as it completes (logs, metrics, the CLI's running report). */
  readonly onResult?: (result: ActionResult) => void;
}

/** What a pass saw and did. */
export interface PassResult {
  /** AD as read before apply; undefined for the agent. */
  readonly observed: ObservedDirectory | undefined;
  /** The plan as executed (after the gate). */
  readonly plan: Plan;
  readonly results: readonly ActionResult[];
  /** True when the signal stopped apply between two actions. */
  readonly aborted: boolean;
  readonly hosts: { readonly bindings: HostBindingOutcome[]; readonly hosts: HostOutcome[] } | undefined;
  /**
   * A failure after apply had started (reading AD again for the host side): the results above
   * still stand and must be reported; the host side did not run.
   */
  readonly afterApply: { readonly step: "reobserve"; readonly error: unknown } | undefined;
}

/** Where a pass reads: the configured base DN or the rootDSE's default naming context, and its configuration one. */
export function scopeOf(
  rootDse: Pick<RootDse, "defaultNamingContext" | "configurationNamingContext">,
  baseDn: string | undefined,
): { baseDn: string; configDn: string } {
  return { baseDn: baseDn ?? rootDse.defaultNamingContext, configDn: rootDse.configurationNamingContext };
}

const EMPTY_PLAN: Plan = { resources: [], kds: { effective: false }, notes: [] };

/**
 * Runs one pass. Throws only when nothing was written (the directory could not be opened or
 * read); once apply has begun, later failures are returned in `afterApply`, never thrown, so the
 * per-action report is never lost.
 */
export async function reconcilePass(input: PassInput): Promise<PassResult> {
  const { desired, policy, now, signal } = input;
  let observed: ObservedDirectory | undefined;
  let plan = EMPTY_PLAN;
  let results: readonly ActionResult[] = [];
  let aborted = false;
  let afterApply: PassResult["afterApply"];
  let forHosts: ObservedDirectory | undefined;

  if (input.openDirectory) {
    const session = await input.openDirectory(signal);
    try {
      const scope = scopeOf(await session.rootDse(), input.baseDn);
      const observe = input.observe ?? observeDirectory;
      observed = await observe(desired, session, scope);
      const reused = input.reuse?.(observed);
      if (reused) return reused;
      plan = planDirectory(desired, observed, policy, now, input.memo);
      if (input.gate) plan = input.gate(plan);
      // Who changed AD: a second read, of drifted objects only.
      const history = session.readChangeHistory
        ? (dn: string) => session.readChangeHistory!(dn, scope.configDn)
        : undefined;
      if (history) plan = await attributeDrift(plan, history, input.writes);
      forHosts = observed;
      if (input.write) {
        const applied = await applyPlan(plan, session.writer, {
          now,
          owner: policy.owner,
          ...(signal ? { signal } : {}),
          ...(input.onResult ? { onResult: input.onResult } : {}),
        });
        results = applied.results;
        aborted = applied.aborted;
        if (history && input.writes) await recordWrites(results, history, input.writes);
        // Hosts come after AD: a gMSA created just now must be seen before a host is touched.
        if (input.hosts && desired.bindings.size > 0 && results.some((r) => r.status === "applied") && !aborted) {
          try {
            forHosts = await observe(desired, session, scope);
          } catch (error) {
            afterApply = { step: "reobserve", error };
            forHosts = undefined;
          }
        }
      }
    } finally {
      await session.close().catch(() => undefined);
    }
  }

  forgetRemovedBindings(input.hostMemory, desired);
  const hostSettings =
    !signal?.aborted && !aborted && afterApply === undefined && desired.bindings.size > 0 ? input.hosts : undefined;
  const only = input.onlyHost?.toLowerCase();
  const hosts = hostSettings
    ? await reconcileHosts(
        desired,
        forHosts,
        input.write ? plan : undefined,
        input.write && policy.mode !== "observe" ? "apply" : "observe",
        policy.mode,
        hostSettings,
        input.hostMemory,
        {
          now,
          ...(signal ? { signal } : {}),
          ...(only !== undefined ? { only: (host: string) => host.toLowerCase() === only } : {}),
        },
      )
    : undefined;
  return { observed, plan, results, aborted, hosts, afterApply };
}
