/**
 * Machine formats of `validate`'s findings for CI systems: GitHub Actions workflow commands
 * (annotations on the pull request's lines), SARIF 2.1.0 (code scanning) and JUnit XML (test
 * reports in GitLab, Jenkins, Azure DevOps). Pure: a report in, text out.
 *
 * File paths are the manifest's path relative to DIR with `base` (DIR relative to the working
 * directory) in front, because a CI system resolves them from the repository root, where the job
 * runs: `validate manifests` reports `manifests/team-a/app.yaml`, not `team-a/app.yaml`.
 */
import type { ErrorCode, ManifestError, ManifestWarning } from "../manifests/index.ts";

/** What a report is made of. */
export interface ValidationReport {
  /** DIR relative to the working directory, '/'-separated; "" when DIR is the working directory. */
  base: string;
  /** The manifest files read, relative to DIR. */
  paths: readonly string[];
  /** Every error, sorted by file, line and column, files relative to DIR. */
  errors: readonly ManifestError[];
  /** Findings that do not fail validate (a valid revision's only), files relative to DIR. */
  warnings: readonly ManifestWarning[];
  /** gmsa-gitops's version, for SARIF's tool. */
  version: string;
}

/**
 * Every error code with what it means: SARIF's rules. A `Record` over the union, so a new code
 * fails type checking until it is described here.
 */
export const RULES: Readonly<Record<ErrorCode, string>> = {
  "file-too-large": "A manifest file is over the per-file size limit.",
  "invalid-utf8": "A manifest file is not valid UTF-8.",
  "unreadable-file": "A manifest file could not be read.",
  "unreadable-folder": "A folder of the repository could not be read, or nests too deep: its manifests are unknown.",
  "suspicious-name":
    "A file or folder that is not a regular file or folder, or whose name would mislead (a FIFO, a socket, a trailing space).",
  "symlink-outside": "A symbolic link leads outside the repository folder or nowhere; links are never followed.",
  "symlink-refused": "A symbolic link to a manifest or folder; links are never followed.",
  "yaml-syntax": "The file is not valid YAML.",
  "duplicate-key": "A map holds the same key twice.",
  "alias-refused": "YAML aliases are refused in manifests.",
  "directive-refused": "A YAML directive other than %YAML 1.2: manifests have one meaning, YAML 1.2's.",
  "tag-refused": "An explicit YAML tag (!tag, !!type): manifests hold plain values only.",
  "too-deep": "The YAML nests deeper than a manifest ever needs.",
  "not-a-resource": "A YAML document is not a map with apiVersion and kind.",
  "unknown-api-version": "The apiVersion is not gmsa-gitops's.",
  "unknown-kind": "The kind is not one of the resource kinds.",
  "unknown-field": "A field the kind's schema does not define (often a typo).",
  "missing-field": "A required field is missing.",
  "wrong-type": "A value has the wrong type.",
  "invalid-value": "A value is not one of those allowed.",
  "invalid-format": "A value does not have the required form.",
  "too-long": "A value is longer than allowed (a gMSA's account name: 15 characters).",
  "too-short": "A value is empty or shorter than allowed.",
  "out-of-range": "A number is outside the allowed range.",
  "too-many-items": "A list holds more items than allowed.",
  "too-few-items": "A list holds fewer items than required.",
  "exactly-one": "An entry must name exactly one of its alternatives.",
  "duplicate-item": "A list holds the same item, or the same key, twice.",
  "invalid-account-name": "An account name AD would refuse (for example all digits).",
  "duplicate-name": "Two resources of one kind have the same name.",
  "duplicate-account-name": "Two resources have the same sAMAccountName.",
  "duplicate-spn": "Two accounts register the same service principal name.",
  "duplicate-kds-root-key": "Two KdsRootKeys name the same key, or more than one asks for any effective key.",
  "conflicting-fields": "Fields that exclude each other are set together.",
  "dangling-reference": "A reference names no resource in the repository.",
  "group-cycle": "Groups contain each other.",
  "weak-encryption": "RC4 or DES without allowWeakEncryption.",
  "empty-encryption": "An empty kerberosEncryptionTypes without allowDefaultEncryptionTypes.",
  "unconstrained-delegation": "trustedForDelegation (unconstrained delegation) without allowUnconstrainedDelegation.",
  "listed-and-removed": "An SPN, principal or member is both listed and in the list of those to remove.",
  "host-cannot-retrieve": "A HostBinding's host is not allowed to retrieve its account's password.",
  "smsa-not-a-reader":
    "A standalone managed service account is named where only a principal that retrieves a gMSA's password makes sense.",
  "smsa-other-host": "A HostBinding puts a standalone managed service account on a computer other than its own.",
};

