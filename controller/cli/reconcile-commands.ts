/**
 * `gmsa-gitops plan` and `gmsa-gitops apply`: one reconcile pass (the same the controller runs
 * every cycle) of a folder of manifests against AD and, with a host transport, the hosts.
 *
 * Exit codes. plan: 0 no changes, 2 changes (or blocked resources), 1 error.
 * apply: 0 everything applied; 1 failed before any write (configuration, manifests, AD
 * unreachable); 2 usage; 3 partial (a write failed or was skipped, a host failed, or the run
 * stopped after some writes); 4 held back (every attempted write succeeded, but a resource was
 * blocked, is waiting, or a deletion was deferred by the budget or refused).
 */
import { parseArgs } from "node:util";
import { directoryOpener, sshHostSettings } from "../clients.ts";
import type { Config, ConfigError } from "../config/index.ts";
import { loadConfig, SETTINGS } from "../config/index.ts";
import type { DesiredState, ManifestError } from "../manifests/index.ts";
import { loadManifests } from "../manifests/index.ts";
import { printable } from "../printable.ts";
import type { ActionResult } from "../reconcile/apply.ts";
import type { HostBindingOutcome } from "../reconcile/hosts.ts";
import { hostMemory } from "../reconcile/hosts.ts";
import { countActions } from "../reconcile/model.ts";
import type { Plan } from "../reconcile/model.ts";
import type { PassResult } from "../reconcile/pass.ts";
import { reconcilePass } from "../reconcile/pass.ts";
import { renderJson, renderMarkdown, renderText } from "../reconcile/render.ts";
import {
  likelyTarget,
  limitBindings,
  limitPlan,
  parseTarget,
  targetClosure,
  unknownTargets,
} from "../reconcile/target.ts";
import type { ResourceRef } from "../vocabulary.ts";
import { resourceKey } from "../vocabulary.ts";

import type { Command, Io } from "./command.ts";
import { EXIT } from "./command.ts";

/** apply's exit codes beyond the shared ones (documented in README). */
export const APPLY_EXIT = { ...EXIT, partial: 3, heldBack: 4 } as const;

const FORMATS = ["text", "json", "markdown"] as const;
type Format = (typeof FORMATS)[number];

type Option = { type: "boolean" | "string"; multiple?: boolean };

/** Flags shared by plan and apply: every config setting, plus format, target and config file. */
function options(extra: Record<string, Option>) {
  const opts: Record<string, Option> = {
    config: { type: "string" },
    format: { type: "string" },
    target: { type: "string", multiple: true },
    help: { type: "boolean" },
    ...extra,
  };
  for (const s of SETTINGS) if (s.flag) opts[s.flag] = { type: s.type === "boolean" ? "boolean" : "string" };
  return opts;
}

