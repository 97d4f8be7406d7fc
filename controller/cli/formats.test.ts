// `validate --format github|sarif|junit` over every fixture repository, each output checked by
// an independent reader against `--format json` of the same folder: SARIF against the official
// SARIF 2.1.0 JSON Schema, JUnit through an XML parser, GitHub workflow commands parsed back
// with GitHub's unescaping.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ajvDraft04 from "ajv-draft-04";
import addFormats from "ajv-formats";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { afterAll, describe, expect, it } from "vitest";
import type { ManifestError } from "../manifests/index.ts";
import { escapeData, escapeProperty } from "./formats.ts";
import { main, version } from "./main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures", "manifests");
/** Every fixture repository, then examples/. */
const DIRS = [
  ...readdirSync(FIXTURES)
    .sort()
    .map((f) => join(FIXTURES, f)),
  join(ROOT, "examples"),
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function validate(dir: string, format: string): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const code = await main(["validate", dir, "--format", format], {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}

/** What `--format json` says: the reference every other format is compared with. */
async function reference(dir: string): Promise<{ code: number; errors: ManifestError[]; warnings: ManifestError[] }> {
  const run = await validate(dir, "json");
  const parsed = JSON.parse(run.stdout) as { valid: boolean; errors?: ManifestError[]; warnings?: ManifestError[] };
  return { code: run.code, errors: parsed.errors ?? [], warnings: parsed.warnings ?? [] };
}

/** The path a CI system sees: relative to the working directory (the repository root here). */
function ciPath(dir: string, file: string): string {
  return `${relative(process.cwd(), dir).split("\\").join("/")}/${file}`;
}

/** GitHub's reading of a workflow command line: command, properties and message, unescaped. */
function parseCommand(line: string): { command: string; props: Record<string, string>; message: string } {
  const m = /^::([a-z]+)(?: ([^:]*))?::(.*)$/.exec(line);
  if (!m) throw new Error(`not a workflow command: ${line}`);
  const unescape = (s: string): string =>
    s
      .replaceAll("%0D", "\r")
      .replaceAll("%0A", "\n")
      .replaceAll("%3A", ":")
      .replaceAll("%2C", ",")
      .replaceAll("%25", "%");
  const props: Record<string, string> = {};
  for (const pair of (m[2] ?? "").split(",").filter(Boolean)) {
    const eq = pair.indexOf("=");
    props[pair.slice(0, eq)] = unescape(pair.slice(eq + 1));
  }
  return { command: m[1] ?? "", props, message: unescape(m[3] ?? "") };
}

const sarifSchema = JSON.parse(
  readFileSync(
    join(ROOT, "node_modules", "@microsoft", "jest-sarif", "lib", "schemas", "sarif-2.1.0-rtm.5.json"),
    "utf8",
  ),
) as Record<string, unknown>;
// unicodeRegExp off: the official schema's "language" pattern has a stray ']' that only the
// non-unicode regular-expression syntax accepts.
const ajv04 = new ajvDraft04.default({ allErrors: true, strict: false, unicodeRegExp: false });
addFormats.default(ajv04);
const checkSarif = ajv04.compile(sarifSchema);

const scratch = mkdtempSync(join(tmpdir(), "gmsa-formats-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("validate --format github", () => {
  it("prints one ::error (::warning) workflow command per error (warning) that parses back to the json format's file, line, column and message", async () => {
    let total = 0;
    for (const dir of DIRS) {
      const folder = relative(ROOT, dir);
      const ref = await reference(dir);
      const run = await validate(dir, "github");
      expect(run.code, folder).toBe(ref.code);
      const lines = run.stdout.split("\n").filter(Boolean);
      const parsed = lines.map(parseCommand);
      expect(
        parsed.map((p) => [p.command, p.props["file"], Number(p.props["line"]), Number(p.props["col"]), p.message]),
        folder,
      ).toEqual([
        ...ref.errors.map((e) => ["error", ciPath(dir, e.file), e.line, e.column, e.message]),
        ...ref.warnings.map((e) => ["warning", ciPath(dir, e.file), e.line, e.column, e.message]),
      ]);
      expect(parsed.map((p) => p.props["title"])).toEqual(
        [...ref.errors, ...ref.warnings].map((e) => `gmsa-gitops ${e.code}`),
      );
      total += ref.errors.length;
    }
    expect(total).toBeGreaterThan(20);
  });

  it("escapes '%', CR and LF in messages, and also ':' and ',' in properties, as GitHub's toolkit does", async () => {
    expect(escapeData("50% done\r\nnext: a, b")).toBe("50%25 done%0D%0Anext: a, b");
    expect(escapeProperty("a:b,c%d\ne")).toBe("a%3Ab%2Cc%25d%0Ae");
    // A file whose name and message carry every character that needs escaping.
    const dir = join(scratch, "odd");
    mkdirSync(dir);
    const file = "a,b:c%d.yaml";
    writeFileSync(
      join(dir, file),
      'apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: odd\nspec:\n  accountName: Odd\n  scope: "50%,a:b"\n',
    );
    const ref = await reference(dir);
    const run = await validate(dir, "github");
    const line = run.stdout.trim();
    expect(line.split("::").length).toBe(3); // the command is not broken by the payload
    expect(line).toContain("a%2Cb%3Ac%25d.yaml");
    const parsed = parseCommand(line);
    expect(parsed.props["file"]).toBe(ciPath(dir, file));
    expect(parsed.message).toBe(ref.errors[0]?.message);
    expect(parsed.message).toContain('"50%,a:b"');
  });
});

describe("validate --format sarif", () => {
  it("is a SARIF 2.1.0 log valid against the official schema, with rules, tool version and one located result per error and warning", async () => {
    let warnings = 0;
    for (const dir of DIRS) {
      const folder = relative(ROOT, dir);
      const ref = await reference(dir);
      const run = await validate(dir, "sarif");
      expect(run.code, folder).toBe(ref.code);
      const log = JSON.parse(run.stdout) as SarifLog;
      expect(checkSarif(log) ? [] : checkSarif.errors, folder).toEqual([]);
      expect(log.version).toBe("2.1.0");
      expect(log.runs).toHaveLength(1);
      const sarifRun = log.runs[0] as SarifRun;
      expect(sarifRun.tool.driver.name).toBe("gmsa-gitops");
      expect(sarifRun.tool.driver.version).toBe(version());
      const ruleIds = sarifRun.tool.driver.rules.map((r) => r.id);
      expect(new Set(ruleIds).size).toBe(ruleIds.length);
      expect(
        sarifRun.results.map((r) => {
          const loc = r.locations[0]?.physicalLocation;
          return [
            r.ruleId,
            ruleIds[r.ruleIndex],
            r.level,
            r.message.text,
            decodeURIComponent(loc?.artifactLocation.uri ?? ""),
            loc?.region.startLine,
            loc?.region.startColumn,
          ];
        }),
        folder,
      ).toEqual([
        ...ref.errors.map((e) => [e.code, e.code, "error", e.message, ciPath(dir, e.file), e.line, e.column]),
        ...ref.warnings.map((w) => [w.code, w.code, "warning", w.message, ciPath(dir, w.file), w.line, w.column]),
      ]);
      // Each result's level is its rule's default level: code scanning shows warnings as warnings.
      const levels = new Map(sarifRun.tool.driver.rules.map((r) => [r.id, r.defaultConfiguration.level]));
      for (const r of sarifRun.results) expect(levels.get(r.ruleId), r.ruleId).toBe(r.level);
      warnings += ref.warnings.length;
    }
    expect(warnings).toBeGreaterThan(0);
  });
});

interface SarifRun {
  tool: { driver: { name: string; version: string; rules: { id: string; defaultConfiguration: { level: string } }[] } };
  results: {
    ruleId: string;
    ruleIndex: number;
    level: string;
    message: { text: string };
    locations: {
      physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } };
    }[];
  }[];
}
interface SarifLog {
  version: string;
  runs: SarifRun[];
}