/** The warning codes, described like the errors: SARIF's rules of level "warning". */
export const WARNING_RULES: Readonly<Record<ManifestWarning["code"], string>> = {
  "protected-account":
    "A manifest names one of the domain's well-known accounts (Domain Admins, krbtgt, ...), which gmsa-gitops never touches.",
};

type RuleId = ErrorCode | ManifestWarning["code"];

/** Error rules first, then warning rules: indexes stay stable as long as codes are only appended. */
const RULE_IDS: readonly RuleId[] = [
  ...(Object.keys(RULES) as ErrorCode[]),
  ...(Object.keys(WARNING_RULES) as ManifestWarning["code"][]),
];

const ruleText = (id: RuleId): string =>
  id in RULES ? RULES[id as ErrorCode] : WARNING_RULES[id as ManifestWarning["code"]];
const ruleLevel = (id: RuleId): "error" | "warning" => (id in RULES ? "error" : "warning");

/** The path a CI system knows a file by: `base` joined with the path relative to DIR. */
export function reportPath(base: string, file: string): string {
  return base === "" ? file : `${base.replace(/\/$/, "")}/${file}`;
}

// GitHub workflow commands ---------------------------------------------------------------------

/**
 * Escapes a workflow command's message: `%`, CR and LF (GitHub's `escapeData` in
 * @actions/core), so a message can never end the command or start another.
 */
export function escapeData(text: string): string {
  return text.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

/** Escapes a workflow command's property value: as data, plus `:` and `,`, which separate properties. */
export function escapeProperty(text: string): string {
  return escapeData(text).replaceAll(":", "%3A").replaceAll(",", "%2C");
}

/** One `::error file=…,line=…,col=…,title=…::message` line per error, then one `::warning` per warning. */
export function renderGithub(report: ValidationReport): string {
  return githubCommands("error", report.base, report.errors) + githubCommands("warning", report.base, report.warnings);
}

function githubCommands(
  command: "error" | "warning",
  base: string,
  findings: ReadonlyArray<Pick<ManifestError, "file" | "line" | "column" | "message"> & { code: string }>,
): string {
  return findings
    .map((e) => {
      const props = [
        `file=${escapeProperty(reportPath(base, e.file))}`,
        `line=${e.line}`,
        `col=${e.column}`,
        `title=${escapeProperty(`gmsa-gitops ${e.code}`)}`,
      ];
      return `::${command} ${props.join(",")}::${escapeData(e.message)}\n`;
    })
    .join("");
}

// SARIF 2.1.0 ----------------------------------------------------------------------------------

function ruleName(code: string): string {
  return code.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
}

/** A relative path as a URI reference: each segment percent-encoded ('#', '?', spaces). */
function uriOf(path: string): string {
  return path
    .split("/")
    .map((segment) => (segment === ".." || segment === "." ? segment : encodeURIComponent(segment)))
    .join("/");
}

/**
 * A SARIF 2.1.0 log with one run: the tool with its version and every rule (one per error and
 * warning code, so rule indexes are stable across runs), and one result per error (level
 * "error") and per warning (level "warning") located at its file, line and column. Paths are
 * relative to `%SRCROOT%`, the repository root for code scanning. Columns count UTF-16 code
 * units, as the YAML parser does.
 */
export function renderSarif(report: ValidationReport): string {
  const findings = [
    ...report.errors.map((e) => ({ ...e, level: "error" as const })),
    ...report.warnings.map((w) => ({ ...w, level: "warning" as const })),
  ];
  const log = {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: {
            name: "gmsa-gitops",
            version: report.version,
            semanticVersion: report.version,
            rules: RULE_IDS.map((id) => ({
              id,
              name: ruleName(id),
              shortDescription: { text: ruleText(id) },
              defaultConfiguration: { level: ruleLevel(id) },
            })),
          },
        },
        invocations: [{ executionSuccessful: true }],
        columnKind: "utf16CodeUnits",
        results: findings.map((e) => ({
          ruleId: e.code,
          ruleIndex: RULE_IDS.indexOf(e.code),
          level: e.level,
          message: { text: e.message },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: uriOf(reportPath(report.base, e.file)), uriBaseId: "%SRCROOT%" },
                region: { startLine: e.line, startColumn: e.column },
              },
              ...(e.path ? { logicalLocations: [{ fullyQualifiedName: e.path, kind: "member" }] } : {}),
            },
          ],
        })),
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

