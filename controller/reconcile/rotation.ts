/**
 * Password-rotation health: when each gMSA's managed password last changed and is next due
 * (pwdLastSet + msDS-ManagedPasswordInterval, both maintained by the DC), and for each host
 * binding whether the host could retrieve the password before and after the last rotation —
 * the classic "the service stopped after 30 days" shows as before = yes, after = no. Pure, plus
 * a small process memory for the loop.
 */
import type { ObservedGmsa } from "../directory/index.ts";

const DAY_MS = 86_400_000;

/** When the password last changed and is next due; undefined before the DC first generated one. */
export function passwordSchedule(gmsa: ObservedGmsa | undefined): { last: Date; next: Date } | undefined {
  if (!gmsa?.pwdLastSet || !gmsa.passwordIntervalDays) return undefined;
  return { last: gmsa.pwdLastSet, next: new Date(gmsa.pwdLastSet.getTime() + gmsa.passwordIntervalDays * DAY_MS) };
}

/** Could the host retrieve the password before / after the last rotation; undefined: not seen. */
export interface RetrievalAroundRotation {
  readonly before: boolean | undefined;
  readonly after: boolean | undefined;
}

/**
 * Remembers, per binding, the rotation (pwdLastSet) it last saw and the last retrieval result,
 * so that a new pwdLastSet turns the latest result into "before" and the next ones into "after".
 * A controller started after the rotation knows only "after". `pending` (a host newly allowed,
 * waiting for a fresh Kerberos ticket) is a different story and changes nothing here.
 */
export class RotationWatch {
  readonly #seen = new Map<string, { rotation: number; last: boolean; before: boolean | undefined }>();

  /** Records one observation; returns the binding's before/after. */
  observe(
    binding: string,
    rotation: Date | undefined,
    retrievable: "yes" | "no" | "pending" | undefined,
  ): RetrievalAroundRotation {
    const state = this.#seen.get(binding);
    if (rotation === undefined || retrievable === undefined || retrievable === "pending")
      return { before: state?.before, after: state?.last };
    const ok = retrievable === "yes";
    const at = rotation.getTime();
    const before = state === undefined ? undefined : state.rotation === at ? state.before : state.last;
    this.#seen.set(binding, { rotation: at, last: ok, before });
    return { before, after: ok };
  }

  /** Forgets bindings not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.#seen.keys()) if (!keep.has(key)) this.#seen.delete(key);
  }
}
