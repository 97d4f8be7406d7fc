// The quick schema walk against ajv itself, over every document of the fixtures and examples
// and thousands of one-field changes of them: it must never accept what ajv refuses, and what
// it accepts must come out with exactly ajv's defaults (same values, same key order).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { CORE_SCHEMA, loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { conforms } from "./conforms.ts";
import { SCHEMAS } from "./schemas.generated.ts";
import type { Kind } from "./types.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** ajv as schema.ts builds it. */
function ajvValidators(): Map<string, (data: unknown) => boolean> {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
  ajv.addVocabulary(["x-kubernetes-list-type", "x-kubernetes-list-map-keys"]);
  return new Map(Object.entries(SCHEMAS).map(([kind, schema]) => [kind, ajv.compile(schema)]));
}

/** Every document of every .yaml file under the fixtures and examples that js-yaml reads. */
function documents(): unknown[] {
  const out: unknown[] = [];
  for (const dir of ["examples", "test/fixtures/manifests"]) {
    for (const file of readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })) {
      if (!file.endsWith(".yaml")) continue;
      try {
        out.push(...loadAll(readFileSync(join(ROOT, dir, file), "utf8"), { schema: CORE_SCHEMA }));
      } catch {
        // A fixture that is not YAML is the parser's test, not this one's.
      }
    }
  }
  return out.filter((d) => d !== null && typeof d === "object");
}

/** Paths to every value inside a document. */
function paths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const here = at.length > 0 ? [at] : [];
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => paths(v, [...at, i]))];
  if (value !== null && typeof value === "object")
    return [...here, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...at, k]))];
  return here;
}

const REPLACEMENTS: unknown[] = [
  undefined,
  12345,
  -1,
  0,
  1.5,
  true,
  "",
  "x".repeat(300),
  "Has Space",
  "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀",
  [],
  ["a", "a"],
  {},
  { unknownField: 1 },
  null,
];

/** The document with the value at `path` replaced (undefined: removed). */
function changed(doc: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let node: Record<string | number, unknown> = copy;
  for (const step of path.slice(0, -1)) node = node[step] as Record<string | number, unknown>;
  const last = path.at(-1) as string | number;
  if (value === undefined) delete node[last];
  else node[last] = structuredClone(value);
  return copy;
}

describe("the quick schema walk", () => {
  it("accepts exactly what ajv accepts, and fills in ajv's defaults in ajv's order", () => {
    const validators = ajvValidators();
    let accepted = 0;
    let judged = 0;
    const disagreements: string[] = [];
    for (const doc of documents()) {
      const kind = (doc as { kind?: unknown }).kind;
      const schema = SCHEMAS[kind as Kind] as Readonly<Record<string, unknown>> | undefined;
      const validate = validators.get(String(kind));
      if (!schema || !validate) continue;
      const variants = [doc, ...paths(doc).flatMap((p) => REPLACEMENTS.map((r) => changed(doc, p, r)))];
      const spec = (doc as { spec?: unknown }).spec;
      if (spec !== null && typeof spec === "object") variants.push(changed(doc, ["spec", "unknownField"], "x"));
      // A key named __proto__ is data in a parsed document (js-yaml defines it as its own property).
      const proto = structuredClone(doc) as { metadata?: object };
      if (proto.metadata) Object.defineProperty(proto.metadata, "__proto__", { value: "x", enumerable: true });
      variants.push(proto);
      for (const variant of variants) {
        const quick = structuredClone(variant);
        const slow = structuredClone(variant);
        const fast = conforms(schema, quick);
        const valid = validate(slow);
        judged++;
        if (fast) accepted++;
        if (fast !== valid || (fast && JSON.stringify(quick) !== JSON.stringify(slow)))
          disagreements.push(`${JSON.stringify(variant)}: quick ${fast}, ajv ${valid}`);
      }
    }
    expect(disagreements).toEqual([]);
    // The variants must exercise both answers many times over.
    expect(judged).toBeGreaterThan(5000);
    expect(accepted).toBeGreaterThan(200);
  });

  it("refuses a schema with a keyword it does not know, leaving the verdict to ajv", () => {
    expect(conforms({ type: "string", format: "email" }, "a")).toBe(false);
    expect(conforms({ type: "string" }, "a")).toBe(true);
  });
});
