/**
 * `gmsa-gitops explain KIND/NAME`: one resource for a person on call — where it is written,
 * desired against observed, its conditions, its last drift. Conditions and the last drift come
 * from a running controller's /api/status with `--url`, else from one plan pass (which writes
 * nothing). Exit 0 printed, 1 error or no such resource, 2 usage.
 */
import { stringify } from "yaml";
import type { DesiredState } from "../manifests/index.ts";
import type { AttributeChange, ObservedDirectory, ResourcePlan } from "../reconcile/model.ts";
import { changeText, teamOf } from "../reconcile/render.ts";
import type { Condition, LastDrift, ResourceStatus } from "../reconcile/status.ts";
import { summarize } from "../reconcile/status.ts";
import { likelyTarget, parseTarget, resourceOf } from "../reconcile/target.ts";
import type { ResourceRef } from "../vocabulary.ts";
import { resourceKey } from "../vocabulary.ts";
import type { Command, Io } from "./command.ts";
import { EXIT } from "./command.ts";
import { pass, prepare, PLAN_USAGE } from "./reconcile-commands.ts";

export const EXPLAIN_USAGE = `Usage: gmsa-gitops explain KIND/NAME --repo DIR [--url URL] [--format text|json] [settings]

Prints one resource: its manifest, desired against observed, its conditions and its last drift
with who changed AD. With --url (a running controller, e.g. http://127.0.0.1:9464), conditions
and the last drift come from its /api/status; otherwise from one plan pass against AD, which
writes nothing.

${PLAN_USAGE.slice(PLAN_USAGE.indexOf("Settings"))}`;

function spec(desired: DesiredState, r: ResourceRef): { spec: unknown; file: string; line: number } | undefined {
  const res = resourceOf(desired, r);
  return res ? { spec: res.spec, file: res.source.file, line: res.source.line } : undefined;
}

/** The observed AD object behind a plan entry, as plain fields (binary values left out). */
function observedOf(observed: ObservedDirectory | undefined, dn: string | undefined): Record<string, unknown> | null {
  if (!observed || dn === undefined) return null;
  const same = (d: string): boolean => d.toLowerCase() === dn.toLowerCase();
  const gmsa = observed.gmsas.find((g) => same(g.dn));
  if (gmsa) {
    const { groupMsaMembership: _sd, allowedToActOnBehalf: _rbcd, ...rest } = gmsa;
    return { ...rest, pwdLastSet: gmsa.pwdLastSet?.toISOString(), whenChanged: gmsa.whenChanged?.toISOString() };
  }
  const group = observed.groups.find((g) => same(g.dn));
  if (group) return { ...group };
  const key = observed.kdsRootKeys.find((k) => same(k.dn));
  return key ? { ...key } : null;
}

interface StatusDocument {
  readonly resources?: readonly ResourceStatus[];
}

