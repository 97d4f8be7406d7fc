// The editor schemas in schemas/ are generated from crds/. These tests check them with two
// independent consumers, ajv and the YAML language server itself (what VS Code's YAML extension
// runs), against what `validate` says about the same documents: every document of examples/ and
// of the fixtures that `validate` accepts must be accepted, every document `validate` rejects at
// the schema level must be rejected, and regenerating gives the committed files byte for byte.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Ajv } from "ajv";
import type { ValidateFunction } from "ajv";
import { TextDocument } from "vscode-languageserver-textdocument";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { getLanguageService } from "yaml-language-server";
import type { LanguageService } from "yaml-language-server";
import { COMBINED, generateSchemas, kindSchemaPath } from "../../scripts/gen-schemas.ts";
import { KINDS, isManifestPath, loadManifests } from "./index.ts";
import type { ErrorCode, Kind, ManifestError } from "./index.ts";
import { SCHEMAS } from "./schemas.generated.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures", "manifests");

/** The codes of errors a JSON Schema can express (duplicate-item only for `set` lists, see below). */
const SCHEMA_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "not-a-resource",
  "unknown-api-version",
  "unknown-kind",
  "unknown-field",
  "missing-field",
  "wrong-type",
  "invalid-value",
  "invalid-format",
  "too-long",
  "too-short",
  "out-of-range",
  "too-many-items",
  "too-few-items",
  "exactly-one",
  "duplicate-item",
]);

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, path), "utf8")) as Record<string, unknown>;
}

const ajv = new Ajv({ strict: true, allErrors: true });
const combined = ajv.compile(readJson(COMBINED));
const perKind = new Map<string, ValidateFunction>(KINDS.map((k) => [k, ajv.compile(readJson(kindSchemaPath(k)))]));

/** A YAML language server associated with the combined schema for every .yaml/.yml file, or with none. */
function languageService(associate: boolean): LanguageService {
  const ls = getLanguageService({
    schemaRequestService: (uri) => Promise.resolve(readFileSync(new URL(uri), "utf8")),
    workspaceContext: { resolveRelativePath: (relative, resource) => new URL(relative, resource).href },
  });
  const uri = pathToFileURL(join(ROOT, COMBINED)).href;
  ls.configure({
    validate: true,
    completion: true,
    hover: true,
    schemas: associate ? [{ uri, fileMatch: ["*.yaml", "*.yml"] }] : [],
  });
  return ls;
}

/** Whether the list at `path` (such as `spec.services[1]`) is a Kubernetes `set`, which JSON Schema can check. */
function isSetList(kind: Kind, path: string): boolean {
  let schema = SCHEMAS[kind] as { properties?: Record<string, unknown>; items?: unknown } | undefined;
  const parts = path.replace(/\[\d+\]$/, "").split(/\.|\[\d+\]\.?/);
  for (const part of parts.filter(Boolean)) schema = schema?.properties?.[part] as typeof schema;
  return (schema as Record<string, unknown> | undefined)?.["x-kubernetes-list-type"] === "set";
}

interface Doc {
  file: string;
  /** First and last line (1-based) of the document. */
  lines: [number, number];
  value: unknown;
  errors: ManifestError[];
}

/** Every manifest file under `dir` (as `validate` reads them), relative to it. */
function manifestFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((p) => p.split("\\").join("/"))
    .filter((p) => isManifestPath(p))
    .sort();
}

/** Every YAML document of every manifest under `dir`, with the errors `validate` reports inside it. */
async function documents(dir: string): Promise<Doc[]> {
  const result = await loadManifests(dir);
  const errors = result.ok ? [] : result.errors;
  const docs: Doc[] = [];
  for (const file of manifestFiles(dir)) {
    const text = readFileSync(join(dir, file), "utf8");
    const lineOf = (offset: number): number => text.slice(0, offset).split("\n").length;
    const parsed = parseAllDocuments(text);
    if (!Array.isArray(parsed)) continue;
    const starts = parsed.map((d) => lineOf(d.contents?.range[0] ?? d.range[0]));
    parsed.forEach((d, i) => {
      const first = i === 0 ? 1 : (starts[i] ?? 1);
      const last = (starts[i + 1] ?? Number.MAX_SAFE_INTEGER) - 1;
      const mine = errors.filter((e) => e.file === file && e.line >= first && e.line <= last);
      docs.push({ file: join(dir, file), lines: [first, last], value: d.toJS(), errors: mine });
    });
  }
  return docs;
}

/** Whether `validate` rejects the document for a reason a JSON Schema can express. */
function schemaLevel(doc: Doc): boolean {
  const kind = (doc.value as { kind?: unknown } | null)?.kind;
  return doc.errors.some(
    (e) =>
      SCHEMA_CODES.has(e.code) &&
      (e.code !== "duplicate-item" || (KINDS.includes(kind as Kind) && isSetList(kind as Kind, e.path))),
  );
}

/** The language server's diagnostics per file, 1-based lines. */
async function diagnostics(ls: LanguageService, file: string): Promise<{ line: number; message: string }[]> {
  const document = TextDocument.create(pathToFileURL(file).href, "yaml", 1, readFileSync(file, "utf8"));
  const found = await ls.doValidation(document, false);
  return found.map((d) => ({
    line: d.range.start.line + 1,
    message: typeof d.message === "string" ? d.message : d.message.value,
  }));
}

