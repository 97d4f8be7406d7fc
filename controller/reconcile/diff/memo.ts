/**
 * Per-resource reuse of diffs between cycles: a resource's diff is a pure function of its spec
 * and of what it reads from the diff's context (its object in AD, the groups, computers and
 * principals its references resolve to, the KDS state, the options). Each diff runs against a
 * context that records every read; the next cycle returns the same entry, without diffing, when
 * the spec is equal (the parse cache keeps unchanged documents' very objects) and every
 * recorded read gives an equal value in the new context. A read that cannot be replayed (a whole
 * collection iterated) makes the entry one that is always diffed again. So reuse is exact by
 * construction: docs/decisions/incremental-observe.md.
 */
import type { Context } from "./references.ts";
import type { ResourcePlan } from "../model.ts";
import type { ResourceDiff } from "./resource-diff.ts";

/**
 * The reads a diff made, flat (four slots each, no object per read: thousands of resources keep
 * theirs between plans): what was read (a field's value, or one lookup in a map or set of the
 * context), the field's path, the key looked up, and what it gave.
 */
type Reads = unknown[];
const VALUE = 0;
const GET = 1;
const HAS = 2;

interface Entry {
  readonly spec: unknown;
  /** Undefined: the diff read something that cannot be replayed; never reused. */
  readonly reads: Reads | undefined;
  readonly diff: ResourceDiff;
}

/** Field paths ("observed.baseDn"), one string each however often read, with their parts. */
const paths = new Map<string, { readonly path: string; readonly parts: readonly string[] }>();
function pathOf(parent: string | undefined, prop: string): string {
  const path = parent === undefined ? prop : `${parent}.${prop}`;
  const known = paths.get(path);
  if (known !== undefined) return known.path;
  paths.set(path, { path, parts: path.split(".") });
  return path;
}

/** Context fields read field by field (their own identity changes every cycle). */
const NESTED = new Set(["observed", "options", "desired"]);

/**
 * Structural equality of what a diff may read: plain data, dates, byte arrays, maps and sets.
 * Anything else (a class instance) is equal only to itself; when in doubt, not equal, which only
 * costs a diff.
 */
export function sameValue(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || depth > 12) return false;
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime();
  if (ArrayBuffer.isView(a)) {
    if (!ArrayBuffer.isView(b) || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    return x.every((v, i) => v === y[i]);
  }
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => sameValue(v, b[i], depth + 1));
  if (a instanceof Map)
    return (
      b instanceof Map && a.size === b.size && [...a].every(([k, v]) => b.has(k) && sameValue(v, b.get(k), depth + 1))
    );
  if (a instanceof Set) return b instanceof Set && a.size === b.size && [...a].every((v) => b.has(v));
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && sameValue((a as Record<string, unknown>)[k], rb[k], depth + 1));
}

const at = (root: unknown, path: string): unknown =>
  (paths.get(path)?.parts ?? [path]).reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], root);

/**
 * A context that records what is read from it into `reads`, each read once; `opaque` is called on
 * a read it cannot record.
 */
function recording(ctx: Context, reads: Reads, opaque: () => void): Context {
  const seen = new Map<string, Set<unknown>>();
  const record = (op: number, path: string, key: unknown, value: unknown): void => {
    const id = `${op}${path}`;
    let keys = seen.get(id);
    if (keys === undefined) seen.set(id, (keys = new Set()));
    if (keys.has(key)) return;
    keys.add(key);
    reads.push(op, path, key, value);
  };
  const wrap = (path: string, value: unknown): unknown => {
    if (value instanceof Map || value instanceof Set) {
      const collection = value as Map<unknown, unknown> | Set<unknown>;
      return new Proxy(collection, {
        get(target, prop) {
          if (prop === "get" && target instanceof Map)
            return (key: unknown) => {
              const found = target.get(key);
              record(GET, path, key, found);
              return found;
            };
          if (prop === "has")
            return (key: unknown) => {
              const found = target.has(key);
              record(HAS, path, key, found);
              return found;
            };
          // Iteration, size, forEach: what was read is the whole collection.
          opaque();
          const member = Reflect.get(target, prop, target) as unknown;
          return typeof member === "function" ? (member as (...a: unknown[]) => unknown).bind(target) : member;
        },
      });
    }
    if (NESTED.has(path) && typeof value === "object" && value !== null)
      return new Proxy(value, {
        get: (target, prop) =>
          typeof prop === "string"
            ? wrap(pathOf(path, prop), Reflect.get(target, prop))
            : (Reflect.get(target, prop) as unknown),
      });
    record(VALUE, path, undefined, value);
    return value;
  };
  return new Proxy(ctx, {
    get: (target, prop) =>
      typeof prop === "string"
        ? wrap(pathOf(undefined, prop), Reflect.get(target, prop))
        : (Reflect.get(target, prop) as unknown),
  });
}

/** True when every read gives an equal value in `ctx`. */
function replays(reads: Reads, ctx: Context): boolean {
  for (let i = 0; i < reads.length; i += 4) {
    const op = reads[i];
    const key = reads[i + 2];
    const value = reads[i + 3];
    const where = at(ctx, reads[i + 1] as string);
    if (op === VALUE) {
      if (!sameValue(where, value)) return false;
    } else if (op === HAS) {
      if (!(where instanceof Map || where instanceof Set) || where.has(key) !== value) return false;
    } else if (!(where instanceof Map) || !sameValue(where.get(key), value)) return false;
  }
  return true;
}

/** The diffs of the last plan, by resource; one per controller. */
export class DiffMemo {
  #last = new Map<string, Entry>();
  #next = new Map<string, Entry>();
  /**
   * The plan entry policy made of each diff (plan.ts), with the policy it was made under: a reused
   * diff gets the very same entry, which tells status publication it is unchanged.
   */
  readonly planned = new WeakMap<ResourceDiff, { readonly shape: string; readonly entry: ResourcePlan }>();
  /** Resources diffed and reused by the plans since the last {@link counted}. */
  diffed = 0;
  reused = 0;

  /** Resources diffed and reused since the last call: each plan counted once. */
  counted(): [diffed: number, reused: number] {
    const counts: [number, number] = [this.diffed, this.reused];
    this.diffed = 0;
    this.reused = 0;
    return counts;
  }

  /** Starts a plan: what it does not diff again is forgotten at {@link end}. */
  begin(): void {
    this.#next = new Map();
  }

  /** Ends a plan: only its resources are remembered. */
  end(): void {
    this.#last = this.#next;
  }

  /** Forgets every diff (a failed cycle, or a plan made without the memo). */
  clear(): void {
    this.#last = new Map();
    this.#next = new Map();
  }

  /** The resource's diff: the last one when its spec and every read are unchanged, else `run` against a recording context. */
  diff(key: string, spec: unknown, ctx: Context, run: (ctx: Context) => ResourceDiff): ResourceDiff {
    const last = this.#last.get(key);
    // An edited file parses to new objects for each of its documents: equal specs are the same input.
    if (last?.reads && (last.spec === spec || sameValue(last.spec, spec)) && replays(last.reads, ctx)) {
      this.#next.set(key, last);
      this.reused++;
      return last.diff;
    }
    const reads: Reads = [];
    let replayable = true;
    const diff = run(
      recording(ctx, reads, () => {
        replayable = false;
      }),
    );
    this.#next.set(key, { spec, reads: replayable ? reads : undefined, diff });
    this.diffed++;
    return diff;
  }
}