describe("validate --format junit", () => {
  it("is well-formed XML with one testsuite, a testcase per manifest file, a failure per error and warnings in system-out", async () => {
    const parser = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: "",
      isArray: (name) => ["testsuite", "testcase", "failure"].includes(name),
    });
    let warnings = 0;
    for (const dir of DIRS) {
      const folder = relative(ROOT, dir);
      const ref = await reference(dir);
      const run = await validate(dir, "junit");
      expect(run.code, folder).toBe(ref.code);
      expect(XMLValidator.validate(run.stdout), folder).toBe(true);
      const doc = parser.parse(run.stdout) as JunitDoc;
      const suites = doc.testsuites.testsuite;
      expect(suites, folder).toHaveLength(1);
      const suite = suites[0] as JunitSuite;
      // Manifest files as the listing sees them, independently of the loader.
      const files = readdirSync(dir, { recursive: true, encoding: "utf8" })
        .map((p) => p.split("\\").join("/"))
        .filter((p) => /\.ya?ml$/i.test(p) && !p.split("/").some((part) => part.startsWith(".")))
        .sort();
      const cases = suite.testcase ?? [];
      expect(cases.map((c) => c.name).sort(), folder).toEqual(files.map((f) => ciPath(dir, f)).sort());
      for (const c of cases) {
        expect(c.file).toBe(c.name);
        // A warning never fails a test case (validate exits 0): it is the case's system-out.
        const warned = ref.warnings.filter((w) => ciPath(dir, w.file) === c.name);
        expect(c["system-out"]?.split("\n") ?? [], c.name).toEqual(
          warned.map((w) => `${c.name}:${w.line}:${w.column}: warning: ${w.message}`),
        );
        warnings += warned.length;
        const mine = ref.errors.filter((e) => ciPath(dir, e.file) === c.name);
        expect(
          (c.failure ?? []).map((f) => [f.type, f["#text"]]),
          c.name,
        ).toEqual(mine.map((e) => [e.code, `${c.name}:${e.line}:${e.column}: ${e.message}`]));
      }
      const failing = cases.filter((c) => (c.failure ?? []).length > 0).length;
      expect(Number(suite.tests)).toBe(cases.length);
      expect(Number(suite.failures)).toBe(failing);
      expect(Number(doc.testsuites.failures)).toBe(failing);
    }
    expect(warnings).toBeGreaterThan(0);
  });
});

interface JunitSuite {
  tests: string;
  failures: string;
  testcase?: { name: string; file: string; failure?: { type: string; "#text": string }[]; "system-out"?: string }[];
}
interface JunitDoc {
  testsuites: { failures: string; testsuite: JunitSuite[] };
}
