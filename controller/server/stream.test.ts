import { describe, expect, it } from "vitest";
import { jsonChunks } from "./stream.ts";

describe("jsonChunks", () => {
  it("is JSON.stringify's text exactly, for every kind of value JSON.stringify handles", () => {
    const values: unknown[] = [
      { a: 1, b: undefined, c: () => 1, d: [undefined, () => 1, null, 'é\n"', 1.5e-7], e: new Date(0) },
      [{ nested: { deeper: [1, { x: undefined }] } }, [], {}],
      { resources: Array.from({ length: 3 }, (_, i) => ({ name: `r${i}`, at: null, tags: ["x"] })) },
      "plain",
      42,
      null,
      [],
      {},
    ];
    for (const value of values)
      for (const depth of [0, 1, 2, 5]) expect([...jsonChunks(value, depth)].join("")).toBe(JSON.stringify(value));
  });

  it("cuts a long array into pieces of about 64 KiB, none of them the whole", () => {
    const status = {
      controller: { mode: "observe" },
      resources: Array.from({ length: 20_000 }, (_, i) => ({
        kind: "ADGroup",
        name: `group-${i}`,
        drift: ["missing"],
      })),
    };
    const chunks = [...jsonChunks(status)];
    expect(chunks.join("")).toBe(JSON.stringify(status));
    expect(chunks.length).toBeGreaterThan(10);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(70 * 1024);
  });
});
