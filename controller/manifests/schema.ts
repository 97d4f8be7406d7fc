/**
 * Validates one document against its kind's CRD schema (ajv on the openAPIV3Schema), applies
 * the schema's defaults in place, and turns ajv's errors into compiler-style errors positioned
 * on the offending key or value. Also enforces what ajv does not know: the Kubernetes list
 * types (`x-kubernetes-list-type: set | map`) as duplicate checks.
 */
import { createRequire } from "node:module";
import type * as AjvModule from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";
import { conforms } from "./conforms.ts";
import { SCHEMAS } from "./schemas.generated.ts";
import { describeType, formatPath, listOr, quote, suggest } from "./text.ts";
import type { Kind, ManifestError, ErrorCode } from "./types.ts";
import { errorAt, locate } from "./yaml.ts";
import { WINDOWS_FOLDER_PATTERN, windowsPathProblem } from "./windows-path.ts";
import type { ParsedDocument, PathSegment, YamlDocument } from "./yaml.ts";

/** The parts of a schema these checks read. */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
}

let compiled: Map<Kind, ValidateFunction> | undefined;

/**
 * The compiled validators, built on first use and then reused for the life of the process:
 * compiling costs far more than validating (about 100 ms against microseconds per document).
 * A cache of constant data, not shared mutable state. ajv itself is loaded here, on first use
 * (synchronously: parsing is synchronous), so a revision without schema errors never loads it.
 */
function validators(): Map<Kind, ValidateFunction> {
  if (!compiled) {
    const { Ajv } = createRequire(import.meta.url)("ajv") as typeof AjvModule;
    // verbose: errors carry the offending data and schema, which the messages quote.
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
    // Annotations Kubernetes defines and ajv does not; enforced by checkLists below.
    ajv.addVocabulary(["x-kubernetes-list-type", "x-kubernetes-list-map-keys"]);
    compiled = new Map(Object.entries(SCHEMAS).map(([kind, schema]) => [kind as Kind, ajv.compile(schema)]));
  }
  return compiled;
}

/**
 * Validates `value` (a whole document) as `kind`, filling in defaults. Appends errors and
 * returns whether there were none. `value` must be the document's plain value.
 */
export function validateSchema(doc: ParsedDocument, kind: Kind, value: object, errors: ManifestError[]): boolean {
  const before = errors.length;
  // Nearly every document is valid: the quick walk says so (filling in the same defaults) at a
  // fraction of ajv's cost, and ajv runs only to judge and word what the walk refused.
  const validate = conforms(SCHEMAS[kind], value) ? undefined : validators().get(kind);
  if (validate && !validate(value)) {
    const raw = validate.errors ?? [];
    // A misspelt required field shows up twice: as unknown ("dnsHostname") and as missing
    // ("dnsHostName"). Report it once, as the typo with its suggestion.
    const suggested = new Set<string>();
    const tree = doc.tree(); // errors need positions: worth a re-parse
    const mapped = raw.map((e) => toManifestError(tree, kind, value, e, suggested));
    for (const m of mapped) {
      if (m.code === "missing-field" && suggested.has(m.path)) continue;
      errors.push(m);
    }
  }
  const plan = listPlans().get(kind);
  if (plan) checkLists(doc, plan, value, [], errors);
  return errors.length === before;
}

/** Splits a JSON pointer into path segments, using numbers where the data is a list. */
function segments(pointer: string, root: unknown): PathSegment[] {
  if (pointer === "") return [];
  const out: PathSegment[] = [];
  let data = root;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(data)) {
      const i = Number(key);
      out.push(i);
      data = data[i] as unknown;
    } else {
      out.push(key);
      data = data !== null && typeof data === "object" ? (data as Record<string, unknown>)[key] : undefined;
    }
  }
  return out;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  object: "a map",
  array: "a list",
};

