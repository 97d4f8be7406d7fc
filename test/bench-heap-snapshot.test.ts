// The benches' heap-snapshot summary, on a real snapshot of a child process holding a known
// structure: the constructor and the retaining edge must come out on top, with the right size.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { formatHeapSummary, summarizeHeapSnapshot } from "../bench/lib/heap-snapshot.ts";

const dir = mkdtempSync(join(tmpdir(), "heap-summary-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("names the object that retains most of the heap, its constructor and the edge holding it", () => {
  const file = join(dir, "held.heapsnapshot");
  const script = [
    "class ObservedPicture { constructor() { this.entries = Array.from({ length: 200000 }, (_, i) => ({ i, dn: 'CN=x' + i })); } }",
    "globalThis.picture = new ObservedPicture();",
    `require('node:v8').writeHeapSnapshot(${JSON.stringify(file)});`,
  ].join("\n");
  execFileSync(process.execPath, ["-e", script]);
  const summary = summarizeHeapSnapshot(file, 10);
  const holder = summary.retainers.find((l) => l.name.startsWith("ObservedPicture "));
  expect(holder?.name).toBe("ObservedPicture (global.picture)");
  // 200,000 objects of 3 fields plus their strings: well above 10 MiB, below the whole heap.
  expect(holder!.retainedBytes).toBeGreaterThan(10 * 1024 * 1024);
  expect(holder!.retainedBytes).toBeLessThan(summary.totalBytes);
  expect(summary.retainers.map((l) => l.name)).toContain("Array (ObservedPicture.entries)");
  const objects = summary.byConstructor.find((l) => l.name === "Object");
  expect(objects!.count).toBeGreaterThanOrEqual(200_000);
  expect(formatHeapSummary(summary).join("\n")).toMatch(/MiB +1 × |ObservedPicture \(global\.picture\)/);
});
