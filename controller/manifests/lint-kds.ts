/**
 * Checks across KdsRootKey resources: which key each one means must be unambiguous. A key named
 * by keyId is named once; at most one resource asks for "any effective key" (neither keyId nor
 * effectiveTime); keyId, effectiveTime and effectiveImmediately exclude each other; an
 * effectiveTime is a real instant, not only the right shape.
 */
import type { Checked } from "./lint.ts";
import { quote } from "./text.ts";
import type { ErrorCode, KdsRootKeyResource, ManifestError } from "./types.ts";
import { errorAt, locate } from "./yaml.ts";
import type { PathSegment } from "./yaml.ts";

/** Appends an error for every KdsRootKey that is ambiguous or self-contradictory. */
export function lintKdsRootKeys(keys: ReadonlyMap<string, Checked<KdsRootKeyResource>>, errors: ManifestError[]): void {
  const report = (c: Checked<KdsRootKeyResource>, path: PathSegment[], code: ErrorCode, message: string): void => {
    errors.push(errorAt(c.doc(), path, "value", code, message));
  };
  const where = (c: Checked<KdsRootKeyResource>, path: PathSegment[]): string => {
    const doc = c.doc();
    return `${doc.file}:${locate(doc, path, "value").line}`;
  };
  const byId = new Map<string, Checked<KdsRootKeyResource>>();
  let anyKey: Checked<KdsRootKeyResource> | undefined;
  for (const c of [...keys.values()].sort((a, b) => a.resource.name.localeCompare(b.resource.name))) {
    const { keyId, effectiveTime, effectiveImmediately } = c.resource.spec;
    if (keyId !== undefined && (effectiveTime !== undefined || effectiveImmediately))
      report(
        c,
        ["spec", "keyId"],
        "conflicting-fields",
        `keyId names an existing key, whose start time is already set; remove ${effectiveTime !== undefined ? "effectiveTime" : "effectiveImmediately"}`,
      );
    if (effectiveTime !== undefined && effectiveImmediately)
      report(
        c,
        ["spec", "effectiveTime"],
        "conflicting-fields",
        "effectiveTime and effectiveImmediately both set the new key's start time; keep one",
      );
    if (effectiveTime !== undefined && rfc3339(effectiveTime) === undefined)
      report(
        c,
        ["spec", "effectiveTime"],
        "invalid-format",
        `${quote(effectiveTime)} is not a real date and time (RFC 3339, e.g. 2026-12-01T08:00:00Z)`,
      );
    if (keyId !== undefined) {
      const first = byId.get(keyId.toLowerCase());
      if (first)
        report(
          c,
          ["spec", "keyId"],
          "duplicate-kds-root-key",
          `KdsRootKey ${quote(first.resource.name)} already names key ${keyId} (${where(first, ["spec", "keyId"])})`,
        );
      else byId.set(keyId.toLowerCase(), c);
    } else if (effectiveTime === undefined) {
      if (anyKey)
        report(
          c,
          ["kind"],
          "duplicate-kds-root-key",
          `KdsRootKey ${quote(anyKey.resource.name)} already asks for any effective key (${where(anyKey, ["kind"])}); give this one a keyId or an effectiveTime`,
        );
      else anyKey = c;
    }
  }
}

/**
 * The instant an RFC 3339 date-time (already of the schema's shape) stands for, or undefined for
 * one that names no real instant (month 13, 30 February, 24:00): Date.parse would roll those over.
 */
export function rfc3339(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m.slice(1).map((v) => Number(v ?? 0));
  const fields = new Date(Date.UTC(year!, month! - 1, day, hour, minute, second));
  const real =
    fields.getUTCMonth() === month! - 1 &&
    fields.getUTCDate() === day &&
    hour! < 24 &&
    minute! < 60 &&
    second! < 60 &&
    offsetHours! < 24 &&
    offsetMinutes! < 60;
  return real ? new Date(Date.parse(text)) : undefined;
}