// JUnit XML ------------------------------------------------------------------------------------

/** Characters XML 1.0 cannot carry at all, replaced so the report stays well-formed. */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function xmlText(text: string): string {
  return text.replace(NOT_XML, "\uFFFD").replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function xmlAttr(text: string): string {
  return xmlText(text)
    .replaceAll('"', "&quot;")
    .replaceAll("\n", "&#10;")
    .replaceAll("\r", "&#13;")
    .replaceAll("\t", "&#9;");
}

/**
 * One `<testsuite>` (inside `<testsuites>`), a `<testcase>` per manifest file and a `<failure>`
 * per error in it (the JUnit schema Jenkins and GitLab read allows several per test case). A
 * file refused before reading (a symlink) is a test case too. `tests` counts files, `failures`
 * the files with errors.
 *
 * Warnings do not fail validate, so they are no `<failure>` (that would show a failed test in a
 * passing job): they are the test case's `<system-out>`, one `FILE:LINE:COL: warning: message`
 * line each, which GitLab, Jenkins and Azure DevOps show with the test case.
 */
export function renderJunit(report: ValidationReport): string {
  const byFile = new Map<string, ManifestError[]>();
  for (const p of report.paths) byFile.set(p, []);
  for (const e of report.errors) {
    const list = byFile.get(e.file);
    if (list) list.push(e);
    else byFile.set(e.file, [e]);
  }
  const warningsOf = new Map<string, ManifestWarning[]>();
  for (const w of report.warnings) {
    warningsOf.set(w.file, [...(warningsOf.get(w.file) ?? []), w]);
    if (!byFile.has(w.file)) byFile.set(w.file, []);
  }
  const files = [...byFile.keys()].sort();
  const failed = files.filter((f) => (byFile.get(f) ?? []).length > 0).length;
  const counts = `tests="${files.length}" failures="${failed}" errors="0" skipped="0"`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="gmsa-gitops validate" ${counts}>`,
    `  <testsuite name="${xmlAttr(`gmsa-gitops validate ${report.base || "."}`)}" ${counts}>`,
  ];
  for (const file of files) {
    const path = reportPath(report.base, file);
    const errors = byFile.get(file) ?? [];
    const warnings = warningsOf.get(file) ?? [];
    const open = `    <testcase classname="gmsa-gitops.validate" name="${xmlAttr(path)}" file="${xmlAttr(path)}"`;
    if (errors.length === 0 && warnings.length === 0) {
      lines.push(`${open}/>`);
      continue;
    }
    lines.push(`${open}>`);
    for (const e of errors) {
      const where = `${path}:${e.line}:${e.column}`;
      lines.push(
        `      <failure type="${xmlAttr(e.code)}" message="${xmlAttr(`${where}: ${e.message}`)}">${xmlText(`${where}: ${e.message}`)}</failure>`,
      );
    }
    if (warnings.length > 0) {
      const out = warnings.map((w) => `${path}:${w.line}:${w.column}: warning: ${w.message}`).join("\n");
      lines.push(`      <system-out>${xmlText(out)}</system-out>`);
    }
    lines.push("    </testcase>");
  }
  lines.push("  </testsuite>", "</testsuites>");
  return `${lines.join("\n")}\n`;
}
