/**
 * Notification bodies: a generic JSON document, a Slack incoming-webhook message, and a
 * Microsoft Teams message (an Adaptive Card, which Teams Workflows webhooks accept). Pure:
 * one notification in, one JSON-serialisable body out.
 */
import type { NotificationFormat } from "../config/index.ts";

/** What happened to a resource. */
export type NotificationEvent = "Stalled" | "ApplyFailed" | "DriftCorrected";

export type { NotificationFormat };

/** One notification, as the generic JSON body carries it. */
export interface Notification {
  readonly event: NotificationEvent;
  readonly kind: string;
  readonly name: string;
  readonly reason: string;
  readonly message: string;
  readonly drift: readonly string[];
  readonly changes: readonly {
    readonly attribute: string;
    readonly from: string | readonly string[] | null;
    readonly to: string | readonly string[] | null;
  }[];
  readonly source: { readonly file: string; readonly line: number } | null;
  readonly revision: string | null;
  /** When the controller noticed it (ISO 8601). */
  readonly at: string;
  /** How many notifications of this event for this resource the rate limit held back before this one. */
  readonly suppressedBefore: number;
  readonly sourceUrl?: string;
}

const TITLES: Record<NotificationEvent, string> = {
  Stalled: "is Stalled: it needs a change in Git or AD",
  ApplyFailed: "failed to apply",
  DriftCorrected: "drifted and was corrected",
};

const show = (v: string | readonly string[] | null): string =>
  v === null ? "(none)" : typeof v === "string" ? v : v.length === 0 ? "(none)" : v.join(", ");

/** The one-line summary every format starts with. */
export function headline(n: Notification): string {
  return `gmsa-gitops: ${n.kind} ${n.name} ${TITLES[n.event]}`;
}

function details(n: Notification): { title: string; value: string }[] {
  const facts = [
    { title: "Reason", value: n.reason },
    { title: "Message", value: n.message },
  ];
  if (n.drift.length > 0) facts.push({ title: "Drift", value: n.drift.join(", ") });
  for (const c of n.changes.slice(0, 10)) facts.push({ title: c.attribute, value: `${show(c.from)} → ${show(c.to)}` });
  if (n.source) facts.push({ title: "Manifest", value: `${n.source.file}:${n.source.line}` });
  if (n.revision) facts.push({ title: "Revision", value: n.revision.slice(0, 12) });
  if (n.suppressedBefore > 0)
    facts.push({ title: "Held back", value: `${n.suppressedBefore} earlier notification(s) of this kind` });
  return facts.filter((f) => f.value !== "");
}

/** Slack treats &, < and > as markup in `text`; its documentation asks for exactly these escapes. */
const slackEscape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Teams renders Markdown in card text: a value from AD such as `[Reset password](https://…)`
 * would become a link. A zero-width space between `]` and `(` keeps it text.
 */
const teamsText = (text: string): string => text.replace(/\]\(/g, "]\u200b(");

/** The request body for `format`. */
export function notificationBody(n: Notification, format: NotificationFormat): unknown {
  switch (format) {
    case "json":
      return { type: "gmsa-gitops.notification", version: 1, summary: headline(n), ...n };
    case "slack":
      return {
        text: [
          `*${slackEscape(headline(n))}*`,
          ...details(n).map((f) => `• *${slackEscape(f.title)}*: ${slackEscape(f.value)}`),
        ].join("\n"),
      };
    case "teams":
      return {
        type: "message",
        attachments: [
          {
            contentType: "application/vnd.microsoft.card.adaptive",
            content: {
              $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
              type: "AdaptiveCard",
              version: "1.4",
              body: [
                {
                  type: "TextBlock",
                  text: teamsText(headline(n)),
                  weight: "Bolder",
                  wrap: true,
                  color: n.event === "DriftCorrected" ? "Warning" : "Attention",
                },
                {
                  type: "FactSet",
                  facts: details(n).map((f) => ({ title: teamsText(f.title), value: teamsText(f.value) })),
                },
              ],
            },
          },
        ],
      };
  }
}
