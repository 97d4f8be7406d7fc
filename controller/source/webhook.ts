/**
 * Authentication of Git push webhooks. A webhook only says "look now": the loop still fetches
 * the branch itself, so the payload is never trusted for content, only the sender is checked.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Request parts the check needs: headers as Node gives them, and the raw body bytes (before any JSON parsing). */
export interface WebhookRequest {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** The providers whose webhooks are accepted. */
export type WebhookProvider = "github" | "gitlab";

/** The outcome of `verifyWebhook`; `reason` never contains the secret or the presented signature. */
export type WebhookVerdict = { ok: true; provider: WebhookProvider } | { ok: false; reason: string };

/**
 * Checks that a webhook request comes from someone holding `secret`.
 * - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
 * - GitLab: `X-Gitlab-Token: <secret>`.
 * Comparisons take constant time. Anything else (no header, the SHA-1 `X-Hub-Signature` alone,
 * repeated headers, an empty secret) is refused; the HTTP layer answers 401.
 */
export function verifyWebhook(req: WebhookRequest, secret: string): WebhookVerdict {
  // An empty secret would make an empty GitLab token, or an HMAC anyone can compute, valid.
  if (secret.length === 0) return { ok: false, reason: "no webhook secret configured" };

  const github = header(req.headers, "x-hub-signature-256");
  if (github !== undefined) {
    if (github === null) return { ok: false, reason: "X-Hub-Signature-256 given more than once" };
    const match = /^sha256=([0-9a-f]{64})$/i.exec(github.trim());
    if (!match?.[1]) return { ok: false, reason: "X-Hub-Signature-256 is not sha256=<64 hex digits>" };
    const presented = Buffer.from(match[1], "hex");
    const expected = createHmac("sha256", secret).update(req.body).digest();
    return timingSafeEqual(presented, expected)
      ? { ok: true, provider: "github" }
      : { ok: false, reason: "X-Hub-Signature-256 does not match the body" };
  }

  const gitlab = header(req.headers, "x-gitlab-token");
  if (gitlab !== undefined) {
    if (gitlab === null) return { ok: false, reason: "X-Gitlab-Token given more than once" };
    // Hash both sides so that the comparison neither throws on nor leaks a length difference.
    const presented = createHash("sha256").update(gitlab, "utf8").digest();
    const expected = createHash("sha256").update(secret, "utf8").digest();
    return timingSafeEqual(presented, expected)
      ? { ok: true, provider: "gitlab" }
      : { ok: false, reason: "X-Gitlab-Token does not match" };
  }

  if (header(req.headers, "x-hub-signature") !== undefined) {
    return { ok: false, reason: "only X-Hub-Signature-256 is accepted, not the SHA-1 X-Hub-Signature" };
  }
  return { ok: false, reason: "no X-Hub-Signature-256 or X-Gitlab-Token header" };
}

/** A header's single value, matched case-insensitively; null when it was sent more than once. */
function header(headers: WebhookRequest["headers"], name: string): string | null | undefined {
  const values: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    values.push(...(Array.isArray(value) ? value : [value]));
  }
  if (values.length === 0) return undefined;
  return values.length === 1 ? (values[0] ?? undefined) : null;
}
