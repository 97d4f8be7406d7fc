/**
 * Manifest bytes → typed desired state, or every error found. Pure: no I/O, so the Git source
 * (files from a commit) and `loadManifests` (files from a directory) share it.
 *
 * Steps per file: size limit → strict UTF-8 → YAML documents (no aliases) → per document:
 * apiVersion and kind → CRD schema with defaults → list-type repeats → name rules. Then,
 * across all valid resources: duplicate names, account names and SPNs, references, group
 * cycles, weak encryption, and whether each bound host may retrieve its account's password.
 * One bad file never hides another's errors.
 */
import { lint } from "./lint.ts";
import { lintKdsRootKeys } from "./lint-kds.ts";
import { gmsaRoleRules } from "./rules-accounts.ts";
import { fileTooLarge, isManifestPath } from "./tree.ts";
import type { Checked } from "./lint.ts";
import { validateSchema } from "./schema.ts";
import { listOr, quote, suggest } from "./text.ts";
import { API_VERSION, KINDS } from "./types.generated.ts";
import { DEFAULT_MAX_FILE_BYTES } from "./types.ts";
import type {
  BindingResource,
  DesiredState,
  ErrorCode,
  GmsaResource,
  GroupManagedServiceAccountSpec,
  GroupResource,
  KdsRootKeyResource,
  SmsaResource,
  Kind,
  LoadOptions,
  LoadResult,
  ManifestError,
  ManifestFile,
  Resource,
} from "./types.ts";
import { decodeUtf8, errorAt, locate, parseFile, peekScalar } from "./yaml.ts";
import type { ParsedDocument, PathSegment, YamlDocument } from "./yaml.ts";

const KIND_SET: ReadonlySet<string> = new Set(KINDS);

/** Short names people write instead of the kind (kubectl's shortNames and plain slips). */
const KIND_ALIASES: Record<string, Kind> = {
  gmsa: "GroupManagedServiceAccount",
  groupmanagedserviceaccount: "GroupManagedServiceAccount",
  adgroup: "ADGroup",
  group: "ADGroup",
  hostbinding: "HostBinding",
  kdsrootkey: "KdsRootKey",
  smsa: "ManagedServiceAccount",
  msa: "ManagedServiceAccount",
  managedserviceaccount: "ManagedServiceAccount",
  standalonemanagedserviceaccount: "ManagedServiceAccount",
};

/**
 * Parses, validates and lints in-memory manifest files. Files whose path is not a manifest path
 * (see `isManifestPath`) are ignored. `fileErrors` are problems found while reading the files
 * (refused symlinks, unreadable folders, files too large to read, see `readManifestTree`):
 * those places may have held resources, so references are then not judged dangling. Returns
 * the desired state only when there is no error at all; otherwise every error, sorted by file,
 * line and column.
 */
export function parseManifests(
  files: ReadonlyArray<ManifestFile>,
  options: LoadOptions = {},
  fileErrors: readonly ManifestError[] = [],
  cache?: ParseCache,
): LoadResult {
  const limit = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const state = new Collector();
  state.errors.push(...fileErrors);
  if (fileErrors.length > 0) state.unreadable();
  const paths: string[] = [];
  const kept = new Map<string, FileOutcome>();
  for (const file of [...files].sort((a, b) => compare(a.path, b.path))) {
    if (!isManifestPath(file.path)) continue;
    paths.push(file.path);
    const key = cache && `${limit}\0${file.path}\0${file.id ?? sha1(file.content)}`;
    const outcome = (key && cache?.get(key)) || analyseFile(file, limit);
    if (key) kept.set(key, outcome);
    state.file(outcome);
  }
  cache?.keep(kept);
  return state.finish(paths);
}

/** The SHA-1 of a file without a Git blob id; node:crypto is loaded only when a cache needs it. */
function sha1(content: Uint8Array): string {
  return process.getBuiltinModule("node:crypto").createHash("sha1").update(content).digest("hex");
}

/**
 * What each file of the last revision parsed to, keyed by path and content (the file's `id`, Git's
 * blob id, or else a SHA-1 of its bytes, which at 5,000 files was most of a new revision's parse): a new revision
 * parses only the files that changed (added, edited, renamed) and replays the others. The
 * result, errors included, is exactly what parsing every file gives: what one file comes to
 * does not depend on the others, and everything that does (duplicate names, references,
 * lint) runs afresh. Holds the files of one revision only.
 */
export class ParseCache {
  #files = new Map<string, FileOutcome>();
  get(key: string): FileOutcome | undefined {
    return this.#files.get(key);
  }
  keep(files: Map<string, FileOutcome>): void {
    this.#files = files;
  }
}

