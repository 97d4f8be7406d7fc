/**
 * `gmsa-gitops validate [DIR] [--format text|json|github|sarif|junit]`: schema and lint for a
 * folder of manifests, for pull requests and pre-commit hooks. Prints errors like a compiler, or
 * in the format a CI system reads (see formats.ts).
 */
import { stat } from "node:fs/promises";
import { setFlagsFromString } from "node:v8";
import { relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { KINDS, loadManifests, manifestWarnings } from "../manifests/index.ts";
import type { DesiredState, Kind, LoadResult, ManifestWarning } from "../manifests/index.ts";
import { printable } from "../printable.ts";
import type { Command, Io } from "./command.ts";
import { EXIT } from "./command.ts";
import { renderGithub, renderJunit, renderSarif } from "./formats.ts";
import type { ValidationReport } from "./formats.ts";
import { version } from "./command.ts";

/** The output formats of `validate`. */
export const VALIDATE_FORMATS = ["text", "json", "github", "sarif", "junit"] as const;
type Format = (typeof VALIDATE_FORMATS)[number];

const USAGE = `Usage: gmsa-gitops validate [DIR] [--format text|json|github|sarif|junit]

Checks every .yaml/.yml manifest under DIR (default: the current folder), in nested folders
and multi-document files, without contacting Active Directory: YAML syntax, the CRD schemas,
names (15-character sAMAccountNames, DNS labels, host names), uniqueness (names, account
names, SPNs, KDS root keys), references between resources, group nesting cycles, weak
encryption, and whether each HostBinding's host may retrieve its account's password.

Folders and files whose name starts with '.' are skipped. Symbolic links are never followed:
a link to a manifest or a folder is reported. Files over 1 MiB, unreadable folders, FIFOs and
sockets with a manifest name, names ending in a space and folders nested more than 32 levels
deep are reported, not read. File names are printed with control characters escaped.

Options:
  --format text  one error per line, FILE:LINE:COL: message, FILE relative to DIR (default);
                 on success a one-line summary
  --format json  {"valid":true,"files":N,"resources":{KIND:N}} or
                 {"valid":false,"errors":[{file,line,column,path,code,message}]}
  --format github
                 GitHub Actions workflow commands, ::error file=F,line=L,col=C,title=T::message,
                 which annotate the pull request's lines; FILE relative to the working directory
  --format sarif SARIF 2.1.0 for code scanning (one rule per error and warning code, the
                 tool's version), FILE relative to the working directory
  --format junit JUnit XML: one testsuite, a testcase per manifest file, a failure per error,
                 warnings in the testcase's system-out, FILE relative to the working directory
                 (github, sarif and junit print the error count on stderr)
  -h, --help     show this help

Warnings (a manifest naming one of the domain's well-known accounts, such as Domain Admins,
which gmsa-gitops never touches) are printed as FILE:LINE:COL: warning: message (json: "warnings";
github: ::warning; sarif: results of level "warning"; junit: the file's system-out) and never
change the exit code. They are reported for a valid revision only.

Exit codes: 0 valid, 1 invalid, 2 usage error (bad option, DIR not a folder).
`;

/** The `validate` command. */
export const validateCommand: Command = {
  name: "validate",
  summary: "check a folder of manifests (schema, references, lint); exit 1 on errors",
  usage: USAGE,
  run: runValidate,
};

async function runValidate(args: readonly string[], io: Io): Promise<number> {
  let format: Format;
  let dir: string;
  try {
    const parsed = parseArgs({
      args: [...args],
      options: { format: { type: "string", default: "text" } },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.positionals.length > 1) throw new Error(`expected one DIR, got ${parsed.positionals.length}`);
    const asked = parsed.values.format;
    dir = parsed.positionals[0] ?? ".";
    if (!isFormat(asked)) throw new Error(`--format must be one of ${VALIDATE_FORMATS.join(", ")}, not "${asked}"`);
    format = asked;
  } catch (err) {
    io.stderr(`gmsa-gitops validate: ${usageMessage(err)}\nRun gmsa-gitops validate --help for usage.\n`);
    return EXIT.usage;
  }
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    io.stderr(`gmsa-gitops validate: ${dir} is not a folder\n`);
    return EXIT.usage;
  }
  keepYoungGenerationSmall();
  const result = await loadManifests(dir);
  // Warnings never fail validate: they are printed beside a valid result (errors come first).
  const warnings = result.ok ? manifestWarnings(result.desired) : [];
  if (format === "json") {
    io.stdout(`${JSON.stringify(toJson(result, warnings))}\n`);
  } else if (format === "text") {
    for (const w of warnings) io.stdout(`${printable(w.file)}:${w.line}:${w.column}: warning: ${w.message}\n`);
    if (result.ok) io.stdout(`${summary(result.desired, result.files)}\n`);
    for (const e of result.ok ? [] : result.errors)
      io.stdout(`${printable(e.file, { backslash: true })}:${e.line}:${e.column}: ${e.message}\n`);
  } else {
    const report: ValidationReport = {
      base: relative(process.cwd(), resolve(dir)).split(sep).join("/"),
      paths: result.paths,
      errors: result.ok ? [] : result.errors,
      warnings,
      version: version(),
    };
    const render = format === "github" ? renderGithub : format === "sarif" ? renderSarif : renderJunit;
    io.stdout(render(report));
    if (result.ok && format === "github") io.stderr(`${summary(result.desired, result.files)}\n`);
  }
  if (!result.ok && format !== "json") {
    const files = new Set(result.errors.map((e) => e.file)).size;
    io.stderr(`${plural(result.errors.length, "error")} in ${plural(files, "file")}\n`);
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

/**
 * Validate is one pass in which nearly everything allocated dies young (parser tokens, the
 * values of documents once checked). V8 grows its young generation under that allocation rate
 * up to 3 × 16 MiB, which at 10,000 resources was 60 MiB of the 170 MiB peak; kept at its
 * initial size, scavenges are more frequent but each finds as little alive, and the CPU time
 * stayed the same (docs/benchmarks.md). A process-wide setting, for a process that only validates.
 */
function keepYoungGenerationSmall(): void {
  setFlagsFromString("--semi-space-growth-factor=1");
}

function isFormat(value: string): value is Format {
  return (VALIDATE_FORMATS as readonly string[]).includes(value);
}

/** parseArgs' messages, minus its advice about '--' (a manifest folder never starts with '-'). */
function usageMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  return unknown ? `unknown option ${unknown[1]}` : message;
}

function counts(desired: DesiredState): Record<Kind, number> {
  return {
    ADGroup: desired.groups.size,
    GroupManagedServiceAccount: desired.gmsas.size,
    HostBinding: desired.bindings.size,
    KdsRootKey: desired.kdsRootKeys.size,
    ManagedServiceAccount: desired.smsas.size,
  };
}

function toJson(result: LoadResult, warnings: readonly ManifestWarning[]): unknown {
  if (!result.ok) return { valid: false, errors: result.errors };
  return {
    valid: true,
    files: result.files,
    resources: counts(result.desired),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

/** "valid: 5 files, 2 ADGroup, 2 GroupManagedServiceAccount, 3 HostBinding, 1 KdsRootKey, 0 ManagedServiceAccount". */
function summary(desired: DesiredState, files: number): string {
  const c = counts(desired);
  return `valid: ${plural(files, "file")}, ${KINDS.map((k) => `${c[k]} ${k}`).join(", ")}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
