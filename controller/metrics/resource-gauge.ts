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

/** prom-client's text for a sample value. */
const valueText = (v: number): string =>
  Number.isNaN(v) ? "Nan" : Number.isFinite(v) ? `${v}` : v < 0 ? "-Inf" : "+Inf";

/**
 * A gauge with one series per resource name (`{name}`), kept as one number per name, optionally
 * turned into the value at scrape time (a countdown to a deadline). At 45,000 gMSAs the three
 * password series held about 380 bytes per gMSA in prom-client's gauges.
 */
export class NamedValueGauge {
  readonly name: string;
  readonly help: string;
  readonly type = "gauge";
  readonly aggregator = "sum";
  readonly labelNames = ["name"];
  readonly #values = new Map<string, number>();
  /** Makes the sample from the stored number, once per scrape (identity without it). */
  readonly #atScrape: () => (stored: number) => number;

  constructor(options: {
    name: string;
    help: string;
    registers: readonly Registry[];
    atScrape?: () => (stored: number) => number;
  }) {
    this.name = options.name;
    this.help = options.help;
    this.#atScrape = options.atScrape ?? (() => (v) => v);
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  set(name: string, value: number): void {
    this.#values.set(name, value);
  }

  remove(name: string): void {
    this.#values.delete(name);
  }

  reset(): void {
    this.#values.clear();
  }

  /** Every series, as prom-client's `get()` shapes them. */
  get(): Promise<{ name: string; help: string; type: "gauge"; values: MetricValue<string>[]; aggregator: "sum" }> {
    const sample = this.#atScrape();
    const values = [...this.#values].map(([name, v]) => ({ labels: { name }, value: sample(v) }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: "sum" });
  }

  /** The exposition text of this metric, as prom-client's Registry writes a gauge, in pieces. */
  *lines(): Generator<string> {
    const sample = this.#atScrape();
    let buffer = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} gauge`;
    for (const [name, v] of this.#values) {
      buffer += `\n${this.name}{name="${escapeLabel(name)}"} ${valueText(sample(v))}`;
      if (buffer.length >= CHUNK_CHARS) {
        yield buffer;
        buffer = "";
      }
    }
    yield buffer;
  }
}
