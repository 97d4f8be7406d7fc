// How much heap what a function builds keeps, after full garbage collections on both sides.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Heap bytes still used once `build()` has run and garbage is collected, with what it returned. */
export function retainedBytes<T>(build: () => T): { bytes: number; value: T } {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const value = build();
  gc();
  // `value` is still referenced (returned), so what it holds is counted.
  return { bytes: process.memoryUsage().heapUsed - before, value };
}