async function checkDocs(docs: Doc[]): Promise<{ accepted: number; rejected: number }> {
  const ls = languageService(true);
  const byFile = new Map<string, { line: number; message: string }[]>();
  for (const doc of docs) if (!byFile.has(doc.file)) byFile.set(doc.file, await diagnostics(ls, doc.file));
  let accepted = 0;
  let rejected = 0;
  for (const doc of docs) {
    const where = `${doc.file}:${doc.lines[0]}`;
    const inDoc = (byFile.get(doc.file) ?? []).filter((d) => d.line >= doc.lines[0] && d.line <= doc.lines[1]);
    const kind = (doc.value as { kind?: unknown } | null)?.kind;
    const own = typeof kind === "string" ? perKind.get(kind) : undefined;
    if (schemaLevel(doc)) {
      rejected++;
      expect(combined(doc.value), `${where}: ajv, combined schema`).toBe(false);
      if (own) expect(own(doc.value), `${where}: ajv, ${String(kind)} schema`).toBe(false);
      expect(inDoc.length, `${where}: the language server reports nothing`).toBeGreaterThan(0);
    } else {
      accepted++;
      const ok = combined(doc.value);
      expect(ok ? [] : combined.errors, `${where}: ajv, combined schema`).toEqual([]);
      if (own) expect(own(doc.value), `${where}: ajv, ${String(kind)} schema`).toBe(true);
      expect(inDoc, `${where}: the language server`).toEqual([]);
    }
  }
  return { accepted, rejected };
}

describe("the editor schemas in schemas/", () => {
  it("regenerating from crds/ gives the committed files byte for byte, and nothing else is in schemas/", async () => {
    const files = await generateSchemas(ROOT);
    expect(files.map((f) => f.path).sort()).toEqual(
      readdirSync(join(ROOT, "schemas"))
        .map((f) => `schemas/${f}`)
        .sort(),
    );
    expect(files.map((f) => f.path)).toContain(COMBINED);
    for (const kind of KINDS) expect(files.map((f) => f.path)).toContain(kindSchemaPath(kind));
    for (const file of files) expect(readFileSync(join(ROOT, file.path), "utf8"), file.path).toBe(file.content);
  });

  it("accept every document of examples/, in ajv and in the YAML language server", async () => {
    const docs = await documents(join(ROOT, "examples"));
    expect(docs.every((d) => d.errors.length === 0)).toBe(true);
    const { accepted, rejected } = await checkDocs(docs);
    expect(rejected).toBe(0);
    expect(accepted).toBe(docs.length);
    expect(accepted).toBeGreaterThanOrEqual(KINDS.length);
  });

  it("reject exactly the fixture documents that validate rejects at the schema level", async () => {
    let accepted = 0;
    let rejected = 0;
    for (const folder of readdirSync(FIXTURES)) {
      const counts = await checkDocs(await documents(join(FIXTURES, folder)));
      accepted += counts.accepted;
      rejected += counts.rejected;
    }
    // Both sides are exercised: documents held back by the schema, and valid or lint-only ones.
    expect(rejected).toBeGreaterThanOrEqual(10);
    expect(accepted).toBeGreaterThanOrEqual(10);
  });

  it("accept the empty documents validate accepts: a trailing ---, a comment-only or null document", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gmsa-schemas-"));
    try {
      const group =
        "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: web-hosts\nspec:\n  accountName: Web-Hosts\n";
      writeFileSync(join(dir, "trailing.yaml"), `${group}---\n`);
      writeFileSync(
        join(dir, "between.yaml"),
        `---\n${group.replace("web-hosts", "db-hosts").replace("Web-Hosts", "Db-Hosts")}---\n# next resource here\n---\n~\n`,
      );
      writeFileSync(join(dir, "placeholder.yaml"), "---\n");
      const loaded = await loadManifests(dir);
      expect(loaded.ok).toBe(true);
      const docs = await documents(dir);
      expect(docs.filter((d) => d.value === null).length).toBeGreaterThanOrEqual(4);
      const { accepted, rejected } = await checkDocs(docs);
      expect(rejected).toBe(0);
      expect(accepted).toBe(docs.length);
      for (const kind of KINDS) expect(perKind.get(kind)?.(null), kind).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("work from the modeline alone: errors and completion with no editor settings", async () => {
    const ls = languageService(false);
    const uri = pathToFileURL(join(ROOT, "examples", "service1", "new.yaml")).href;
    const text = [
      "# yaml-language-server: $schema=../../schemas/gmsa-gitops.schema.json",
      "apiVersion: gmsa-gitops.io/v1alpha1",
      "kind: ADGroup",
      "metadata:",
      "  name: new-group",
      "spec:",
      "  accountName: New-Group",
      "  scope: Glbal",
      "  ",
    ].join("\n");
    const document = TextDocument.create(uri, "yaml", 1, text);
    const found = await ls.doValidation(document, false);
    expect(found.map((d) => [d.range.start.line + 1, d.message])).toEqual([
      [8, expect.stringContaining('"DomainLocal", "Global", "Universal"')],
    ]);
    const completion = await ls.doComplete(document, { line: 8, character: 2 }, false);
    expect(completion.items.map((i) => i.label)).toEqual(expect.arrayContaining(["members", "membership", "path"]));
    const kinds = TextDocument.create(
      uri,
      "yaml",
      1,
      `${text.split("\n")[0]}\napiVersion: gmsa-gitops.io/v1alpha1\nkind: \n`,
    );
    const offered = await ls.doComplete(kinds, { line: 2, character: 6 }, false);
    expect(offered.items.map((i) => i.label).sort()).toEqual([...KINDS].sort());
  });
});
