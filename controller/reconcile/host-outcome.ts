/**
 * What a host run came to for one binding, in the terms of the AD side: drift types, attribute
 * changes and notes for its plan entry, and attempts (as an AD action's results) for `summarize`.
 */
import type { HostItemResult, HostResult } from "../hosts/index.ts";
import { rightsHeld } from "../hosts/index.ts";
import type { HostBindingOutcome, HostMemory } from "./hosts.ts";
import type { AttributeChange, Blocker, DriftType } from "./model.ts";
import type { Attempt } from "./status.ts";

const DRIFT_OF: Record<string, DriftType> = {
  retrievable: "host-retrieval",
  // An sMSA not installed is, like a gMSA not retrievable, an account the host cannot use yet.
  install: "host-retrieval",
  localGroup: "host-group",
  logonRight: "host-right",
  service: "host-service",
  scheduledTask: "host-task",
  iisAppPool: "host-apppool",
  fileAccess: "host-file-access",
};
const show = (v: string | boolean | null): string | undefined => (v === null ? undefined : String(v));

/** One binding of a host's result as a plan entry; remembers the rights it held (GPO detection). */
export function bindingOutcome(
  result: HostResult,
  name: string,
  account: string,
  observeOnly: boolean,
  memory: HostMemory,
): HostBindingOutcome {
  const binding = result.bindings.find((b) => b.name === name);
  const drift = new Set<DriftType>();
  const changes: AttributeChange[] = [];
  const notes: string[] = [];
  for (const item of binding?.items ?? []) {
    if (item.action === "none") continue;
    drift.add(DRIFT_OF[item.item] ?? "attribute");
    const to = item.missing ? `${String(item.desired)}; missing ${item.missing}` : show(item.desired);
    changes.push({ attribute: `${item.item} ${item.name}`, from: show(item.observed), to });
    if (item.action === "failed")
      notes.push(`${item.item} ${item.name}: failed: ${item.error ?? item.reason ?? "error"}`);
    else if (item.item === "fileAccess") notes.push(fileAccessNote(item));
    else if (item.reason === "RevokedByPolicy")
      notes.push(`${item.name} was granted before and is gone: a policy (GPO) removed it`);
  }
  if (binding) memory.rightsHeld.set(name, rightsHeld(binding));
  const retrievable = binding?.retrievable === "pending" ? "pending" : binding?.retrievable ? "yes" : "no";
  const blocker: Blocker | undefined =
    retrievable === "pending"
      ? {
          outcome: "waiting",
          reason: "DependencyNotReady",
          message: "the host is allowed but waits for a fresh Kerberos ticket",
        }
      : undefined;
  return {
    plan: {
      resource: { kind: "HostBinding", name },
      dn: undefined,
      drift,
      changes,
      actions: [],
      observeOnly,
      notes,
      ...(blocker ? { blocker } : {}),
    },
    host: result.host,
    account,
    retrievable,
    error: undefined,
    result: binding,
  };
}

/** A folder's drift in words: the path, and the rights missing or granted beyond the declaration. */
function fileAccessNote(item: HostItemResult): string {
  const what = item.missing ? `missing ${item.missing}` : (item.error ?? `grants more than ${String(item.desired)}`);
  return `fileAccess ${item.name}: ${item.reason === "NotFound" ? "folder missing; " : ""}${what}${item.action === "changed" ? " (fixed)" : ""}`;
}

/**
 * What a host run came to for one binding, in the same terms as an AD action's result, so one
 * `summarize` serves both: a host that could not be reached or ran no script is one failed
 * attempt (stalled or transient, as its error says); each item the host changed or failed to
 * change is one attempt.
 */
export function hostAttempts(o: HostBindingOutcome): Attempt[] {
  if (o.error) return [{ status: "failed", outcome: o.error.outcome, message: o.error.message }];
  return (o.result?.items ?? []).flatMap((item): Attempt[] => {
    if (item.action === "changed") return [{ status: "applied" }];
    if (item.action === "failed")
      return [
        {
          status: "failed",
          outcome: "transient",
          message: `${item.item} ${item.name}: failed: ${item.error ?? item.reason ?? "error"}`,
        },
      ];
    return [];
  });
}
