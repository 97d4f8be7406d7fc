/**
 * `gmsa-gitops validate [DIR] [--format text|json]`: schema and lint for a folder of
 * manifests, for pull requests and pre-commit hooks. Prints errors like a compiler.
 */
import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { KINDS, loadManifests } from "../manifests/index.ts";
import type { DesiredState, Kind, LoadResult } from "../manifests/index.ts";
import type { Command, Io } from "./command.ts";
import { EXIT } from "./command.ts";

const USAGE = `Usage: gmsa-gitops validate [DIR] [--format text|json]

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
  -h, --help     show this help

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
  let format: string;
  let dir: string;
  try {
    const parsed = parseArgs({
      args: [...args],
      options: { format: { type: "string", default: "text" } },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.positionals.length > 1) throw new Error(`expected one DIR, got ${parsed.positionals.length}`);
    format = parsed.values.format;
    dir = parsed.positionals[0] ?? ".";
    if (format !== "text" && format !== "json") throw new Error(`--format must be text or json, not "${format}"`);
  } catch (err) {
    io.stderr(`gmsa-gitops validate: ${usageMessage(err)}\nRun gmsa-gitops validate --help for usage.\n`);
    return EXIT.usage;
  }
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    io.stderr(`gmsa-gitops validate: ${dir} is not a folder\n`);
    return EXIT.usage;
  }
  const result = await loadManifests(dir);
  if (format === "json") {
    io.stdout(`${JSON.stringify(toJson(result))}\n`);
  } else if (result.ok) {
    io.stdout(`${summary(result.desired, result.files)}\n`);
  } else {
    for (const e of result.errors) io.stdout(`${printable(e.file)}:${e.line}:${e.column}: ${e.message}\n`);
    const files = new Set(result.errors.map((e) => e.file)).size;
    io.stderr(`${plural(result.errors.length, "error")} in ${plural(files, "file")}\n`);
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

/**
 * A file name as one line of output: control characters (a newline in a name would forge a
 * second error line) and bidirectional overrides (which reorder what a reviewer sees) escaped.
 */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return name.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\\]/g, (c) =>
    c === "\\"
      ? "\\\\"
      : c === "\n"
        ? "\\n"
        : c === "\t"
          ? "\\t"
          : c === "\r"
            ? "\\r"
            : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
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
    KdsRootKey: desired.kdsRootKey ? 1 : 0,
  };
}

function toJson(result: LoadResult): unknown {
  if (!result.ok) return { valid: false, errors: result.errors };
  return { valid: true, files: result.files, resources: counts(result.desired) };
}

/** "valid: 5 files, 2 ADGroup, 2 GroupManagedServiceAccount, 3 HostBinding, 1 KdsRootKey". */
function summary(desired: DesiredState, files: number): string {
  const c = counts(desired);
  return `valid: ${plural(files, "file")}, ${KINDS.map((k) => `${c[k]} ${k}`).join(", ")}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
