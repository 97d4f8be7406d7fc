/**
 * The `/api/status` document as its readers (the HTML status page and `gmsa-gitops status`)
 * see it: read from untyped JSON, field by field, so a field the controller does not (yet)
 * report shows as absent instead of breaking the page or the command. Also the filters both
 * readers offer (by kind, not-Ready only) and the kubectl-style age, so the page and the
 * terminal agree on what "not ready" and "3m" mean.
 */

import type { LastChange } from "../vocabulary.ts";

/** One condition of a resource. `status` is "True", "False" or "Unknown". */
export interface ConditionView {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string | null;
}

/** One attribute change: a value from Git, AD or a host, as the controller reported it. */
export interface ChangeView {
  readonly attribute: string;
  readonly from: string | readonly string[] | null;
  readonly to: string | readonly string[] | null;
  /** Who last changed the attribute in AD (replication metadata), when the controller knew. */
  readonly lastChange: LastChange | null;
}

/** The last drift of a resource, kept after it was corrected (optional: not every controller reports it). */
export interface LastDriftView {
  readonly changes: readonly ChangeView[];
  readonly observedAt: string | null;
  readonly correctedAt: string | null;
}

/** Where a HostBinding runs and whether that host can retrieve the password (optional). */
export interface HostView {
  readonly name: string;
  readonly reachable: boolean | null;
  /** "yes", "no" or "pending" (allowed in AD, waiting for a fresh Kerberos ticket). */
  readonly retrievable: string | null;
}

/** How a resource stands, in one word: the Ready condition, with Stalled winning over it. */
export type ResourceState = "Ready" | "NotReady" | "Stalled" | "Unknown";

/** One resource. */
export interface ResourceView {
  readonly kind: string;
  readonly name: string;
  readonly dn: string | null;
  readonly source: { readonly file: string; readonly line: number } | null;
  readonly conditions: readonly ConditionView[];
  readonly drift: readonly string[];
  readonly changes: readonly ChangeView[];
  readonly observeOnly: boolean;
  readonly lastAppliedRevision: string | null;
  readonly lastObservedAt: string | null;
  readonly lastDrift: LastDriftView | null;
  /** How often the controller corrected this resource's drift since it started, and since when. */
  readonly corrections: { readonly count: number; readonly since: string | null };
  readonly host: HostView | null;
  readonly state: ResourceState;
}

/** The controller's own part of the document. */
export interface ControllerView {
  readonly source: {
    readonly url: string | null;
    readonly revision: string | null;
    readonly lastFetchedAt: string | null;
    readonly lastFetchError: string | null;
    readonly rejected: {
      readonly revision: string;
      readonly reason: string;
      readonly message: string;
      readonly errors: readonly { readonly file: string; readonly line: number; readonly message: string }[];
    } | null;
  };
  readonly mode: string | null;
  readonly lastReconcile: {
    readonly startedAt: string | null;
    readonly durationSeconds: number | null;
    readonly result: string;
    readonly error: string | null;
  } | null;
  readonly kdsRootKey: { readonly effective: boolean; readonly effectiveAt: string | null } | null;
}

