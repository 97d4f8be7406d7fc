/**
 * `gmsa-gitops plan` and `gmsa-gitops apply`: one reconcile of a folder of manifests against
 * AD. plan exits 0 with no changes, 2 with changes, 1 on error; apply exits 0 when every action
 * succeeded, 1 otherwise.
 */
import { parseArgs } from "node:util";
import type { Config, ConfigError } from "../config/index.ts";
import { loadConfig, SETTINGS } from "../config/index.ts";
import { connectDirectory, directoryWriter } from "../directory/index.ts";
import type { LdapDirectory } from "../directory/index.ts";
import type { DesiredState, ManifestError } from "../manifests/index.ts";
import { loadManifests } from "../manifests/index.ts";
import type { ActionResult } from "../reconcile/apply.ts";
import { applyPlan } from "../reconcile/apply.ts";
import { countActions } from "../reconcile/model.ts";
import type { Plan } from "../reconcile/model.ts";
import type { HostBindingOutcome } from "../reconcile/hosts.ts";
import { hostMemory, reconcileHosts } from "../reconcile/hosts.ts";
import type { ObservedDirectory } from "../reconcile/model.ts";
import { observeDirectory } from "../reconcile/observe.ts";
import { sshHostSettings } from "../main.ts";
import { planDirectory } from "../reconcile/plan.ts";
import { renderJson, renderMarkdown, renderText } from "../reconcile/render.ts";

import type { Command, Io } from "./command.ts";
import { EXIT } from "./command.ts";

const FORMATS = ["text", "json", "markdown"] as const;
type Format = (typeof FORMATS)[number];

/** Flags shared by plan and apply: every config setting, plus format and config file. */
function options(extra: Record<string, { type: "boolean" | "string" }>) {
  const opts: Record<string, { type: "boolean" | "string" }> = {
    config: { type: "string" },
    format: { type: "string" },
    help: { type: "boolean" },
    ...extra,
  };
  for (const s of SETTINGS) if (s.flag) opts[s.flag] = { type: s.type === "boolean" ? "boolean" : "string" };
  return opts;
}

export const PLAN_USAGE = `Usage: gmsa-gitops plan --repo DIR [--format text|json|markdown] [settings]
       gmsa-gitops apply --repo DIR [--dry-run] [--prune] [--format text|json] [settings]

Settings (flag / environment variable / config-file key):
${SETTINGS.map((s) => `  --${s.flag ?? ""}${s.type === "boolean" ? "" : " VALUE"}\n      ${s.env}, ${s.key}: ${s.description}`).join("\n")}
  --config FILE
      GMSA_GITOPS_CONFIG: a YAML file with the keys above (e.g. ldap: { url: ..., caFile: ... })
`;

function printConfigErrors(errors: readonly ConfigError[], io: Io): void {
  for (const e of errors) io.stderr(`gmsa-gitops: ${e.source}: ${e.message}\n`);
}

function printManifestErrors(errors: readonly ManifestError[], io: Io): void {
  for (const e of errors) io.stderr(`${e.file}:${e.line}:${e.column}: ${e.message}\n`);
  io.stderr(`gmsa-gitops: ${errors.length} error(s) in the manifests; nothing was read from or written to AD\n`);
}

interface Prepared {
  readonly config: Config;
  readonly desired: DesiredState;
  readonly format: Format;
  readonly values: Record<string, string | boolean | undefined>;
}

async function prepare(
  argv: readonly string[],
  io: Io,
  extra: Record<string, { type: "boolean" | "string" }>,
): Promise<Prepared | number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: options(extra), allowPositionals: false, strict: true });
  } catch (error) {
    io.stderr(`gmsa-gitops: ${(error as Error).message}\n\n${PLAN_USAGE}`);
    return EXIT.usage;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values["help"]) {
    io.stdout(PLAN_USAGE);
    return 0;
  }
  const format = (values["format"] ?? "text") as Format;
  if (!FORMATS.includes(format)) {
    io.stderr(`gmsa-gitops: --format must be one of ${FORMATS.join(", ")}\n`);
    return EXIT.usage;
  }
  const result = loadConfig({
    flags: values,
    ...(typeof values["config"] === "string" ? { configFile: values["config"] } : {}),
    require: { directory: true },
  });
  if (!result.ok) {
    printConfigErrors(result.errors, io);
    return EXIT.usage;
  }
  const repo = result.config.repo;
  if (repo === undefined) {
    io.stderr("gmsa-gitops: --repo DIR is required (or GMSA_GITOPS_REPO)\n");
    return EXIT.usage;
  }
  // Validate everything before touching AD: an invalid revision is never partly applied.
  const loaded = await loadManifests(repo);
  if (!loaded.ok) {
    printManifestErrors(loaded.errors, io);
    return 1;
  }
  return { config: result.config, desired: loaded.desired, format, values };
}

