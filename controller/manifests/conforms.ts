/**
 * The quick verdict on a document against its kind's CRD schema, for the common case of a
 * valid document: a walk of the schema that fills in defaults exactly as ajv's `useDefaults`
 * does (in each map, before its fields are checked, in the schema's property order, a fresh
 * copy of the default for each field that is undefined) and answers whether the document
 * conforms. It is never more lenient than ajv: any keyword it does not know, and any case it
 * is unsure of, answers "no", and ajv then judges the document and words the errors.
 * schema.ts uses it so that ajv is loaded and compiled only for a revision with schema errors.
 */

/** The parts of an openAPIV3Schema this walk understands. */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  default?: unknown;
}

/** Keywords the walk enforces, and those that constrain nothing (documentation, list types checked elsewhere). */
const UNDERSTOOD = new Set([
  "type",
  "properties",
  "additionalProperties",
  "required",
  "items",
  "enum",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "default",
  "description",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
]);

const understood = new WeakMap<object, boolean>();

/** Whether every keyword of `schema` and of its subschemas is one the walk understands (cached per schema). */
function understands(schema: Schema): boolean {
  let known = understood.get(schema);
  if (known === undefined) {
    known =
      Object.keys(schema).every((k) => UNDERSTOOD.has(k)) &&
      ["object", "array", "string", "integer", "boolean", undefined].includes(schema.type) &&
      (schema.enum ?? []).every((v) => v === null || typeof v !== "object") &&
      Object.values(schema.properties ?? {}).every(understands) &&
      (schema.items === undefined || understands(schema.items)) &&
      (typeof schema.additionalProperties !== "object" || understands(schema.additionalProperties));
    understood.set(schema, known);
  }
  return known;
}

const patterns = new Map<string, RegExp>();

/** The pattern as ajv compiles it (its `unicodeRegExp` default: the "u" flag). */
function regExp(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (!re) patterns.set(pattern, (re = new RegExp(pattern, "u")));
  return re;
}

/** Length in code points, as ajv counts minLength and maxLength (a surrogate pair is one). */
function codePoints(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    length++;
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
  }
  return length;
}

/** A fresh copy of a default (ajv writes each default as a literal, so no two documents share one). */
function copy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copy);
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)]));
  return value;
}

function isMap(data: unknown): data is Record<string, unknown> {
  return data !== null && typeof data === "object" && !Array.isArray(data);
}

/**
 * Whether `data` conforms to `schema`, filling in defaults on the way as ajv would. True means
 * ajv would find no error; false means ajv must judge (the document may still be valid).
 */
export function conforms(schema: Readonly<Record<string, unknown>>, data: unknown): boolean {
  return understands(schema) && walk(schema, data);
}

function walk(s: Schema, data: unknown): boolean {
  switch (s.type) {
    case "object":
      if (!isMap(data)) return false;
      break;
    case "array":
      if (!Array.isArray(data)) return false;
      break;
    case "string":
      if (typeof data !== "string") return false;
      break;
    case "integer":
      if (!Number.isInteger(data)) return false;
      break;
    case "boolean":
      if (typeof data !== "boolean") return false;
      break;
  }
  if (s.enum && !s.enum.some((v) => v === data)) return false;
  if (isMap(data)) return walkMap(s, data);
  if (Array.isArray(data)) {
    if (s.minItems !== undefined && data.length < s.minItems) return false;
    if (s.maxItems !== undefined && data.length > s.maxItems) return false;
    if (s.items) for (const item of data) if (!walk(s.items, item)) return false;
    return true;
  }
  if (typeof data === "string") {
    // More UTF-16 units than allowed code points may still fit; ajv decides that rare case.
    if (s.maxLength !== undefined && data.length > s.maxLength) return false;
    if (s.minLength !== undefined && codePoints(data) < s.minLength) return false;
    return s.pattern === undefined || regExp(s.pattern).test(data);
  }
  if (typeof data === "number") {
    if (s.minimum !== undefined && !(data >= s.minimum)) return false;
    if (s.maximum !== undefined && !(data <= s.maximum)) return false;
  }
  return true;
}

function walkMap(s: Schema, data: Record<string, unknown>): boolean {
  const properties = s.properties ?? {};
  for (const key in properties) {
    const fallback = properties[key]?.default;
    if (fallback !== undefined && data[key] === undefined) data[key] = copy(fallback);
  }
  for (const key of s.required ?? []) if (data[key] === undefined) return false;
  if (s.minProperties !== undefined || s.maxProperties !== undefined) {
    const count = Object.keys(data).length;
    if (s.minProperties !== undefined && count < s.minProperties) return false;
    if (s.maxProperties !== undefined && count > s.maxProperties) return false;
  }
  const extra = s.additionalProperties;
  for (const key in data) {
    const sub = Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (sub) {
      if (!walk(sub, data[key])) return false;
    } else if (extra === false) return false;
    else if (typeof extra === "object" && !walk(extra, data[key])) return false;
  }
  return true;
}
