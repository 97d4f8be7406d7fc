/**
 * A gauge with one 0/1 series per resource and type (`{kind, name, <type label>}`), kept as two
 * bit masks per resource instead of prom-client's object per series, and written to the scrape
 * line by line. prom-client keeps a hash string, a labels object and a value object for every
 * series; at 50,000 resources the condition and drift gauges held 200,000 of them (about 250
 * bytes each), and a scrape materialised them all again (docs/benchmarks.md).
 *
 * It registers in a prom-client Registry like a Gauge (name, help, type, `get()`), so tests and
 * `getMetricsAsJSON` see the same series; `lines()` is the fast path the recorder's scrape uses.
 */
import type { MetricValue, Registry } from "prom-client";
import type { Kind } from "../vocabulary.ts";

const escapeLabel = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** Pieces of the exposition text are handed out at about this many characters. */
const CHUNK_CHARS = 64 * 1024;

/** A per-resource 0/1 gauge over a closed list of types (at most 30). */
export class ResourceStateGauge<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = "gauge";
  readonly aggregator = "sum";
  readonly labelNames: readonly string[];
  readonly #typeLabel: string;
  readonly #types: readonly T[];
  readonly #bit: ReadonlyMap<T, number>;
  /**
   * Per kind, resource name → bit i set when type i has a series. Keyed by the name itself (the
   * repository's string, shared with the desired state), so a resource costs two map entries.
   */
  readonly #emitted = new Map<Kind, Map<string, number>>();
  /** Per kind, resource name → bit i set when that series is 1. */
  readonly #ones = new Map<Kind, Map<string, number>>();

  #of(maps: Map<Kind, Map<string, number>>, kind: Kind): Map<string, number> {
    let map = maps.get(kind);
    if (map === undefined) maps.set(kind, (map = new Map<string, number>()));
    return map;
  }

  constructor(options: {
    name: string;
    help: string;
    typeLabel: string;
    types: readonly T[];
    registers: readonly Registry[];
  }) {
    if (options.types.length > 30) throw new RangeError("at most 30 types fit a small integer's bits");
    this.name = options.name;
    this.help = options.help;
    this.#typeLabel = options.typeLabel;
    this.labelNames = ["kind", "name", options.typeLabel];
    this.#types = options.types;
    this.#bit = new Map(options.types.map((t, i) => [t, 1 << i]));
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** Sets the series of one type of one resource to 1 (`on`) or 0. */
  set(kind: Kind, name: string, type: T, on: boolean): void {
    const bit = this.#bit.get(type);
    if (bit === undefined) throw new RangeError(`${this.name}: unknown ${this.#typeLabel} ${type}`);
    const emitted = this.#of(this.#emitted, kind);
    emitted.set(name, (emitted.get(name) ?? 0) | bit);
    const onesOf = this.#of(this.#ones, kind);
    const ones = onesOf.get(name) ?? 0;
    const next = on ? ones | bit : ones & ~bit;
    if (next === 0) onesOf.delete(name);
    else onesOf.set(name, next);
  }

  /**
   * Sets every series of a resource at once: those of the types in `on` to 1 (creating them),
   * the others it has to 0. A resource with no series and nothing in `on` gets none.
   */
  assign(kind: Kind, name: string, on: Iterable<T>): void {
    let ones = 0;
    for (const type of on) {
      const bit = this.#bit.get(type);
      if (bit === undefined) throw new RangeError(`${this.name}: unknown ${this.#typeLabel} ${type}`);
      ones |= bit;
    }
    const emitted = (this.#emitted.get(kind)?.get(name) ?? 0) | ones;
    if (emitted === 0) return;
    this.#of(this.#emitted, kind).set(name, emitted);
    if (ones === 0) this.#ones.get(kind)?.delete(name);
    else this.#of(this.#ones, kind).set(name, ones);
  }

  /** Whether the resource has a series of this type. */
  has(kind: Kind, name: string, type: T): boolean {
    return ((this.#emitted.get(kind)?.get(name) ?? 0) & (this.#bit.get(type) ?? 0)) !== 0;
  }

  /** Removes every series of a resource. */
  forget(kind: Kind, name: string): void {
    this.#emitted.get(kind)?.delete(name);
    this.#ones.get(kind)?.delete(name);
  }

  reset(): void {
    this.#emitted.clear();
    this.#ones.clear();
  }

  /** Every series, as prom-client's `get()` shapes them. */
  get(): Promise<{
    name: string;
    help: string;
    type: "gauge";
    values: MetricValue<string>[];
    aggregator: "sum";
  }> {
    const values: MetricValue<string>[] = [];
    this.#each((kind, name, type, value) => values.push({ labels: { kind, name, [this.#typeLabel]: type }, value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: "sum" });
  }

  /**
   * The exposition text of this metric, as prom-client's Registry writes a gauge (HELP, TYPE,
   * then one line per series, joined by newlines, no trailing newline), in pieces.
   */
  *lines(): Generator<string> {
    let buffer = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} gauge`;
    const typeLabel = `",${this.#typeLabel}="`;
    for (const [kind, emitted] of this.#emitted) {
      const ones = this.#ones.get(kind);
      for (const [name, mask] of emitted) {
        const series = `\n${this.name}{kind="${kind}",name="${escapeLabel(name)}${typeLabel}`;
        const on = ones?.get(name) ?? 0;
        for (let i = 0; i < this.#types.length; i++)
          if ((mask & (1 << i)) !== 0) buffer += `${series}${this.#types[i]!}"} ${(on & (1 << i)) !== 0 ? 1 : 0}`;
        if (buffer.length >= CHUNK_CHARS) {
          yield buffer;
          buffer = "";
        }
      }
    }
    yield buffer;
  }

  #each(f: (kind: Kind, name: string, type: T, value: 0 | 1) => void): void {
    for (const [kind, emitted] of this.#emitted)
      for (const [name, mask] of emitted) {
        const ones = this.#ones.get(kind)?.get(name) ?? 0;
        for (let i = 0; i < this.#types.length; i++)
          if ((mask & (1 << i)) !== 0) f(kind, name, this.#types[i]!, (ones & (1 << i)) !== 0 ? 1 : 0);
      }
  }
}