async function withDirectory<T>(config: Config, fn: (dir: LdapDirectory) => Promise<T>): Promise<T> {
  const d = config.directory!;
  const dir = await connectDirectory({
    url: d.url,
    bindDn: d.bindDn,
    bindPassword: d.bindPassword,
    ...(d.caFile ? { caFile: d.caFile } : {}),
    startTls: d.startTls,
    allowInsecurePlaintext: d.insecurePlaintext,
    timeoutMs: d.timeoutMs,
  });
  try {
    return await fn(dir);
  } finally {
    await dir.close();
  }
}

async function observe(dir: LdapDirectory, prepared: Prepared): Promise<ObservedDirectory> {
  const rootDse = await dir.rootDse();
  const baseDn = prepared.config.directory?.baseDn ?? rootDse.defaultNamingContext;
  return observeDirectory(prepared.desired, dir, { baseDn, configDn: rootDse.configurationNamingContext });
}

async function computePlan(
  dir: LdapDirectory,
  prepared: Prepared,
  prune: boolean,
  now: Date,
): Promise<{ plan: Plan; observed: ObservedDirectory }> {
  const observed = await observe(dir, prepared);
  return { plan: planDirectory(prepared.desired, observed, { ...prepared.config.policy, prune }, now), observed };
}

/** Runs the host side when --host-transport is set: observe for plan, observe and fix for apply. */
async function runHosts(
  prepared: Prepared,
  observed: ObservedDirectory,
  adPlan: Plan | undefined,
  mode: "observe" | "apply",
  now: Date,
): Promise<HostBindingOutcome[]> {
  const hosts = prepared.config.hosts;
  if (!hosts || prepared.desired.bindings.size === 0) return [];
  const settings = await sshHostSettings(hosts);
  const run = await reconcileHosts(
    prepared.desired,
    observed,
    adPlan,
    mode,
    prepared.config.policy.mode,
    settings,
    hostMemory(),
    { now },
  );
  return run.bindings;
}

function withHosts(plan: Plan, hosts: readonly HostBindingOutcome[]): Plan {
  return hosts.length === 0 ? plan : { ...plan, resources: [...plan.resources, ...hosts.map((h) => h.plan)] };
}

function hostLine(o: HostBindingOutcome, applied: boolean): string {
  const what = `host HostBinding/${o.plan.resource.name} on ${o.host}`;
  if (o.error) return `  FAILED  ${what} (${o.error.failure}): ${o.error.message}`;
  if (o.plan.blocker) return `  waiting ${what}: ${o.plan.blocker.message}`;
  const failed = o.result?.items.filter((i) => i.action === "failed") ?? [];
  if (failed.length > 0) return `  FAILED  ${what}: ${o.plan.notes.join("; ")}`;
  const verb = applied && !o.plan.observeOnly ? "changed" : "drifted";
  return `  ok      ${what}: ${o.plan.changes.length} item(s) ${verb}`;
}

function render(plan: Plan, format: Format): string {
  return format === "json" ? renderJson(plan) : format === "markdown" ? renderMarkdown(plan) : renderText(plan);
}

function reportFailure(error: unknown, io: Io): number {
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(`gmsa-gitops: ${message}\n`);
  return 1;
}

