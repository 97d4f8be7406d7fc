/**
 * Generates the TypeScript side of the resource model from the CRDs, so the two cannot drift
 * apart (the CRDs are the one source of truth for the schema):
 *
 * - `controller/manifests/types.generated.ts`: one interface per kind's `spec`, as the
 *   manifest loader returns it, i.e. after the schema's defaults were applied: a field with a
 *   `default` is never optional.
 * - `controller/manifests/schemas.generated.ts`: each CRD's openAPIV3Schema as data, so the
 *   validator needs no file next to the code at run time.
 *
 * Run `npx node scripts/gen-types.ts` after editing `crds/`. A unit test regenerates both files
 * and compares them with the committed ones byte for byte.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { format, resolveConfig } from "prettier";
import { parse } from "yaml";

/** The subset of an OpenAPI v3 schema the CRDs use. */
export interface Schema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  default?: unknown;
  minProperties?: number;
  maxProperties?: number;
}

/**
 * Names for the item types of object lists; anything else gets `<Kind><Field>Item`. Two fields
 * mapped to one name share the type, emitted once (a list and its `remove...` list).
 */
const ITEM_TYPE_NAMES: Record<string, string> = {
  "GroupManagedServiceAccount.principalsAllowedToRetrieveManagedPassword": "PrincipalRef",
  "GroupManagedServiceAccount.removePrincipals": "PrincipalRef",
  "ADGroup.members": "GroupMemberRef",
  "ADGroup.removeMembers": "GroupMemberRef",
  "HostBinding.services": "ServiceBinding",
  "HostBinding.scheduledTasks": "ScheduledTaskBinding",
  "HostBinding.iisAppPools": "IisAppPoolBinding",
  "HostBinding.fileSystemAccess": "FileSystemAccessBinding",
};

/** One generated file: path relative to the repository root, and its exact content. */
export interface GeneratedFile {
  path: string;
  content: string;
}

/** One CRD as the generators read it: its kind, apiVersion and storage version's schema. */
export interface Crd {
  kind: string;
  apiVersion: string;
  schema: Schema;
  file: string;
}

