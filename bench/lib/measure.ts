// Small measuring helpers shared by the benches: wall-clock timing, medians, a result table.

/** Runs fn and returns its result with the elapsed wall-clock time in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "1234 ms" below 10 s, "12.3 s" above. */
export function formatMs(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** "min–max" of a list of times, for the spread column. */
export function spread(values: readonly number[]): string {
  return `${formatMs(Math.min(...values))}–${formatMs(Math.max(...values))}`;
}

/** One row of a result table: what was measured, ours, the baseline, the ratio and its goal. */
export interface Row {
  readonly measure: string;
  readonly ours: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly goal: string;
  readonly met: string;
}

/** A Markdown table (readable as plain text too), columns padded to their widest cell. */
export function table(rows: readonly Row[]): string {
  const header: Row = {
    measure: "measure",
    ours: "ours",
    baseline: "baseline",
    ratio: "ratio",
    goal: "goal",
    met: "met",
  };
  const keys = Object.keys(header) as (keyof Row)[];
  const all = [header, ...rows];
  const width = (k: keyof Row): number => Math.max(...all.map((r) => r[k].length));
  const render = (r: Row): string => `| ${keys.map((k) => r[k].padEnd(width(k))).join(" | ")} |`;
  const rule = `| ${keys.map((k) => "-".repeat(width(k))).join(" | ")} |`;
  return [render(header), rule, ...rows.map(render)].join("\n");
}

/** A ratio row with its verdict; `goal` is the highest acceptable ratio. */
export function ratioRow(
  measure: string,
  ours: readonly number[],
  baseline: readonly number[],
  goal: number,
): Row & { ok: boolean } {
  const ratio = median(ours) / median(baseline);
  const ok = ratio <= goal;
  return {
    measure,
    ours: `${formatMs(median(ours))} (${spread(ours)})`,
    baseline: `${formatMs(median(baseline))} (${spread(baseline)})`,
    ratio: `${ratio.toFixed(2)}×`,
    goal: `≤ ${goal}×`,
    met: ok ? "yes" : "NO",
    ok,
  };
}