/** One ajv error → one positioned, readable error. */
function toManifestError(
  doc: YamlDocument,
  kind: Kind,
  root: object,
  e: ErrorObject,
  suggested: Set<string>,
): ManifestError {
  const path = segments(e.instancePath, root);
  const where = formatPath(path);
  const parent = e.parentSchema as Schema | undefined;
  const make = (code: ErrorCode, message: string, at: PathSegment[], on: "key" | "value"): ManifestError =>
    errorAt(doc, at, on, code, message);
  const data: unknown = e.data;
  switch (e.keyword) {
    case "required": {
      const field = String((e.params as { missingProperty: string }).missingProperty);
      // Pointed at the parent map: the field is not there to point at.
      const pos = locate(doc, path, "key");
      const fieldPath = formatPath([...path, field]);
      const message = `${where ? `${where}: ` : ""}missing required field "${field}"`;
      return { file: doc.file, line: pos.line, column: pos.column, path: fieldPath, message, code: "missing-field" };
    }
    case "additionalProperties": {
      const field = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys(parent?.properties ?? {});
      const guess = suggest(field, known);
      if (guess) suggested.add(formatPath([...path, guess]));
      const hint = guess ? `did you mean "${guess}"?` : `expected one of ${listOr(known)}`;
      return make("unknown-field", `unknown field; ${hint}`, [...path, field], "key");
    }
    case "type": {
      const expected = String((e.params as { type: string }).type);
      let message = `must be ${TYPE_NAMES[expected] ?? expected}, got ${describeType(data)}`;
      if (expected === "string" && (typeof data === "number" || typeof data === "boolean"))
        message += "; put it in quotes";
      return make("wrong-type", message, path, "value");
    }
    case "enum": {
      const allowed = (parent?.enum ?? []).map(String);
      const guess = typeof data === "string" ? suggest(data, allowed) : undefined;
      const message = `${quote(data)} is not allowed; use ${listOr(allowed)}${guess ? ` (did you mean ${guess}?)` : ""}`;
      return make("invalid-value", message, path, "value");
    }
    case "pattern":
      return make("invalid-format", patternMessage(parent?.pattern ?? "", data), path, "value");
    case "maxLength": {
      const limit = (e.params as { limit: number }).limit;
      const length = typeof data === "string" ? data.length : 0;
      let message = `${quote(data)} is ${length} characters long; at most ${limit} allowed`;
      if (kind === "GroupManagedServiceAccount" && where === "spec.accountName")
        message += " (a gMSA's sAMAccountName is limited to 15 characters by NetBIOS)";
      return make("too-long", message, path, "value");
    }
    case "minLength":
      return make("too-short", "must not be empty", path, "value");
    case "minimum":
    case "maximum": {
      const range =
        parent?.minimum !== undefined && parent.maximum !== undefined
          ? `between ${parent.minimum} and ${parent.maximum}`
          : e.keyword === "minimum"
            ? `at least ${parent?.minimum}`
            : `at most ${parent?.maximum}`;
      return make("out-of-range", `${quote(data)} is out of range; must be ${range}`, path, "value");
    }
    case "minItems":
      return make("too-few-items", `must list at least ${(e.params as { limit: number }).limit}`, path, "value");
    case "maxItems": {
      const count = Array.isArray(data) ? data.length : 0;
      return make(
        "too-many-items",
        `lists ${count}; at most ${(e.params as { limit: number }).limit} allowed`,
        path,
        "value",
      );
    }
    case "minProperties":
    case "maxProperties": {
      // The CRDs use minProperties = maxProperties = 1 for "exactly one of" entries.
      const keys = Object.keys(parent?.properties ?? {});
      const got = data !== null && typeof data === "object" ? Object.keys(data) : [];
      const found = got.length > 0 ? `, got ${listOr(got).replace(" or ", " and ")}` : "";
      return make("exactly-one", `must name exactly one of ${listOr(keys)}${found}`, path, "value");
    }
    default:
      return make("invalid-value", e.message ?? "is invalid", path, "value");
  }
}

