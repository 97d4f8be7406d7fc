/**
 * Writes docs/reference/<kind>.md from the CRDs, so the field reference can never disagree
 * with what `validate` enforces. `npx node scripts/gen-docs.ts` rewrites the pages;
 * `--check` exits 1 when a page is out of date (run by the tests).
 */
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { SETTINGS } from "../controller/config/index.ts";

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
}

const root = join(import.meta.dirname, "..");

function typeOf(s: Schema): string {
  if (s.type === "array") return `${s.items ? typeOf(s.items) : "any"}[]`;
  if (s.type === "object" && s.properties) return "object";
  if (s.type === "object") return "map[string]string";
  return s.type ?? "any";
}

function rules(s: Schema): string {
  const out: string[] = [];
  if (s.enum) out.push(`one of ${s.enum.map((v) => `\`${String(v)}\``).join(", ")}`);
  if (s.items?.enum) out.push(`each one of ${s.items.enum.map((v) => `\`${String(v)}\``).join(", ")}`);
  if (s.minimum !== undefined || s.maximum !== undefined) out.push(`${s.minimum ?? "…"}–${s.maximum ?? "…"}`);
  if (s.minLength !== undefined || s.maxLength !== undefined)
    out.push(`${s.minLength ?? 0}–${s.maxLength ?? "…"} chars`);
  if (s.maxItems !== undefined) out.push(`at most ${s.maxItems} items`);
  if (s["x-kubernetes-list-type"] === "set") out.push("no duplicates");
  if (s["x-kubernetes-list-type"] === "map") out.push(`unique by ${(s["x-kubernetes-list-map-keys"] ?? []).join("+")}`);
  if (s.minProperties === 1 && s.maxProperties === 1) out.push("exactly one key");
  if (s.pattern) out.push(`pattern \`${s.pattern.replace(/\|/g, "\\|")}\``);
  return out.join("; ");
}

function rows(s: Schema, prefix: string, out: string[]): void {
  for (const [name, p] of Object.entries(s.properties ?? {})) {
    const path = `${prefix}${name}`;
    const required = s.required?.includes(name) ? "yes" : "";
    const def = p.default === undefined ? "" : `\`${JSON.stringify(p.default)}\``;
    const desc = (p.description ?? "").replace(/\|/g, "\\|").replace(/\n/g, " ");
    out.push(`| \`${path}\` | ${typeOf(p)} | ${required} | ${def} | ${rules(p)} | ${desc} |`);
    if (p.type === "object" && p.properties) rows(p, `${path}.`, out);
    if (p.type === "array" && p.items?.properties) rows(p.items, `${path}[].`, out);
  }
}

/** Renders one CRD as a Markdown reference page. */
export function renderCrdPage(crdText: string): { kind: string; markdown: string } {
  const crd = parse(crdText) as {
    spec: { names: { kind: string }; group: string; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  };
  const version = crd.spec.versions[0]!;
  const schema = version.schema.openAPIV3Schema;
  const kind = crd.spec.names.kind;
  const lines = [
    `# ${kind}`,
    "",
    `<!-- Generated from crds/ by scripts/gen-docs.ts; do not edit. -->`,
    "",
    `\`apiVersion: ${crd.spec.group}/${version.name}\``,
    "",
    schema.description ?? "",
    "",
    "| Field | Type | Required | Default | Rules | Description |",
    "|---|---|---|---|---|---|",
  ];
  const body: string[] = [];
  rows(
    {
      properties: { metadata: schema.properties!["metadata"]!, spec: schema.properties!["spec"] ?? {} },
      required: schema.required ?? [],
    },
    "",
    body,
  );
  lines.push(...body, "");
  return { kind, markdown: lines.join("\n") };
}

/** A setting's default as the reference table shows it: the value in code, or what is worked out at run time. */
function defaultOf(s: (typeof SETTINGS)[number]): string {
  if (s.default !== undefined) return `\`${String(s.default)}\``;
  return s.defaultText ?? "";
}

/** Renders the controller's settings (flags, environment variables, config-file keys) as a page. */
export function renderSettingsPage(): string {
  const cell = (t: string): string => t.replace(/\|/g, "\\|");
  const rows = SETTINGS.map(
    (s) =>
      `| ${s.flag ? `\`--${s.flag}\`` : ""} | \`${s.env}\` | \`${s.key}\` | ${cell(s.type === "enum" ? (s.values ?? []).join(" | ") : s.type)} | ${cell(defaultOf(s))} | ${cell(s.description)} |`,
  );
  return [
    "# Configuration",
    "",
    "<!-- Generated from controller/config by scripts/gen-docs.ts; do not edit. -->",
    "",
    "Every setting can be given as a flag, an environment variable, or a key in a YAML config file",
    "(`--config FILE` or `GMSA_GITOPS_CONFIG`; nested keys, e.g. `ldap: { url: ..., caFile: ... }`).",
    "Flags win over the environment, which wins over the file. Relative paths in the file are",
    "relative to the file. The bind password comes from `--bind-password-file` or",
    "`GMSA_GITOPS_BIND_PASSWORD`, never from a flag, and is never logged; so does the notification",
    "webhook URL (it often carries a token): `--notify-url-file` or `GMSA_GITOPS_NOTIFY_URL`.",
    "",
    "| Flag | Environment | Config key | Type | Default | Description |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}

function main(): number {
  const check = process.argv.includes("--check");
  const outDir = join(root, "docs", "reference");
  if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true });
  const pages = readdirSync(join(root, "crds"))
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((file) => {
      const { kind, markdown } = renderCrdPage(readFileSync(join(root, "crds", file), "utf8"));
      return { target: join(outDir, `${kind.toLowerCase()}.md`), markdown };
    });
  pages.push({ target: join(outDir, "configuration.md"), markdown: renderSettingsPage() });
  let stale = 0;
  for (const { target, markdown } of pages) {
    const current = existsSync(target) ? readFileSync(target, "utf8") : "";
    if (current === markdown) continue;
    if (check) {
      process.stderr.write(`${target} is out of date: run npx node scripts/gen-docs.ts\n`);
      stale++;
    } else {
      writeFileSync(target, markdown);
    }
  }
  return stale > 0 ? 1 : 0;
}

if (import.meta.main) process.exitCode = main();
