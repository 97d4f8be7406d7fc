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
  Kind,
  SmsaResource,
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
): LoadResult {
  const limit = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const state = new Collector();
  state.errors.push(...fileErrors);
  if (fileErrors.length > 0) state.unreadable();
  const paths: string[] = [];
  for (const file of [...files].sort((a, b) => compare(a.path, b.path))) {
    if (!isManifestPath(file.path)) continue;
    paths.push(file.path);
    if (file.content.length > limit) {
      state.fileError(file.path, "file-too-large", fileTooLarge(file.content.length, limit));
      continue;
    }
    const decoded = decodeUtf8(file.path, file.content);
    if ("error" in decoded) {
      state.errors.push(decoded.error);
      state.unreadable();
      continue;
    }
    for (const doc of parseFile(file.path, decoded.text, state.errors)) state.document(doc);
  }
  return state.finish(paths);
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
  /** A file-level error at line 1; the file's resources are unknown, so references are not judged. */
  fileError(file: string, code: ErrorCode, message: string): void {
    this.errors.push({ file, line: 1, column: 1, path: "", message, code });
    this.unreadable();
  }

  unreadable(): void {
    for (const k of KINDS) this.incomplete.add(k);
  }

  error(doc: ParsedDocument, path: PathSegment[], at: "key" | "value", code: ErrorCode, message: string): void {
    this.errors.push(errorAt(doc.tree(), path, at, code, message));
  }

  document(doc: ParsedDocument): void {
    if (doc.broken) {
      // Salvage kind and name from the partial tree so references to it do not cascade.
      const tree = doc.tree();
      const kind = peekScalar(tree, ["kind"]);
      const name = peekScalar(tree, ["metadata", "name"]);
      if (typeof kind === "string" && KIND_SET.has(kind) && typeof name === "string")
        this.invalidNames.get(kind as Kind)?.add(name);
      else if (typeof kind === "string" && KIND_SET.has(kind)) this.incomplete.add(kind as Kind);
      else this.unreadable();
      return;
    }
    const value = doc.value;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.error(
        doc,
        [],
        "value",
        "not-a-resource",
        `a manifest must be a map with apiVersion, kind, metadata and spec; got ${describe(value)}`,
      );
      this.unreadable();
      return;
    }
    const fields = value as Record<string, unknown>;
    const kind = this.kindOf(doc, fields);
    if (!kind) return;
    const name = (fields["metadata"] as Record<string, unknown> | undefined)?.["name"];
    const named = typeof name === "string";
    if (named && !this.unique(doc, kind, name)) return;

    const before = this.errors.length;
    if (!validateSchema(doc, kind, value, this.errors)) {
      if (named) this.invalidNames.get(kind)?.add(name);
      else this.incomplete.add(kind);
      return;
    }
    const resource = toResource(doc, kind, fields);
    this.nameRules(doc, resource);
    if (this.errors.length > before) {
      this.invalidNames.get(kind)?.add(resource.name);
      return;
    }
    this.add(doc, resource);
  }

  /** apiVersion and kind, checked before the schema (which depends on the kind). */
  kindOf(doc: ParsedDocument, fields: Record<string, unknown>): Kind | undefined {
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
    if (ok) return known;
    // The document is not one of ours (or not readable as one): names of its kind are unknown.
    const name = (fields["metadata"] as Record<string, unknown> | undefined)?.["name"];
    if (known && typeof name === "string") this.invalidNames.get(known)?.add(name);
    else if (known) this.incomplete.add(known);
    else this.unreadable();
    return undefined;
  }

  /** Names are unique per kind (KdsRootKeys naming the same key are lint-kds.ts's to find). */
  unique(doc: ParsedDocument, kind: Kind, name: string): boolean {
    const names = this.seen.get(kind) as Map<string, { doc: () => YamlDocument }>;
    const seen = names.get(name);
    if (seen) {
      const first = seen.doc();
      const pos = locate(first, ["metadata", "name"], "value");
      this.error(
        doc,
        ["metadata", "name"],
        "value",
        "duplicate-name",
        `another ${kind} is already named ${quote(name)} (${first.file}:${pos.line})`,
      );
      return false;
    }
    names.set(name, { doc: doc.tree });
    return true;
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