/** Reads every CRD in `crdDir` (sorted by kind) and takes its one storage version's schema. */
export function readCrds(crdDir: string): Crd[] {
  const crds: Crd[] = [];
  for (const file of readdirSync(crdDir).filter((f) => /\.ya?ml$/.test(f))) {
    const doc = parse(readFileSync(join(crdDir, file), "utf8")) as {
      spec: {
        group: string;
        names: { kind: string };
        versions: { name: string; storage: boolean; schema: { openAPIV3Schema: Schema } }[];
      };
    };
    const storage = doc.spec.versions.filter((v) => v.storage);
    if (storage.length !== 1 || !storage[0]) throw new Error(`${file}: expected exactly one storage version`);
    crds.push({
      kind: doc.spec.names.kind,
      apiVersion: `${doc.spec.group}/${storage[0].name}`,
      schema: storage[0].schema.openAPIV3Schema,
      file,
    });
  }
  return crds.sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** A JSDoc block from a schema's description, with its default (if any) appended. */
function doc(schema: Schema, indent: string): string {
  const parts: string[] = [];
  if (schema.description) parts.push(schema.description);
  if (schema.default !== undefined) parts.push(`Default: \`${JSON.stringify(schema.default)}\`.`);
  if (parts.length === 0) return "";
  const words = parts.join(" ").replaceAll("*/", "*\\/").split(/\s+/);
  const lines: string[] = [];
  let line = "";
  for (const word of words) {
    if (line && line.length + word.length + 1 > 96) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join("\n")}\n${indent} */\n`;
}

/** Emits the type declarations of one kind's spec, named types first. */
class Emitter {
  readonly named: string[] = [];
  readonly #emitted = new Set<string>();
  readonly kind: string;

  constructor(kind: string) {
    this.kind = kind;
  }

  /** The TypeScript type of a value validated (and defaulted) by `schema`. */
  type(schema: Schema, hint: string): string {
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    switch (schema.type) {
      case "string":
        return "string";
      case "integer":
      case "number":
        return "number";
      case "boolean":
        return "boolean";
      case "array": {
        if (!schema.items) return "unknown[]";
        const item = this.type(schema.items, hint);
        return item.includes("|") ? `(${item})[]` : `${item}[]`;
      }
      case "object": {
        if (schema.properties) {
          const name = ITEM_TYPE_NAMES[`${this.kind}.${hint}`] ?? `${this.kind}${pascal(hint)}Item`;
          if (this.#emitted.has(name)) return name;
          this.#emitted.add(name);
          const description = schema.description ?? `One entry of ${this.kind}.spec.${hint}.`;
          this.named.push(this.object({ ...schema, description }, name));
          return name;
        }
        if (typeof schema.additionalProperties === "object")
          return `Record<string, ${this.type(schema.additionalProperties, hint)}>`;
        return "Record<string, unknown>";
      }
      default:
        return "unknown";
    }
  }

  /**
   * An object type. "Exactly one of" objects (minProperties = maxProperties = 1, nothing
   * required) become a union in which each member sets one field and forbids the others, so
   * `ref.group !== undefined` narrows.
   */
  object(schema: Schema, name: string): string {
    const props = Object.entries(schema.properties ?? {});
    if (schema.minProperties === 1 && schema.maxProperties === 1 && !schema.required?.length) {
      const members = props.map(([key, sub]) => {
        const others = props.filter(([k]) => k !== key).map(([k]) => `${k}?: never;`);
        return `${doc(sub, "  ")}  | { ${key}: ${this.type(sub, key)}; ${others.join(" ")} }`;
      });
      return `${doc(schema, "")}export type ${name} =\n${members.join("\n")};\n`;
    }
    const required = new Set(schema.required ?? []);
    const fields = props.map(([key, sub]) => {
      const optional = !required.has(key) && sub.default === undefined;
      return `${doc(sub, "  ")}  ${key}${optional ? "?" : ""}: ${this.type(sub, key)};\n`;
    });
    return `${doc(schema, "")}export interface ${name} {\n${fields.join("")}}\n`;
  }
}

const HEADER =
  "// Generated by scripts/gen-types.ts from crds/*.yaml. Do not edit: change the CRD and run\n" +
  "// `npx node scripts/gen-types.ts`; a unit test fails when this file is stale.\n";

/** Renders both generated files from the CRDs in `<root>/crds`, formatted as the repository's prettier config says. */
export async function generate(root: string): Promise<GeneratedFile[]> {
  const crds = readCrds(join(root, "crds"));
  const apiVersions = [...new Set(crds.map((c) => c.apiVersion))];
  if (apiVersions.length !== 1) throw new Error(`expected one apiVersion across CRDs, got ${apiVersions.join(", ")}`);

  let types = HEADER;
  types += `\n/** The apiVersion every manifest must carry. */\nexport const API_VERSION = ${JSON.stringify(apiVersions[0])};\n`;
  types += `\n/** Every kind, in a stable order. */\nexport const KINDS = [${crds.map((c) => JSON.stringify(c.kind)).join(", ")}] as const;\n`;
  types += `\n/** One of the resource kinds defined in crds/. */\nexport type Kind = (typeof KINDS)[number];\n`;
  for (const crd of crds) {
    const spec = crd.schema.properties?.["spec"];
    if (!spec) throw new Error(`${crd.file}: no spec in openAPIV3Schema`);
    const emitter = new Emitter(crd.kind);
    const main = emitter.object(
      { ...spec, description: `The spec of kind ${crd.kind}, with defaults applied. ${spec.description ?? ""}`.trim() },
      `${crd.kind}Spec`,
    );
    types += `\n${[...emitter.named, main].join("\n")}`;
  }

  let schemas = HEADER;
  schemas += `\nimport type { Kind } from "./types.generated.ts";\n`;
  schemas += `\n/** Each kind's openAPIV3Schema, exactly as in crds/. */\n`;
  schemas += `export const SCHEMAS: Readonly<Record<Kind, Readonly<Record<string, unknown>>>> = {\n`;
  for (const crd of crds) schemas += `  ${crd.kind}: ${JSON.stringify(crd.schema)},\n`;
  schemas += "};\n";

  const out: GeneratedFile[] = [
    { path: "controller/manifests/types.generated.ts", content: types },
    { path: "controller/manifests/schemas.generated.ts", content: schemas },
  ];
  for (const file of out) {
    const options = (await resolveConfig(join(root, file.path))) ?? {};
    file.content = await format(file.content, { ...options, filepath: join(root, file.path) });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  for (const file of await generate(root)) {
    writeFileSync(join(root, file.path), file.content);
    process.stdout.write(`wrote ${file.path}\n`);
  }
}