export const PLAN_USAGE = `Usage: gmsa-gitops plan --repo DIR [--format text|json|markdown] [--target KIND/NAME]... [settings]
       gmsa-gitops apply --repo DIR [--dry-run] [--prune] [--format text|json] [--target KIND/NAME]... [settings]

  --target KIND/NAME
      only this resource and what it depends on in the repository (a gMSA's groups and the KDS
      root key, a group's nested groups, a binding's gMSA); repeatable; limits the output and apply

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

/** What plan and apply run with, once the arguments, settings and manifests are good. */
export interface Prepared {
  readonly config: Config;
  readonly desired: DesiredState;
  /** `KIND/NAME` → manifest file, for grouping the plan by team folder. */
  readonly sources: ReadonlyMap<string, string>;
  readonly format: Format;
  readonly values: Record<string, string | boolean | string[] | undefined>;
  /** `--target`s, and the keys they select with their dependencies; undefined: everything. */
  readonly targets: { readonly refs: readonly ResourceRef[]; readonly keys: ReadonlySet<string> } | undefined;
}

/** `KIND/NAME` → the manifest file each repository resource is written in. */
export function sourcesOf(desired: DesiredState): Map<string, string> {
  const all = [
    ...desired.gmsas.values(),
    ...desired.smsas.values(),
    ...desired.groups.values(),
    ...desired.bindings.values(),
    ...desired.kdsRootKeys.values(),
  ];
  return new Map<string, string>(all.map((r) => [resourceKey(r), r.source.file]));
}

/** Parses the arguments, loads the settings and the manifests; a number is the exit code to return. */
export async function prepare(
  argv: readonly string[],
  io: Io,
  extra: Record<string, Option>,
  usage = PLAN_USAGE,
  needDirectory = true,
): Promise<Prepared | number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: options(extra), allowPositionals: false, strict: true });
  } catch (error) {
    io.stderr(`gmsa-gitops: ${(error as Error).message}\n\n${usage}`);
    return EXIT.usage;
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values["help"]) {
    io.stdout(usage);
    return 0;
  }
  const refs: ResourceRef[] = [];
  for (const text of (values["target"] as string[] | undefined) ?? []) {
    const ref = parseTarget(text);
    if ("message" in ref) {
      io.stderr(`gmsa-gitops: --target ${JSON.stringify(text)}: ${ref.message}\n`);
      return EXIT.usage;
    }
    refs.push(ref);
  }
  const format = (values["format"] ?? "text") as Format;
  if (!FORMATS.includes(format)) {
    io.stderr(`gmsa-gitops: --format must be one of ${FORMATS.join(", ")}\n`);
    return EXIT.usage;
  }
  const result = loadConfig({
    flags: values as Record<string, string | boolean | undefined>,
    ...(typeof values["config"] === "string" ? { configFile: values["config"] } : {}),
    require: { directory: needDirectory },
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
  const desired = loaded.desired;
  const targets = refs.length > 0 ? { refs, keys: targetClosure(desired, refs) } : undefined;
  return { config: result.config, desired, sources: sourcesOf(desired), format, values, targets };
}

/**
 * Runs the one reconcile pass with the command's settings: `write` for apply, not for plan. With
 * `--target`, the plan is narrowed before apply sees it (the gate) and only targeted host
 * bindings run; AD is still read whole, so the rest of the domain is not mistaken for prune
 * candidates.
 */
export async function pass(
  prepared: Prepared,
  write: boolean,
  onResult?: (r: ActionResult) => void,
): Promise<PassResult> {
  const { config, targets } = prepared;
  const desired = targets ? limitBindings(prepared.desired, targets.keys) : prepared.desired;
  const hosts = config.hosts && desired.bindings.size > 0 ? await sshHostSettings(config.hosts) : undefined;
  return reconcilePass({
    desired,
    // A target that names nothing (a typo) stops the whole run before any write.
    ...(targets
      ? {
          gate: (plan: Plan) =>
            limitPlan(plan, unknownTargets(desired, plan, targets.refs).length > 0 ? new Set() : targets.keys),
        }
      : {}),
    policy: config.policy,
    now: new Date(),
    write,
    openDirectory: directoryOpener(config.directory!),
    hostMemory: hostMemory(),
    ...(config.directory?.baseDn ? { baseDn: config.directory.baseDn } : {}),
    ...(hosts ? { hosts } : {}),
    ...(onResult ? { onResult } : {}),
  });
}

function withHosts(plan: Plan, hosts: readonly HostBindingOutcome[]): Plan {
  return hosts.length === 0 ? plan : { ...plan, resources: [...plan.resources, ...hosts.map((h) => h.plan)] };
}

/** Resources whose write apply holds back by design (blocked, waiting, deferred), not failed. */
function heldBack(plan: Plan): number {
  return plan.resources.filter((r) => r.blocker !== undefined && !r.observeOnly).length;
}

function hostLine(o: HostBindingOutcome, applied: boolean): string {
  const what = `host HostBinding/${o.plan.resource.name} on ${printable(o.host)}`;
  if (o.error) return `  FAILED  ${what} (${o.error.outcome}): ${printable(o.error.message)}`;
  if (o.plan.blocker) return `  waiting ${what}: ${printable(o.plan.blocker.message)}`;
  const failed = o.result?.items.filter((i) => i.action === "failed") ?? [];
  if (failed.length > 0) return `  FAILED  ${what}: ${printable(o.plan.notes.join("; "))}`;
  const verb = applied && !o.plan.observeOnly ? "changed" : "drifted";
  return `  ok      ${what}: ${o.plan.changes.length} item(s) ${verb}`;
}

function render(plan: Plan, prepared: Prepared, io: Io): string {
  const { format, sources } = prepared;
  if (format === "json") return renderJson(plan);
  if (format === "markdown") return renderMarkdown(plan, { sources });
  return renderText(plan, { sources, color: io.color === true });
}

/** A `--target` that names nothing (a typo): refused; the gate let the pass write nothing at all. */
function refuseUnknownTargets(prepared: Prepared, plan: Plan, io: Io): boolean {
  const unknown = prepared.targets ? unknownTargets(prepared.desired, plan, prepared.targets.refs) : [];
  for (const t of unknown) {
    const likely = likelyTarget(prepared.desired, t);
    io.stderr(
      `gmsa-gitops: --target ${resourceKey(t)}: no such resource in the repository or in AD's managed objects${likely ? `; did you mean ${resourceKey(likely)}?` : ""}\n`,
    );
  }
  return unknown.length > 0;
}

function reportFailure(error: unknown, io: Io): number {
  const message = error instanceof Error ? error.message : String(error);
  // An error may quote AD (a DN); its own line breaks stay, anything else is escaped.
  io.stderr(
    `gmsa-gitops: ${message
      .split("\n")
      .map((line) => printable(line))
      .join("\n")}\n`,
  );
  return 1;
}

async function runPlan(argv: readonly string[], io: Io): Promise<number> {
  const prepared = await prepare(argv, io, {});
  if (typeof prepared === "number") return prepared;
  try {
    const result = await pass(prepared, false);
    const plan = withHosts(result.plan, result.hosts?.bindings ?? []);
    if (refuseUnknownTargets(prepared, plan, io)) return EXIT.usage;
    io.stdout(render(plan, prepared, io));
    return countActions(plan) > 0 || heldBack(plan) > 0 || plan.resources.some((r) => r.changes.length > 0) ? 2 : 0;
  } catch (error) {
    return reportFailure(error, io);
  }
}