async function fromController(url: string, ref: ResourceRef): Promise<ResourceStatus | undefined> {
  const response = await fetch(new URL("/api/status", url), { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${new URL("/api/status", url).href} answered ${response.status}`);
  const body = (await response.json()) as StatusDocument;
  return body.resources?.find((r) => r.kind === ref.kind && r.name === ref.name);
}

function conditionLines(conditions: readonly Condition[]): string[] {
  return conditions.map(
    (c) =>
      `  ${c.type.padEnd(13)} ${c.status.padEnd(7)} ${c.reason}${c.message ? `: ${c.message}` : ""}${c.lastTransitionTime ? `  (since ${c.lastTransitionTime})` : ""}`,
  );
}

function changeLines(changes: readonly AttributeChange[], indent: string): string[] {
  return changes.flatMap((c) => changeText(c).map((l, i) => `${indent}${i === 0 ? "" : "  "}${l}`));
}

function lastDriftLines(d: LastDrift | null): string[] {
  if (!d) return ["Last drift: none seen"];
  return [
    `Last drift: ${d.drift.join(", ")} observed ${d.observedAt}, ${d.correctedAt ? `corrected ${d.correctedAt}` : "not corrected"}`,
    ...changeLines(d.changes, "  "),
  ];
}

async function runExplain(argv: readonly string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith("-")) {
    io.stderr(`gmsa-gitops: explain needs KIND/NAME first\n\n${EXPLAIN_USAGE}`);
    return EXIT.usage;
  }
  const ref = parseTarget(first);
  if ("message" in ref) {
    io.stderr(`gmsa-gitops: explain ${JSON.stringify(first)}: ${ref.message}\n`);
    return EXIT.usage;
  }
  const urlAt = rest.indexOf("--url");
  const url = urlAt >= 0 ? rest[urlAt + 1] : undefined;
  if (urlAt >= 0 && (url === undefined || !/^https?:\/\//.test(url))) {
    io.stderr("gmsa-gitops: --url needs the controller's http(s):// address\n");
    return EXIT.usage;
  }
  const others = urlAt >= 0 ? [...rest.slice(0, urlAt), ...rest.slice(urlAt + 2)] : rest;
  const prepared = await prepare(others, io, {}, EXPLAIN_USAGE, url === undefined);
  if (typeof prepared === "number") return prepared;
  if (prepared.format === "markdown") {
    io.stderr("gmsa-gitops: explain prints text or json\n");
    return EXIT.usage;
  }
  const key = resourceKey(ref);
  const desired = spec(prepared.desired, ref);
  let entry: ResourcePlan | undefined;
  let observed: Record<string, unknown> | null = null;
  let status: Pick<ResourceStatus, "conditions" | "lastDrift" | "changes" | "dn"> | undefined;
  let from: string;
  try {
    if (url !== undefined) {
      from = `${new URL("/api/status", url).href}`;
      status = await fromController(url, ref);
    } else {
      from = "one plan pass (nothing written)";
      const result = await pass({ ...prepared, targets: { refs: [ref], keys: new Set([key]) } }, false);
      entry = [...result.plan.resources, ...(result.hosts?.bindings.map((b) => b.plan) ?? [])].find(
        (r) => resourceKey(r.resource) === key,
      );
      observed = observedOf(result.observed, entry?.dn);
      if (entry) {
        const now = new Date();
        const summary = summarize({ entry, attempts: [], executed: false, revision: null, now }, undefined);
        const conditions = summary.conditions.map((d) => ({
          type: d.type,
          status: d.status ? ("True" as const) : ("False" as const),
          reason: d.reason,
          message: d.message,
          lastTransitionTime: "",
        }));
        status = { conditions, lastDrift: summary.lastDrift, changes: entry.changes, dn: entry.dn ?? null };
      }
    }
  } catch (error) {
    io.stderr(`gmsa-gitops: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  }
  if (!desired && !status) {
    const likely = likelyTarget(prepared.desired, ref);
    io.stderr(
      `gmsa-gitops: ${key}: no such resource in the repository${url ? " or the controller's status" : " or in AD's managed objects"}${likely ? `; did you mean ${resourceKey(likely)}?` : ""}\n`,
    );
    return EXIT.failed;
  }
  if (prepared.format === "json") {
    io.stdout(
      `${JSON.stringify(
        {
          kind: ref.kind,
          name: ref.name,
          source: desired ? { file: desired.file, line: desired.line, team: teamOf(desired.file) } : null,
          dn: status?.dn ?? null,
          desired: desired?.spec ?? null,
          observed,
          changes: status?.changes ?? [],
          conditions: status?.conditions ?? [],
          conditionsFrom: from,
          lastDrift: status?.lastDrift ?? null,
        },
        null,
        2,
      )}\n`,
    );
    return EXIT.ok;
  }
  const out = [`${key}`];
  out.push(
    desired
      ? `  manifest: ${desired.file}:${desired.line} (team ${teamOf(desired.file)})`
      : "  manifest: none (not in Git: a prune candidate or a conflict)",
  );
  if (status?.dn) out.push(`  dn:       ${status.dn}`);
  out.push("", "Desired (spec, defaults applied):");
  out.push(desired ? stringify(desired.spec).trimEnd().replace(/^/gm, "  ") : "  (none)");
  if (url === undefined) {
    out.push("", "Observed in AD:");
    out.push(observed ? stringify(observed).trimEnd().replace(/^/gm, "  ") : "  (no object)");
  }
  out.push("", "Desired vs observed:");
  const changes = status?.changes ?? [];
  out.push(...(changes.length > 0 ? changeLines(changes, "  ") : ["  in sync"]));
  out.push("", `Conditions (from ${from}):`);
  out.push(...(status ? conditionLines(status.conditions) : ["  (the controller has no status for it yet)"]));
  out.push("", ...lastDriftLines(status?.lastDrift ?? null));
  io.stdout(`${out.join("\n")}\n`);
  return EXIT.ok;
}

/** `gmsa-gitops explain KIND/NAME`: one resource, desired vs observed, conditions, last drift. */
export const explainCommand: Command = {
  name: "explain",
  summary: "show one resource: desired vs observed, conditions, last drift and who changed AD",
  usage: EXPLAIN_USAGE,
  run: runExplain,
};