/** What each pattern in the CRDs means, said the way a person would. */
const PATTERNS: Record<string, { means: string; allowed?: RegExp; explain?: (value: string) => string | undefined }> = {
  [WINDOWS_FOLDER_PATTERN]: {
    means: "must be an absolute local folder in drive-letter form, for example D:\\Apps\\Data",
    explain: windowsPathProblem,
  },
  "^[a-z]([-a-z0-9]*[a-z0-9])?$": {
    means: "must be a lower-case DNS label: a-z, 0-9 and '-', starting with a letter and not ending with '-'",
    allowed: /[-a-z0-9]/,
  },
  "^[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?$": {
    means:
      "may hold only letters, digits, '-', '_' and inner '.' (AD refuses LDAP filter and DN metacharacters in names)",
    allowed: /[A-Za-z0-9._-]/,
    // Computers and gMSAs: DSC and the AD module take COMPUTER01$, so administrators write it.
    explain: (value) =>
      /^[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?\$$/.test(value)
        ? `ends with '$': write the name without it (${value.slice(0, -1)}); the '$' of the sAMAccountName is added where AD needs it`
        : undefined,
  },
  "^[A-Za-z0-9_-]([A-Za-z0-9 ._-]*[A-Za-z0-9_-])?$": {
    means:
      "may hold only letters, digits, '-', '_' and inner '.' or spaces (AD refuses LDAP filter and DN metacharacters in names)",
    allowed: /[A-Za-z0-9 ._-]/,
  },
  "^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$": {
    means:
      "must be a host name: labels of letters, digits and inner '-', at most 63 characters each, joined by '.' (for example service1.company.local)",
    allowed: /[A-Za-z0-9.-]/,
  },
  '^((CN|OU)=[^,=+<>#;\\\\"]+)(,(CN|OU)=[^,=+<>#;\\\\"]+)*$': {
    means: "must be RDNs relative to the domain, for example OU=Service Accounts,OU=Tier1 (CN= or OU= joined by ',')",
  },
  "^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+(:[0-9]{1,5})?(/[^\\s/]+)?$": {
    means: "must be service-class/host[:port][/service-name], for example HTTP/web1.company.local",
  },
  '^\\\\([^\\\\/:*?"<>|]+\\\\)*$': {
    means: "must be a task folder that starts and ends with '\\', for example \\SCSM\\",
  },
  "^([A-Za-z0-9_-]([A-Za-z0-9 ._-]{0,18}[A-Za-z0-9_-])?|[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$":
    {
      means:
        "must be a sAMAccountName (at most 20 letters, digits, '-', '_', inner '.' or spaces) or a user principal name (name@suffix, e.g. alice@corp.example)",
    },
  [String.raw`^[A-Za-z][A-Za-z0-9-]*=([^,+"\\<>;]|\\.)+(,[ ]*[A-Za-z][A-Za-z0-9-]*=([^,+"\\<>;]|\\.)+)*,[ ]*[Dd][Cc]=([^,+"\\<>;]|\\.)+$`]:
    {
      means:
        "must be a full distinguished name: attr=value parts joined by ',' and ending in the domain's DC= parts, for example CN=Smith\\, John,OU=Staff,DC=company,DC=local",
      explain: dnProblem,
    },
  "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": {
    means: "must be a key id (GUID) as Get-KdsRootKey shows it, for example c4f02fdd-8a2d-aef2-faf1-373506b6b860",
  },
  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|z|[+-][0-9]{2}:[0-9]{2})$": {
    means: "must be an RFC 3339 date and time with its offset, for example 2026-12-01T08:00:00Z",
  },
};

/**
 * What is wrong with a DN a person typed: most often a ',' inside a name left unescaped
 * ("CN=Smith, John,..."), a bare name, or a DN relative to the domain.
 */
function dnProblem(dn: string): string | undefined {
  const parts = dn.split(/(?<!\\),/);
  const bad = parts.findIndex((part) => !/^\s*[A-Za-z][A-Za-z0-9-]*=./.test(part));
  if (bad > 0) return `has a part ${quote(parts[bad])} that is not attr=value: write a ',' inside a name as '\\,'`;
  if (bad === 0)
    return `has a part ${quote(parts[0])} that is not attr=value: a DN is attr=value parts joined by ',', for example CN=Smith\\, John,OU=Staff,DC=company,DC=local`;
  if (!/^\s*dc=/i.test(parts[parts.length - 1] ?? ""))
    return "does not end in the domain's DC= parts: write the full DN, for example CN=john,CN=Users,DC=company,DC=local";
  return undefined;
}

