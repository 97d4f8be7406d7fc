/**
 * Who changed AD: for drifted objects only, a second targeted read of their replication
 * metadata puts on each changed attribute when and on which DC it was last changed, and its
 * version. The controller records the version and time its own writes produced (WriteLedger),
 * so drift left by its own write (Git moved on) can be told from a second writer's edit.
 */
import type { AttributeHistory } from "../directory/index.ts";
import type { ActionResult } from "./apply.ts";
import type { AttributeChange, LastChange, Plan, ResourcePlan } from "./model.ts";

/** Reads one object's change history (the LDAP client's readChangeHistory). */
export type ReadHistory = (dn: string) => Promise<AttributeHistory[]>;

const key = (dn: string, attribute: string): string => `${dn.toLowerCase()}\u0000${attribute.toLowerCase()}`;
const stamp = (h: Pick<AttributeHistory, "time" | "version">): string => `${h.time.getTime()}/${h.version ?? "-"}`;

/** What the controller's own writes left in AD's metadata: (DN, attribute) → time and version. Process memory. */
export class WriteLedger {
  readonly #written = new Map<string, string>();

  /** Records the metadata an attribute has right after our write. */
  record(dn: string, history: AttributeHistory): void {
    this.#written.set(key(dn, history.attribute), stamp(history));
  }

  /**
   * Whether the attribute's last change is the one our write made: true when time and version
   * are exactly those recorded; false when we wrote the attribute and its per-attribute record
   * has moved on since (a second writer); null when there is no evidence either way: no write of
   * ours is recorded (made before this process started, or never), or only the object's
   * whenChanged is known (objectLevel), which any later write to any attribute of the object
   * moves, ours included.
   */
  isOurs(dn: string, history: AttributeHistory): boolean | null {
    const written = this.#written.get(key(dn, history.attribute));
    if (written === undefined) return null;
    if (written === stamp(history)) return true;
    return history.objectLevel ? null : false;
  }

  /** Number of (DN, attribute) pairs remembered. */
  get size(): number {
    return this.#written.size;
  }
}

function withLastChange(
  changes: readonly AttributeChange[],
  dn: string,
  history: readonly AttributeHistory[],
  ledger: WriteLedger | undefined,
): AttributeChange[] {
  const byName = new Map(history.map((h) => [h.attribute.toLowerCase(), h]));
  return changes.map((c) => {
    const h = byName.get(c.attribute.toLowerCase());
    if (!h) return c;
    const lastChange: LastChange = {
      time: h.time.toISOString(),
      dc: h.dc ?? null,
      version: h.version ?? null,
      byController: ledger ? ledger.isOurs(dn, h) : null,
      objectLevel: h.objectLevel,
    };
    return { ...c, lastChange };
  });
}

/** Objects whose attributes drifted in AD (not missing ones, nor objects only found there). */
const attributable = (r: ResourcePlan): r is ResourcePlan & { dn: string } =>
  r.dn !== undefined && r.changes.length > 0 && !r.drift.has("missing") && !r.drift.has("unexpected");

/**
 * Adds `lastChange` to the changes of drifted objects, one metadata read per such object. A read
 * that fails leaves that object's changes as they were: attribution is evidence, never a reason
 * to fail a cycle.
 */
export async function attributeDrift(plan: Plan, read: ReadHistory, ledger?: WriteLedger): Promise<Plan> {
  if (!plan.resources.some(attributable)) return plan;
  const resources = await Promise.all(
    plan.resources.map(async (r) => {
      if (!attributable(r)) return r;
      try {
        return { ...r, changes: withLastChange(r.changes, r.dn, await read(r.dn), ledger) };
      } catch {
        return r;
      }
    }),
  );
  return { ...plan, resources };
}

/** The DN an applied action left its attributes on (a move's or rename's new DN; none for a delete). */
function writtenDn(result: ActionResult): string | undefined {
  const a = result.action;
  if (result.status !== "applied" || a.type === "delete" || a.type === "create-kds-root-key") return undefined;
  return a.type === "move" || a.type === "rename" ? a.newDn : a.dn;
}

/**
 * After apply: reads the metadata of every object written and records, for each attribute the
 * actions changed, the time and version the write produced. A failed read is ignored: that
 * write is then not recognised as ours later, which errs towards "someone else changed it".
 */
export async function recordWrites(
  results: readonly ActionResult[],
  read: ReadHistory,
  ledger: WriteLedger,
): Promise<void> {
  const attributes = new Map<string, Set<string>>();
  for (const r of results) {
    const dn = writtenDn(r);
    if (dn === undefined) continue;
    const set = attributes.get(dn) ?? new Set<string>();
    attributes.set(dn, set);
    for (const c of "changes" in r.action ? r.action.changes : []) set.add(c.attribute.toLowerCase());
  }
  await Promise.all(
    [...attributes].map(async ([dn, names]) => {
      try {
        for (const h of await read(dn)) if (names.has(h.attribute.toLowerCase())) ledger.record(dn, h);
      } catch {
        // Best effort: see above.
      }
    }),
  );
}