function resultLine(r: ActionResult): string {
  const a = r.action;
  const what = `${a.type} ${a.resource.kind}/${printable(a.resource.name)}`;
  if (r.status === "applied") return `  ok      ${what}`;
  if (r.status === "skipped") return `  skipped ${what}: ${printable(r.message ?? "")}`;
  return `  FAILED  ${what} (${r.outcome ?? "error"}): ${printable(r.message ?? "")}`;
}

async function runApply(argv: readonly string[], io: Io): Promise<number> {
  const prepared = await prepare(argv, io, { "dry-run": { type: "boolean" } });
  if (typeof prepared === "number") return prepared;
  if (prepared.format === "markdown") {
    io.stderr("gmsa-gitops: apply prints text or json\n");
    return EXIT.usage;
  }
  const text = prepared.format === "text";
  if (prepared.values["dry-run"] === true) {
    try {
      const result = await pass(prepared, false);
      const plan = withHosts(result.plan, result.hosts?.bindings ?? []);
      if (refuseUnknownTargets(prepared, plan, io)) return EXIT.usage;
      io.stdout(render(plan, prepared, io));
      io.stderr("gmsa-gitops: dry run: nothing was written\n");
      return 0;
    } catch (error) {
      return reportFailure(error, io);
    }
  }
  // Each action's result is printed as it completes: whatever fails later (the DC dying, the
  // re-read for the hosts), the report of what was written is already out.
  let started = false;
  const results: ActionResult[] = [];
  const onResult = (r: ActionResult): void => {
    results.push(r);
    if (!text) return;
    if (!started) io.stdout("\nApplying:\n");
    started = true;
    io.stdout(`${resultLine(r)}\n`);
  };
  let result: PassResult;
  try {
    result = await pass(prepared, true, onResult);
  } catch (error) {
    // Nothing was written: the pass throws only before apply begins.
    return reportFailure(error, io);
  }
  if (refuseUnknownTargets(prepared, result.plan, io)) return EXIT.usage;
  const hosts = result.hosts?.bindings ?? [];
  const hostFailures = hosts.filter((h) => h.error || h.result?.items.some((i) => i.action === "failed"));
  const failed = results.filter((r) => r.status !== "applied");
  const held = heldBack(result.plan) + hosts.filter((h) => h.plan.blocker !== undefined).length;
  if (text) {
    if (!started) io.stdout(render(result.plan, prepared, io));
    else {
      // The plan was not printed (results were, as they came): say what was held back and why.
      const heldLines = result.plan.resources
        .filter((r) => r.blocker !== undefined && !r.observeOnly)
        .map(
          (r) =>
            `  held    ${r.resource.kind}/${printable(r.resource.name)}: ${r.blocker!.outcome}: ${r.blocker!.reason}: ${printable(r.blocker!.message)}`,
        );
      if (heldLines.length > 0) io.stdout(`${heldLines.join("\n")}\n`);
    }
    if (hosts.length > 0)
      io.stdout(`\nHosts:\n${hosts.map((h) => hostLine(h, prepared.config.policy.mode === "enforce")).join("\n")}\n`);
    io.stdout(
      `Apply: ${results.length - failed.length} succeeded, ${failed.length} failed or skipped, ${held} held back.\n`,
    );
  } else {
    io.stdout(`${JSON.stringify(applyJson(result, results, hosts), null, 2)}\n`);
  }
  if (result.afterApply)
    io.stderr(
      `gmsa-gitops: after apply, ${result.afterApply.step} failed: ${printable(result.afterApply.error instanceof Error ? result.afterApply.error.message : String(result.afterApply.error))}; the host side did not run\n`,
    );
  if (failed.length > 0 || hostFailures.length > 0 || result.afterApply || result.aborted) return APPLY_EXIT.partial;
  return held > 0 ? APPLY_EXIT.heldBack : EXIT.ok;
}

function applyJson(result: PassResult, results: readonly ActionResult[], hosts: readonly HostBindingOutcome[]) {
  return {
    results: results.map((r) => ({
      type: r.action.type,
      kind: r.action.resource.kind,
      name: r.action.resource.name,
      status: r.status,
      outcome: r.outcome ?? null,
      message: r.message ?? null,
    })),
    heldBack: result.plan.resources
      .filter((r) => r.blocker !== undefined && !r.observeOnly)
      .map((r) => ({
        kind: r.resource.kind,
        name: r.resource.name,
        ...r.blocker,
        until: r.blocker?.until?.toISOString(),
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
    afterApply: result.afterApply
      ? {
          step: result.afterApply.step,
          error:
            result.afterApply.error instanceof Error
              ? result.afterApply.error.message
              : String(result.afterApply.error),
        }
      : null,
  };
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