function patternMessage(pattern: string, data: unknown): string {
  const known = PATTERNS[pattern];
  if (!known) return `${quote(data)} does not match ${pattern}`;
  const why = known.explain && typeof data === "string" ? known.explain(data) : undefined;
  if (why) return `${quote(data)} ${why}`;
  const allowed = known.allowed;
  const bad = allowed && typeof data === "string" ? [...data].find((c) => !allowed.test(c)) : undefined;
  return `${quote(data)}${bad === undefined ? "" : ` contains ${JSON.stringify(bad)}`}: it ${known.means}`;
}

/** The parts of a schema that lead to a list with a list type; the rest is never walked. */
interface ListPlan {
  listType: "set" | "map" | undefined;
  keys: string[];
  items: ListPlan | undefined;
  properties: [string, ListPlan][];
}

let plans: Map<Kind, ListPlan> | undefined;

/** Plans per kind, built once (a cache of constant data, like the validators). */
function listPlans(): Map<Kind, ListPlan> {
  if (!plans) {
    plans = new Map();
    for (const [kind, schema] of Object.entries(SCHEMAS)) {
      const plan = planFor(schema);
      if (plan) plans.set(kind as Kind, plan);
    }
  }
  return plans;
}

function planFor(schema: Schema): ListPlan | undefined {
  const type = schema["x-kubernetes-list-type"];
  const listType = type === "set" || type === "map" ? type : undefined;
  const items = schema.items ? planFor(schema.items) : undefined;
  const properties = Object.entries(schema.properties ?? {}).flatMap(([key, sub]) => {
    const plan = planFor(sub);
    return plan ? [[key, plan] as [string, ListPlan]] : [];
  });
  if (!listType && !items && properties.length === 0) return undefined;
  return { listType, keys: schema["x-kubernetes-list-map-keys"] ?? [], items, properties };
}

/**
 * Kubernetes list types: a `set` holds no value twice; a `map` holds no two entries with the
 * same values of its key fields (after defaults, so two tasks that omit `path` collide).
 * `path` is a stack pushed and popped on the way down; copied only when reporting.
 */
function checkLists(
  doc: ParsedDocument,
  plan: ListPlan,
  data: unknown,
  path: PathSegment[],
  errors: ManifestError[],
): void {
  if (Array.isArray(data)) {
    const { listType, keys, items } = plan;
    if (!items && data.length < 2) return; // nothing inside to check, no entry to repeat
    const seen = listType ? new Map<string, number>() : undefined;
    data.forEach((item: unknown, i) => {
      if (items) {
        path.push(i);
        checkLists(doc, items, item, path, errors);
        path.pop();
      }
      if (!seen || !listType) return;
      const id = entryId(listType, keys, item);
      const first = seen.get(id);
      if (first === undefined) {
        seen.set(id, i);
        return;
      }
      const at = [...path, i];
      const pos = locate(doc.tree(), at, "value");
      const what =
        listType === "set"
          ? `${quote(item)} is listed twice`
          : `another entry has the same ${listOr(keys).replace(" or ", " and ")}`;
      const p = formatPath(at);
      errors.push({
        file: doc.file,
        line: pos.line,
        column: pos.column,
        path: p,
        message: `${p}: ${what} (first at ${formatPath([...path, first])})`,
        code: "duplicate-item",
      });
    });
    return;
  }
  if (data !== null && typeof data === "object") {
    for (const [key, sub] of plan.properties) {
      if (!Object.hasOwn(data, key)) continue;
      path.push(key);
      checkLists(doc, sub, (data as Record<string, unknown>)[key], path, errors);
      path.pop();
    }
  }
}

/**
 * What makes two entries of a list the same for `checkLists`: the entry (a set) or the values
 * of its key fields (a map). A string, or a single string key, stands for itself behind an "s"
 * (no JSON text starts with one); anything else is compared as JSON. Most lists hold strings,
 * and JSON.stringify for each of them was the larger part of this check's cost.
 */
function entryId(listType: "set" | "map", keys: readonly string[], item: unknown): string {
  if (listType === "set") return typeof item === "string" ? `s${item}` : JSON.stringify(item);
  const values = keys.map((k) =>
    item !== null && typeof item === "object" ? (item as Record<string, unknown>)[k] : undefined,
  );
  return values.length === 1 && typeof values[0] === "string" ? `s${values[0]}` : JSON.stringify(values);
}