/** The whole document. */
export interface StatusView {
  readonly controller: ControllerView;
  readonly resources: readonly ResourceView[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const obj = (v: unknown): Json | null => (isObject(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const bool = (v: unknown): boolean | null => (typeof v === "boolean" ? v : null);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);

function value(v: unknown): string | readonly string[] | null {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
  return null;
}

/** A change's `lastChange`, or null when absent or without a time. */
function lastChange(v: unknown): LastChange | null {
  const o = obj(v);
  const time = str(o?.["time"]);
  if (!o || time === null) return null;
  return {
    time,
    dc: str(o["dc"]),
    version: num(o["version"]),
    byController: bool(o["byController"]),
    objectLevel: bool(o["objectLevel"]) ?? false,
  };
}

function changes(v: unknown): ChangeView[] {
  return list(v).flatMap((c) => {
    const o = obj(c);
    const attribute = str(o?.["attribute"]);
    return o && attribute !== null
      ? [{ attribute, from: value(o["from"]), to: value(o["to"]), lastChange: lastChange(o["lastChange"]) }]
      : [];
  });
}

function conditions(v: unknown): ConditionView[] {
  return list(v).flatMap((c) => {
    const o = obj(c);
    const type = str(o?.["type"]);
    if (!o || type === null) return [];
    return [
      {
        type,
        status: str(o["status"]) ?? "Unknown",
        reason: str(o["reason"]) ?? "",
        message: str(o["message"]) ?? "",
        lastTransitionTime: str(o["lastTransitionTime"]),
      },
    ];
  });
}

/** The one-word state of a resource: Stalled if Stalled=True, else what Ready says. */
export function stateOf(conds: readonly ConditionView[]): ResourceState {
  if (conds.some((c) => c.type === "Stalled" && c.status === "True")) return "Stalled";
  const ready = conds.find((c) => c.type === "Ready");
  if (ready?.status === "True") return "Ready";
  if (ready?.status === "False") return "NotReady";
  return "Unknown";
}

/** Reads one entry of `resources`; null when it has no kind or name. Never throws. */
export function readResourceView(v: unknown): ResourceView | null {
  const o = obj(v);
  const kind = str(o?.["kind"]);
  const name = str(o?.["name"]);
  if (!o || kind === null || name === null) return null;
  const src = obj(o["source"]);
  const file = str(src?.["file"]);
  const lastDrift = obj(o["lastDrift"]);
  const host = obj(o["host"]);
  const hostName = str(host?.["name"]);
  const conds = conditions(o["conditions"]);
  return {
    kind,
    name,
    dn: str(o["dn"]),
    source: file !== null ? { file, line: num(src?.["line"]) ?? 0 } : null,
    conditions: conds,
    drift: list(o["drift"]).flatMap((d) => (typeof d === "string" ? [d] : [])),
    changes: changes(o["changes"]),
    observeOnly: bool(o["observeOnly"]) ?? false,
    lastAppliedRevision: str(o["lastAppliedRevision"]),
    lastObservedAt: str(o["lastObservedAt"]),
    lastDrift: lastDrift
      ? {
          changes: changes(lastDrift["changes"]),
          observedAt: str(lastDrift["observedAt"]),
          correctedAt: str(lastDrift["correctedAt"]),
        }
      : null,
    corrections: {
      count: num(obj(o["corrections"])?.["count"]) ?? 0,
      since: str(obj(o["corrections"])?.["since"]),
    },
    host:
      hostName !== null
        ? { name: hostName, reachable: bool(host?.["reachable"]), retrievable: str(host?.["retrievable"]) }
        : null,
    state: stateOf(conds),
  };
}

/**
 * Reads an `/api/status` document. Never throws: a missing or mistyped field reads as null
 * (or empty), an entry without kind and name is dropped. Strings are returned as they came:
 * escaping is the renderer's job.
 */
export function readStatusView(json: unknown): StatusView {
  const root = obj(json);
  const c = obj(root?.["controller"]);
  const source = obj(c?.["source"]);
  const rejected = obj(source?.["rejected"]);
  const last = obj(c?.["lastReconcile"]);
  const kds = obj(c?.["kdsRootKey"]);
  return {
    controller: {
      source: {
        url: str(source?.["url"]),
        revision: str(source?.["revision"]),
        lastFetchedAt: str(source?.["lastFetchedAt"]),
        lastFetchError: str(source?.["lastFetchError"]),
        rejected: rejected
          ? {
              revision: str(rejected["revision"]) ?? "",
              reason: str(rejected["reason"]) ?? "",
              message: str(rejected["message"]) ?? "",
              errors: list(rejected["errors"]).flatMap((e) => {
                const eo = obj(e);
                return eo
                  ? [{ file: str(eo["file"]) ?? "", line: num(eo["line"]) ?? 0, message: str(eo["message"]) ?? "" }]
                  : [];
              }),
            }
          : null,
      },
      mode: str(c?.["mode"]),
      lastReconcile: last
        ? {
            startedAt: str(last["startedAt"]),
            durationSeconds: num(last["durationSeconds"]),
            result: str(last["result"]) ?? "unknown",
            error: str(last["error"]),
          }
        : null,
      kdsRootKey: kds ? { effective: bool(kds["effective"]) ?? false, effectiveAt: str(kds["effectiveAt"]) } : null,
    },
    resources: list(root?.["resources"]).flatMap((r) => {
      const view = readResourceView(r);
      return view ? [view] : [];
    }),
  };
}

/** Which resources a reader asked for. `kind` matches case-insensitively. */
export interface ResourceFilter {
  readonly kind?: string | undefined;
  readonly notReady?: boolean | undefined;
}

/** The resources that pass the filter, in the document's order. */
export function filterResources(resources: readonly ResourceView[], filter: ResourceFilter): ResourceView[] {
  const kind = filter.kind?.toLowerCase();
  return resources.filter(
    (r) => (kind === undefined || r.kind.toLowerCase() === kind) && (!filter.notReady || r.state !== "Ready"),
  );
}

/** True when the source is not current: a newer revision was refused, or the last fetch failed. */
export const sourceStale = (c: ControllerView): boolean =>
  c.source.rejected !== null || c.source.lastFetchError !== null;

/**
 * kubectl's age: "45s", "12m", "5h", "3d" since `iso`, or "-" when there is no time or it
 * does not parse. A time in the future (clock skew) reads as "0s".
 */
export function age(iso: string | null, now: Date): string {
  if (iso === null) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "-";
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 2 * 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** The Ready condition's reason and message (or the Stalled one's, when stalled). */
export function headline(r: ResourceView): { reason: string; message: string; since: string | null } {
  const c =
    r.conditions.find((x) => x.type === (r.state === "Stalled" ? "Stalled" : "Ready")) ??
    r.conditions.find((x) => x.type === "Ready");
  return { reason: c?.reason ?? "", message: c?.message ?? "", since: c?.lastTransitionTime ?? null };
}

/** A value as one line of text: lists joined with ", ", absence as "(none)". */
export function showValue(v: string | readonly string[] | null): string {
  if (v === null) return "(none)";
  if (typeof v === "string") return v;
  return v.length === 0 ? "(none)" : v.join(", ");
}