async function runPlan(argv: readonly string[], io: Io): Promise<number> {
  const prepared = await prepare(argv, io, {});
  if (typeof prepared === "number") return prepared;
  try {
    const now = new Date();
    const plan = await withDirectory(prepared.config, async (dir) => {
      const { plan, observed } = await computePlan(dir, prepared, prepared.config.policy.prune, now);
      return withHosts(plan, await runHosts(prepared, observed, undefined, "observe", now));
    });
    io.stdout(render(plan, prepared.format));
    return countActions(plan) > 0 || plan.resources.some((r) => r.changes.length > 0) ? 2 : 0;
  } catch (error) {
    return reportFailure(error, io);
  }
}

function resultLine(r: ActionResult): string {
  const a = r.action;
  const what = `${a.type} ${a.resource.kind}/${a.resource.name}`;
  if (r.status === "applied") return `  ok      ${what}`;
  if (r.status === "skipped") return `  skipped ${what}: ${r.message ?? ""}`;
  return `  FAILED  ${what} (${r.outcome ?? "error"}): ${r.message ?? ""}`;
}

async function runApply(argv: readonly string[], io: Io): Promise<number> {
  const prepared = await prepare(argv, io, { "dry-run": { type: "boolean" } });
  if (typeof prepared === "number") return prepared;
  if (prepared.format === "markdown") {
    io.stderr("gmsa-gitops: apply prints text or json\n");
    return EXIT.usage;
  }
  const dryRun = prepared.values["dry-run"] === true;
  try {
    return await withDirectory(prepared.config, async (dir) => {
      const now = new Date();
      const { plan, observed } = await computePlan(dir, prepared, prepared.config.policy.prune, now);
      if (dryRun) {
        const hosts = await runHosts(prepared, observed, undefined, "observe", now);
        io.stdout(render(withHosts(plan, hosts), prepared.format));
        io.stderr("gmsa-gitops: dry run: nothing was written\n");
        return 0;
      }
      if (prepared.format === "text") io.stdout(render(plan, "text"));
      const result = await applyPlan(plan, directoryWriter(dir), { now });
      // Hosts come after AD: a gMSA created just now must be seen before a host is touched.
      const afterAd = result.results.some((r) => r.status === "applied") ? await observe(dir, prepared) : observed;
      const hosts = await runHosts(prepared, afterAd, plan, "apply", now);
      const hostFailures = hosts.filter((h) => h.error || h.result?.items.some((i) => i.action === "failed"));
      const failed = result.results.filter((r) => r.status !== "applied");
      if (prepared.format === "json") {
        io.stdout(
          `${JSON.stringify(
            {
              results: result.results.map((r) => ({
                type: r.action.type,
                kind: r.action.resource.kind,
                name: r.action.resource.name,
                status: r.status,
                outcome: r.outcome ?? null,
                message: r.message ?? null,
              })),
              hosts: hosts.map((h) => ({
                name: h.plan.resource.name,
                host: h.host,
                drift: [...h.plan.drift].sort(),
                changes: h.plan.changes,
                retrievable: h.retrievable ?? null,
                error: h.error?.message ?? null,
                blocker: h.plan.blocker?.message ?? null,
              })),
            },
            null,
            2,
          )}\n`,
        );
      } else {
        if (result.results.length > 0)
          io.stdout(`\nApplying ${result.results.length} action(s):\n${result.results.map(resultLine).join("\n")}\n`);
        if (hosts.length > 0)
          io.stdout(
            `\nHosts:\n${hosts.map((h) => hostLine(h, prepared.config.policy.mode === "enforce")).join("\n")}\n`,
          );
        io.stdout(`Apply: ${result.results.length - failed.length} succeeded, ${failed.length} failed or skipped.\n`);
      }
      return failed.length > 0 || hostFailures.length > 0 ? 1 : 0;
    });
  } catch (error) {
    return reportFailure(error, io);
  }
}

/** `gmsa-gitops plan`: prints what apply would do; exit 0 no changes, 2 changes, 1 error. */
export const planCommand: Command = {
  name: "plan",
  summary: "show what apply would change in Active Directory (exit 0 none, 2 changes, 1 error)",
  usage: PLAN_USAGE,
  run: runPlan,
};

/** `gmsa-gitops apply`: plans, prints the plan, executes it (unless --dry-run), and reports each action. */
export const applyCommand: Command = {
  name: "apply",
  summary: "make Active Directory match the manifests (--dry-run prints the plan only)",
  usage: PLAN_USAGE,
  run: runApply,
};
