/**
 * Renders a plan for people (text, like a terraform plan), for machines (JSON) and for a
 * pull-request comment (Markdown). Pure string building; the CLI prints. Every value from AD
 * or Git passes through `printable` in text and Markdown: anyone who may write a description,
 * an SPN or an object's name would otherwise put escape sequences on the reviewer's terminal,
 * or lines (a forged summary, the end of the code block) into the plan and the PR comment.
 */
import { printable } from "../printable.ts";
import { lastChangeText } from "../vocabulary.ts";
import type { AttributeChange, Plan, ResourcePlan } from "./model.ts";

/** Counts shown in every format's summary. */
export interface PlanSummary {
  readonly create: number;
  readonly update: number;
  readonly delete: number;
  readonly blocked: number;
  readonly observeOnly: number;
  readonly unchanged: number;
  /** Objects this controller made whose resource left Git, kept because prune is off. */
  readonly retained: number;
}

type Symbol = "+" | "~" | "-" | "!" | " ";

function symbolOf(r: ResourcePlan): Symbol {
  if (r.drift.has("conflict")) return "!";
  if (r.drift.has("unexpected")) return "-";
  if (r.drift.has("missing")) return "+";
  if (r.changes.length > 0) return "~";
  return r.blocker ? "!" : " ";
}

/** Summarises a plan: what apply would create, update and delete, and what is blocked. */
export function planSummary(plan: Plan): PlanSummary {
  const s = { create: 0, update: 0, delete: 0, blocked: 0, observeOnly: 0, unchanged: 0, retained: 0 };
  for (const r of plan.resources) {
    const sym = symbolOf(r);
    if (r.blocker) s.blocked++;
    else if (r.observeOnly && r.changes.length > 0) s.observeOnly++;
    else if (r.actions.some((a) => a.type === "delete" && a.replacement)) {
      // allowReplacement: the object is deleted and created anew (a new SID), as Terraform's
      // "-/+" counts one destroy and one add, never a plain update.
      s.create++;
      s.delete++;
    } else if (sym === "+" && r.actions.length > 0) s.create++;
    // Host drift has no AD action: the host script fixes it, so it counts as an update too.
    else if (sym === "~" && (r.actions.length > 0 || r.resource.kind === "HostBinding")) s.update++;
    else if (sym === "-" && r.actions.length > 0) s.delete++;
    else if (sym === "-") s.retained++;
    else if (sym === " ") s.unchanged++;
  }
  return s;
}

const clip = (s: string, max = 200): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

function show(value: AttributeChange["from"]): string {
  if (value === undefined) return "(none)";
  if (typeof value === "string") return printable(JSON.stringify(clip(value)));
  return `[${value.map((v) => printable(clip(v, 120))).join(", ")}]`;
}

function changeLine(c: AttributeChange): string {
  if (c.from === undefined) return `+ ${c.attribute}: ${show(c.to)}`;
  if (c.to === undefined) return `- ${c.attribute}: ${show(c.from)}`;
  return `~ ${c.attribute}: ${show(c.from)} → ${show(c.to)}`;
}

function summaryLine(s: PlanSummary): string {
  const parts = [`${s.create} to create`, `${s.update} to update`, `${s.delete} to delete`];
  if (s.observeOnly > 0) parts.push(`${s.observeOnly} drifted (observe only)`);
  if (s.blocked > 0) parts.push(`${s.blocked} blocked`);
  if (s.retained > 0) parts.push(`${s.retained} not in Git (kept: deleted only with --prune)`);
  return `Plan: ${parts.join(", ")}.`;
}

/** How the text plan is laid out: where each resource is written, and whether to colour it. */
export interface TextOptions {
  /** `KIND/NAME` → the manifest file (relative to the repository); its top folder is the team's. */
  readonly sources?: ReadonlyMap<string, string>;
  /** ANSI colours: the CLI decides (a terminal, and NO_COLOR unset), never this module. */
  readonly color?: boolean;
}