/** Marks a kind's names as not all known, or one name as invalid (so references to it do not cascade). */
type Mark = { readonly invalid: Kind; readonly name: string } | { readonly incomplete: Kind } | "unreadable";

/** What one document comes to on its own; replayed into the collector, which claims its name. */
interface DocOutcome {
  /** Errors found before its name is claimed (not a resource, wrong kind). */
  readonly before: readonly ManifestError[];
  /** Set when it stops before its name is claimed. */
  readonly stop?: Mark;
  /** Its kind and name, claimed (unique per kind) before the rest counts. */
  readonly claim?: { readonly kind: Kind; readonly name: string; readonly doc: ParsedDocument };
  /** Schema and name-rule errors, counted only when the name was free. */
  readonly after: readonly ManifestError[];
  readonly mark?: Mark;
  readonly resource?: { readonly doc: ParsedDocument; readonly resource: Resource<Kind, unknown> };
}

/** What one file comes to on its own. */
interface FileOutcome {
  readonly errors: readonly ManifestError[];
  readonly unreadable: boolean;
  readonly docs: readonly DocOutcome[];
}

function analyseFile(file: ManifestFile, limit: number): FileOutcome {
  if (file.content.length > limit) {
    const message = fileTooLarge(file.content.length, limit);
    return {
      errors: [{ file: file.path, line: 1, column: 1, path: "", message, code: "file-too-large" }],
      unreadable: true,
      docs: [],
    };
  }
  const decoded = decodeUtf8(file.path, file.content);
  if ("error" in decoded) return { errors: [decoded.error], unreadable: true, docs: [] };
  const errors: ManifestError[] = [];
  const docs = parseFile(file.path, decoded.text, errors).map(analyse);
  return { errors, unreadable: false, docs };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorts errors by file, line and column; errors at the same place keep the order they were found in. */
export function sortErrors(errors: ManifestError[]): ManifestError[] {
  return errors.sort((a, b) => compare(a.file, b.file) || a.line - b.line || a.column - b.column);
}

/** Accumulates resources and errors across files, then lints and builds the result. */
class Collector {
  readonly errors: ManifestError[] = [];
  readonly gmsas = new Map<string, Checked<GmsaResource>>();
  readonly smsas = new Map<string, Checked<SmsaResource>>();
  readonly groups = new Map<string, Checked<GroupResource>>();
  readonly bindings = new Map<string, Checked<BindingResource>>();
  readonly kds = new Map<string, Checked<KdsRootKeyResource>>();
  /** Every named document per kind, valid or not: for duplicate names. */
  readonly seen = new Map<Kind, Map<string, { doc: () => YamlDocument }>>(KINDS.map((k) => [k, new Map()]));
  readonly invalidNames = new Map<Kind, Set<string>>(KINDS.map((k) => [k, new Set()]));
  readonly incomplete = new Set<Kind>();
  unreadable(): void {
    for (const k of KINDS) this.incomplete.add(k);
  }

  mark(mark: Mark | undefined): void {
    if (mark === undefined) return;
    if (mark === "unreadable") this.unreadable();
    else if ("invalid" in mark) this.invalidNames.get(mark.invalid)?.add(mark.name);
    else this.incomplete.add(mark.incomplete);
  }

  /** Adds one file's outcome, in order: its errors, then each document's. */
  file(outcome: FileOutcome): void {
    this.errors.push(...outcome.errors);
    if (outcome.unreadable) this.unreadable();
    for (const doc of outcome.docs) {
      this.errors.push(...doc.before);
      if (doc.stop !== undefined) {
        this.mark(doc.stop);
        continue;
      }
      if (doc.claim && !this.unique(doc.claim.doc, doc.claim.kind, doc.claim.name)) continue;
      this.errors.push(...doc.after);
      this.mark(doc.mark);
      if (doc.resource) this.add(doc.resource.doc, doc.resource.resource);
    }
  }

  /** Names are unique per kind (KdsRootKeys naming the same key are lint-kds.ts's to find). */
  unique(doc: ParsedDocument, kind: Kind, name: string): boolean {
    const names = this.seen.get(kind) as Map<string, { doc: () => YamlDocument }>;
    const seen = names.get(name);
    if (seen) {
      const first = seen.doc();
      const pos = locate(first, ["metadata", "name"], "value");
      const message = `another ${kind} is already named ${quote(name)} (${first.file}:${pos.line})`;
      this.errors.push(errorAt(doc.tree(), ["metadata", "name"], "value", "duplicate-name", message));
      return false;
    }
    names.set(name, { doc: doc.tree });
    return true;
  }

  add(parsed: ParsedDocument, resource: Resource<Kind, unknown>): void {
    const doc = parsed.tree;
    switch (resource.kind) {
      case "GroupManagedServiceAccount":
        this.gmsas.set(resource.name, { doc, resource: resource as GmsaResource });
        break;
      case "ADGroup":
        this.groups.set(resource.name, { doc, resource: resource as GroupResource });
        break;
      case "HostBinding":
        this.bindings.set(resource.name, { doc, resource: resource as BindingResource });
        break;
      case "ManagedServiceAccount":
        this.smsas.set(resource.name, { doc, resource: resource as SmsaResource });
        break;
      case "KdsRootKey":
        this.kds.set(resource.name, { doc, resource: resource as KdsRootKeyResource });
        break;
    }
  }

  finish(paths: string[]): LoadResult {
    lint(
      {
        gmsas: this.gmsas,
        smsas: this.smsas,
        groups: this.groups,
        bindings: this.bindings,
        invalidNames: this.invalidNames,
        incomplete: this.incomplete,
      },
      this.errors,
    );
    lintKdsRootKeys(this.kds, this.errors);
    if (this.errors.length > 0) return { ok: false, errors: sortErrors(this.errors), paths };
    const resources = <R>(m: Map<string, Checked<R>>): ReadonlyMap<string, R> =>
      new Map([...m].map(([name, c]) => [name, c.resource]));
    const desired: DesiredState = {
      gmsas: resources(this.gmsas),
      smsas: resources(this.smsas),
      groups: resources(this.groups),
      bindings: resources(this.bindings),
      kdsRootKeys: resources(this.kds),
    };
    return { ok: true, desired, files: paths.length, paths };
  }
}

/** One document's checks that depend on nothing else: the errors they find, in order. */
class DocumentChecks {
  readonly errors: ManifestError[] = [];

  error(doc: ParsedDocument, path: PathSegment[], at: "key" | "value", code: ErrorCode, message: string): void {
    this.errors.push(errorAt(doc.tree(), path, at, code, message));
  }

  /** apiVersion and kind, checked before the schema (which depends on the kind). */
  kindOf(doc: ParsedDocument, fields: Record<string, unknown>): { readonly kind: Kind } | { readonly mark: Mark } {
    const kind = fields["kind"];
    const apiVersion = fields["apiVersion"];
    const known = typeof kind === "string" && KIND_SET.has(kind) ? (kind as Kind) : undefined;
    let ok = true;
    if (apiVersion === undefined) {
      this.error(doc, [], "key", "missing-field", `missing required field "apiVersion" (${API_VERSION})`);
      ok = false;
    } else if (apiVersion !== API_VERSION) {
      this.error(
        doc,
        ["apiVersion"],
        "value",
        "unknown-api-version",
        `${quote(apiVersion)} is not a gmsa-gitops API; use ${API_VERSION}`,
      );
      ok = false;
    }
    if (kind === undefined) {
      this.error(doc, [], "key", "missing-field", `missing required field "kind" (${listOr([...KINDS])})`);
      ok = false;
    } else if (!known) {
      const guess = typeof kind === "string" ? (KIND_ALIASES[kind.toLowerCase()] ?? suggest(kind, KINDS)) : undefined;
      const hint = guess ? `did you mean ${guess}?` : `use ${listOr([...KINDS])}`;
      this.error(doc, ["kind"], "value", "unknown-kind", `unknown kind ${quote(kind)}; ${hint}`);
      ok = false;
    }
    if (ok && known) return { kind: known };
    // The document is not one of ours (or not readable as one): names of its kind are unknown.
    const name = (fields["metadata"] as Record<string, unknown> | undefined)?.["name"];
    return {
      mark: known && typeof name === "string" ? { invalid: known, name } : known ? { incomplete: known } : "unreadable",
    };
  }

  /**
   * What the schema cannot say: AD refuses sAMAccountNames made only of digits; a DN component
   * (`spec.path`) holding a control character would only fail at apply; a gMSA's dnsHostName
   * must be a fully qualified DNS name (not one label, not an IP address); an SPN's port is at
   * most 65535.
   */
  nameRules(doc: ParsedDocument, resource: Resource<Kind, unknown>): void {
    if (resource.kind === "GroupManagedServiceAccount")
      gmsaRoleRules(resource.spec as GroupManagedServiceAccountSpec, (path, at, code, message) =>
        this.error(doc, path, at, code, message),
      );
    if (
      resource.kind !== "GroupManagedServiceAccount" &&
      resource.kind !== "ManagedServiceAccount" &&
      resource.kind !== "ADGroup"
    )
      return;
    const spec = resource.spec as {
      accountName: string;
      path?: string;
      dnsHostName?: string;
      servicePrincipalNames?: string[];
    };
    if (/^[0-9]+$/.test(spec.accountName))
      this.error(
        doc,
        ["spec", "accountName"],
        "value",
        "invalid-account-name",
        `${quote(spec.accountName)} is only digits, which AD does not accept as a sAMAccountName; add a letter`,
      );
    const control = spec.path === undefined ? undefined : controlCharacter(spec.path);
    if (control)
      this.error(
        doc,
        ["spec", "path"],
        "value",
        "invalid-format",
        `${quote(spec.path)} contains the control character ${control}, which no DN component may hold; remove it`,
      );
    const host = spec.dnsHostName;
    if (host !== undefined && /^[0-9.]+$/.test(host))
      this.error(
        doc,
        ["spec", "dnsHostName"],
        "value",
        "invalid-format",
        `${quote(host)} is an IP address; dnsHostName is the account's fully qualified DNS name (e.g. service1.company.local)`,
      );
    else if (host !== undefined && !host.includes("."))
      this.error(
        doc,
        ["spec", "dnsHostName"],
        "value",
        "invalid-format",
        `${quote(host)} is a single label; write the fully qualified DNS name (e.g. ${host}.company.local): Kerberos clients resolve the account by it`,
      );
    (spec.servicePrincipalNames ?? []).forEach((spn, i) => {
      const port = /^[^/]+\/[^/:]+:([0-9]+)/.exec(spn)?.[1];
      if (port !== undefined && (Number(port) > 65535 || Number(port) === 0))
        this.error(
          doc,
          ["spec", "servicePrincipalNames", i],
          "value",
          "out-of-range",
          `${quote(spn)} has port ${port}; a port is between 1 and 65535`,
        );
    });
  }
}

/** What one document comes to on its own (see `DocOutcome`). */
function analyse(doc: ParsedDocument): DocOutcome {
  const checks = new DocumentChecks();
  const stop = (mark: Mark): DocOutcome => ({ before: checks.errors, stop: mark, after: [] });
  if (doc.broken) {
    // Salvage kind and name from the partial tree so references to it do not cascade.
    const tree = doc.tree();
    const kind = peekScalar(tree, ["kind"]);
    const name = peekScalar(tree, ["metadata", "name"]);
    if (typeof kind === "string" && KIND_SET.has(kind) && typeof name === "string")
      return stop({ invalid: kind as Kind, name });
    return stop(typeof kind === "string" && KIND_SET.has(kind) ? { incomplete: kind as Kind } : "unreadable");
  }
  const value = doc.value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    checks.error(
      doc,
      [],
      "value",
      "not-a-resource",
      `a manifest must be a map with apiVersion, kind, metadata and spec; got ${describe(value)}`,
    );
    return stop("unreadable");
  }
  const fields = value as Record<string, unknown>;
  const checked = checks.kindOf(doc, fields);
  if ("mark" in checked) return stop(checked.mark);
  const kind = checked.kind;
  const before = checks.errors.splice(0);
  const name = (fields["metadata"] as Record<string, unknown> | undefined)?.["name"];
  const named = typeof name === "string";
  const claim = named ? { kind: kind, name, doc } : undefined;
  const after = checks.errors;
  const outcome = { before, ...(claim ? { claim } : {}), after };
  if (!validateSchema(doc, kind, value, after))
    return { ...outcome, mark: named ? { invalid: kind, name } : { incomplete: kind } };
  const resource = toResource(doc, kind, fields);
  checks.nameRules(doc, resource);
  if (after.length > 0) return { ...outcome, mark: { invalid: kind, name: resource.name } };
  return { ...outcome, resource: { doc, resource } };
}

/** The first control character of `text` as `U+000A`, or undefined. */
function controlCharacter(text: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  const found = /[\u0000-\u001f\u007f-\u009f]/.exec(text)?.[0];
  return found === undefined ? undefined : `U+${found.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

/** Builds the typed resource from a schema-valid, defaulted document. */
function toResource(doc: ParsedDocument, kind: Kind, fields: Record<string, unknown>): Resource<Kind, unknown> {
  const metadata = fields["metadata"] as {
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  return {
    kind,
    name: metadata.name,
    spec: fields["spec"],
    source: { file: doc.file, line: doc.start.line, column: doc.start.column },
    labels: metadata.labels ?? {},
    annotations: metadata.annotations ?? {},
  };
}
