/**
 * Generates the JSON Schemas in `schemas/` from the CRDs, for editors: the YAML language server
 * (VS Code's YAML extension, and others built on it) and JetBrains IDEs complete fields and flag
 * errors while a team types a manifest.
 *
 * - `schemas/<kind>.schema.json`: one kind, for files that hold only that kind.
 * - `schemas/gmsa-gitops.schema.json`: every kind, dispatching on `kind` (and checking
 *   `apiVersion`), for a whole manifest folder whatever each document holds.
 *
 * Each file is self-contained (no `$ref` to another file), so it works from a path in the
 * repository, a copy, or a URL. JSON Schema draft-07, which every such editor supports.
 * What a JSON Schema cannot say is left to `gmsa-gitops validate`: the uniqueness of map-like
 * lists (`x-kubernetes-list-type: map`, such as two tasks with the same path and name), and
 * everything across resources (references, duplicate names, retrieval).
 *
 * Run `npx node scripts/gen-schemas.ts` after editing `crds/`; `--check` exits 1 when a file
 * in `schemas/` is out of date. A unit test also regenerates them and compares byte for byte.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { format, resolveConfig } from "prettier";
import { readCrds } from "./gen-types.ts";
import type { Crd, GeneratedFile } from "./gen-types.ts";

/** The JSON Schema dialect of every generated file. */
export const DRAFT = "http://json-schema.org/draft-07/schema#";

/** The combined schema's file name, for every kind. */
export const COMBINED = "schemas/gmsa-gitops.schema.json";

/** The file name of one kind's schema. */
export function kindSchemaPath(kind: string): string {
  return `schemas/${kind.toLowerCase()}.schema.json`;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * An openAPIV3Schema as a JSON Schema: the same keywords (the CRDs use only those the two
 * share), minus the Kubernetes extensions. A `set` list becomes `uniqueItems`, which JSON Schema
 * can say; a `map` list's key uniqueness cannot be said and stays with `validate`.
 */
export function toJsonSchema(schema: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith("x-kubernetes-")) continue;
    if (key === "properties" && isObject(value))
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, sub]) => [name, isObject(sub) ? toJsonSchema(sub) : sub]),
      );
    else if ((key === "items" || key === "additionalProperties") && isObject(value)) out[key] = toJsonSchema(value);
    else out[key] = value;
  }
  if (schema["x-kubernetes-list-type"] === "set") out["uniqueItems"] = true;
  return out;
}

/**
 * A document's root: a map, or nothing. `validate` skips an empty YAML document (a trailing
 * `---`, a document holding only comments, `~`), which editors give the schema as null; without
 * null here the language server flagged every such `---` while `validate` accepted it.
 */
const ROOT_TYPE = ["object", "null"];

/** One kind's schema as a standalone file. */
function kindSchema(crd: Crd): Json {
  const schema = toJsonSchema(crd.schema as Json);
  return { $schema: DRAFT, title: `${crd.kind} (${crd.apiVersion})`, ...schema, type: ROOT_TYPE };
}

/**
 * Every kind in one schema. The root checks `apiVersion` and `kind` (so an unknown kind is an
 * error on `kind`, not a failed match against every kind), then one `if kind = K then K`
 * branch per kind: editors report the errors of the kind a document declares, and complete its
 * fields, instead of the mixed messages of a `oneOf`. The `if` asks for a map, so a document
 * that is a list gets one error, not one per kind, and an empty one none.
 */
function combinedSchema(crds: Crd[]): Json {
  const apiVersions = [...new Set(crds.map((c) => c.apiVersion))];
  return {
    $schema: DRAFT,
    title: "gmsa-gitops manifest",
    description: `One resource of a gmsa-gitops repository: ${crds.map((c) => c.kind).join(", ")}.`,
    type: ROOT_TYPE,
    required: ["apiVersion", "kind"],
    properties: {
      apiVersion: { type: "string", description: "The API version of every kind.", enum: apiVersions },
      kind: { type: "string", description: "The resource kind.", enum: crds.map((c) => c.kind) },
    },
    allOf: crds.map((crd) => ({
      if: { type: "object", properties: { kind: { const: crd.kind } }, required: ["kind"] },
      then: { $ref: `#/definitions/${crd.kind}` },
    })),
    definitions: Object.fromEntries(crds.map((crd) => [crd.kind, toJsonSchema(crd.schema as Json)])),
  };
}

/** Renders every schema file from `<root>/crds`, formatted as the repository's prettier config says. */
export async function generateSchemas(root: string): Promise<GeneratedFile[]> {
  const crds = readCrds(join(root, "crds"));
  const out: GeneratedFile[] = [
    ...crds.map((crd) => ({ path: kindSchemaPath(crd.kind), content: JSON.stringify(kindSchema(crd)) })),
    { path: COMBINED, content: JSON.stringify(combinedSchema(crds)) },
  ];
  for (const file of out) {
    const filepath = join(root, file.path);
    const options = (await resolveConfig(filepath)) ?? {};
    file.content = await format(file.content, { ...options, filepath });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const file of await generateSchemas(root)) {
    const target = join(root, file.path);
    if (existsSync(target) && readFileSync(target, "utf8") === file.content) continue;
    if (check) {
      process.stderr.write(`${file.path} is out of date: run npx node scripts/gen-schemas.ts\n`);
      stale++;
    } else {
      mkdirSync(join(root, "schemas"), { recursive: true });
      writeFileSync(target, file.content);
      process.stdout.write(`wrote ${file.path}\n`);
    }
  }
  process.exitCode = stale > 0 ? 1 : 0;
}
