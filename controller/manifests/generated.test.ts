// The spec types and embedded schemas are generated from crds/; this fails when someone edits
// a CRD (or a generated file) without running `npx node scripts/gen-types.ts`.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { generate } from "../../scripts/gen-types.ts";
import { KINDS as VOCABULARY_KINDS } from "../vocabulary.ts";
import { KINDS } from "./types.generated.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

describe("generated files", () => {
  it("regenerating from crds/ gives the committed files byte for byte", async () => {
    const files = await generate(ROOT);
    expect(files.map((f) => f.path)).toEqual([
      "controller/manifests/types.generated.ts",
      "controller/manifests/schemas.generated.ts",
    ]);
    for (const file of files) expect(readFileSync(join(ROOT, file.path), "utf8"), file.path).toBe(file.content);
  });
});

describe("the shared vocabulary", () => {
  it("names the same kinds as the CRDs", () => {
    expect([...VOCABULARY_KINDS]).toEqual([...KINDS]);
  });
});