const ANSI = { green: "32", yellow: "33", red: "31", magenta: "35", dim: "2", bold: "1" } as const;
type Paint = (style: keyof typeof ANSI, text: string) => string;
const paintWith =
  (color: boolean): Paint =>
  (style, text) =>
    color ? `\u001b[${ANSI[style]}m${text}\u001b[0m` : text;

const SYMBOL_STYLE: Record<Symbol, keyof typeof ANSI> = {
  "+": "green",
  "~": "yellow",
  "-": "red",
  "!": "magenta",
  " ": "dim",
};

/** One attribute change as text lines: the change, then who last changed it in AD when known. */
export function changeText(c: AttributeChange): string[] {
  return c.lastChange ? [changeLine(c), `# ${printable(lastChangeText(c.lastChange))}`] : [changeLine(c)];
}

function resourceLines(r: ResourcePlan, paint: Paint = paintWith(false)): string[] {
  const sym = symbolOf(r);
  const lines = [
    `${paint(SYMBOL_STYLE[sym], `${sym} ${r.resource.kind}/${printable(r.resource.name)}`)}${r.dn ? paint("dim", `  (${printable(r.dn)})`) : ""}`,
  ];
  for (const c of r.changes) {
    const line = changeLine(c);
    lines.push(`    ${paint(SYMBOL_STYLE[line[0] as Symbol], line)}`);
    if (c.lastChange) lines.push(`      ${paint("dim", `# ${printable(lastChangeText(c.lastChange))}`)}`);
  }
  if (r.observeOnly && r.changes.length > 0) lines.push(`    ${paint("dim", "# observe mode: reported, not changed")}`);
  if (r.blocker?.reason === "Protected")
    lines.push(`    ${paint("magenta", `! protected: ${printable(r.blocker.message)}`)}`);
  else if (r.blocker)
    lines.push(
      `    ${paint("magenta", `# ${r.blocker.outcome}: ${r.blocker.reason}: ${printable(r.blocker.message)}`)}`,
    );
  for (const n of r.notes) lines.push(`    ${paint("dim", `# ${printable(n)}`)}`);
  return lines;
}

const interesting = (r: ResourcePlan): boolean => r.changes.length > 0 || r.blocker !== undefined || r.notes.length > 0;

/** Resources not written in any manifest: prune candidates and conflicts found only in AD. */
const NOT_IN_GIT = "(not in Git)";

/** The team folder of a manifest: its top folder, or "./" for a file at the repository's root. */
export function teamOf(file: string | undefined): string {
  if (file === undefined) return NOT_IN_GIT;
  const slash = file.indexOf("/");
  return slash < 0 ? "./" : `${file.slice(0, slash)}/`;
}

/**
 * Groups the plan's resources by team folder (sorted; resources not in Git last) and, inside a
 * team, by kind in the plan's dependency order.
 */
function groupByTeam(
  resources: readonly ResourcePlan[],
  sources: ReadonlyMap<string, string>,
): { team: string; kinds: { kind: string; resources: ResourcePlan[] }[] }[] {
  const teams = new Map<string, Map<string, ResourcePlan[]>>();
  for (const r of resources) {
    const team = teamOf(sources.get(`${r.resource.kind}/${r.resource.name}`));
    const kinds = teams.get(team) ?? new Map<string, ResourcePlan[]>();
    teams.set(team, kinds);
    const list = kinds.get(r.resource.kind) ?? [];
    kinds.set(r.resource.kind, list);
    list.push(r);
  }
  const rank = (t: string): string => (t === NOT_IN_GIT ? `\uffff${t}` : t);
  return [...teams]
    .sort(([a], [b]) => rank(a).localeCompare(rank(b)))
    .map(([team, kinds]) => ({ team, kinds: [...kinds].map(([kind, list]) => ({ kind, resources: list })) }));
}

/**
 * The human plan, grouped by team folder and kind. Unchanged resources are omitted; the last
 * line is the summary.
 */
export function renderText(plan: Plan, options: TextOptions = {}): string {
  const paint = paintWith(options.color === true);
  const blocks: string[] = [];
  for (const { team, kinds } of groupByTeam(plan.resources.filter(interesting), options.sources ?? new Map())) {
    const count = kinds.reduce((n, k) => n + k.resources.length, 0);
    const parts = [paint("bold", `== ${team} (${count} resource${count === 1 ? "" : "s"})`)];
    for (const k of kinds) {
      parts.push(paint("bold", `-- ${k.kind}`));
      for (const r of k.resources) parts.push(resourceLines(r, paint).join("\n"));
    }
    blocks.push(parts.join("\n"));
  }
  const lines: string[] = [];
  if (blocks.length === 0) lines.push("No changes. Active Directory matches the repository.");
  else lines.push(blocks.join("\n\n"), "");
  for (const n of plan.notes) lines.push(`# ${printable(n)}`);
  if (!plan.kds.effective)
    lines.push(
      plan.kds.effectiveAt
        ? `# KDS root key effective at ${plan.kds.effectiveAt.toISOString()}`
        : "# no KDS root key in the forest",
    );
  lines.push(summaryLine(planSummary(plan)));
  return `${lines.join("\n")}\n`;
}

/** The machine plan: stable field names, sets as sorted arrays, dates as ISO strings. */
export function renderJson(plan: Plan): string {
  return `${JSON.stringify(
    {
      summary: planSummary(plan),
      kds: { effective: plan.kds.effective, effectiveAt: plan.kds.effectiveAt?.toISOString() ?? null },
      notes: plan.notes,
      resources: plan.resources.map((r) => ({
        kind: r.resource.kind,
        name: r.resource.name,
        dn: r.dn ?? null,
        drift: [...r.drift].sort(),
        changes: r.changes,
        actions: r.actions.map((a) => a.type),
        observeOnly: r.observeOnly,
        blocker: r.blocker
          ? { ...r.blocker, ...(r.blocker.until ? { until: r.blocker.until.toISOString() } : {}) }
          : null,
        notes: r.notes,
      })),
    },
    null,
    2,
  )}\n`;
}

// A table cell is Markdown: one line, and its punctuation escaped, so a name or message from AD
// cannot add a link, an image, HTML or a column.
const escapeCell = (s: string): string => printable(s).replace(/[\\`*_[\]<>|!&~]/g, (c) => `\\${c}`);

/** A pull-request comment: a summary table and the text plan in a diff block. */
export function renderMarkdown(plan: Plan, options: Pick<TextOptions, "sources"> = {}): string {
  const s = planSummary(plan);
  const rows = plan.resources.filter(interesting).map((r) => {
    const what = r.blocker ? `${r.blocker.outcome}: ${r.blocker.message}` : r.observeOnly ? "drift (observe only)" : "";
    return `| \`${symbolOf(r)}\` | ${r.resource.kind} | ${escapeCell(r.resource.name)} | ${r.changes.length} | ${escapeCell(what)} |`;
  });
  const out = [
    "### gmsa-gitops plan",
    "",
    `**${s.create}** to create, **${s.update}** to update, **${s.delete}** to delete${s.blocked ? `, **${s.blocked}** blocked` : ""}.`,
    "",
  ];
  if (rows.length > 0) {
    out.push("| | Kind | Name | Changes | Note |", "|---|---|---|---|---|", ...rows, "");
    out.push(
      "<details><summary>Details</summary>",
      "",
      "```diff",
      renderText(plan, { sources: options.sources ?? new Map() }).trimEnd(),
      "```",
      "",
      "</details>",
    );
  } else {
    out.push("No changes.");
  }
  return `${out.join("\n")}\n`;
}
