import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyWebhook } from "./webhook.ts";

const secret = "webhook-secret-for-tests";
const body = Buffer.from(JSON.stringify({ ref: "refs/heads/main", after: "abc" }));
const githubSignature = (payload: Buffer, key = secret) =>
  `sha256=${createHmac("sha256", key).update(payload).digest("hex")}`;

describe("verifyWebhook", () => {
  it("accepts a GitHub request signed with the secret", () => {
    const verdict = verifyWebhook({ headers: { "x-hub-signature-256": githubSignature(body) }, body }, secret);
    expect(verdict).toEqual({ ok: true, provider: "github" });
  });

  it("matches header names case-insensitively", () => {
    const verdict = verifyWebhook({ headers: { "X-Hub-Signature-256": githubSignature(body) }, body }, secret);
    expect(verdict.ok).toBe(true);
  });

  it("refuses a GitHub request signed with another secret", () => {
    const verdict = verifyWebhook(
      { headers: { "x-hub-signature-256": githubSignature(body, "other-secret") }, body },
      secret,
    );
    expect(verdict.ok).toBe(false);
  });

  it("refuses a GitHub request whose body changed after signing", () => {
    const tampered = Buffer.from(body.toString().replace("main", "evil"));
    const verdict = verifyWebhook(
      { headers: { "x-hub-signature-256": githubSignature(body) }, body: tampered },
      secret,
    );
    expect(verdict.ok).toBe(false);
  });

  it("refuses malformed, truncated and repeated GitHub signatures", () => {
    const good = githubSignature(body);
    for (const value of [good.slice(0, -2), good.replace("sha256=", ""), "sha1=abc", "", [good, good]]) {
      expect(verifyWebhook({ headers: { "x-hub-signature-256": value }, body }, secret).ok).toBe(false);
    }
  });

  it("refuses the SHA-1 X-Hub-Signature on its own", () => {
    const sha1 = `sha1=${createHmac("sha1", secret).update(body).digest("hex")}`;
    const verdict = verifyWebhook({ headers: { "x-hub-signature": sha1 }, body }, secret);
    expect(verdict).toMatchObject({ ok: false });
  });

  it("accepts a GitLab request carrying the secret token", () => {
    expect(verifyWebhook({ headers: { "x-gitlab-token": secret }, body }, secret)).toEqual({
      ok: true,
      provider: "gitlab",
    });
  });

  it("refuses a GitLab request with a wrong, longer or shorter token", () => {
    for (const token of ["wrong", `${secret}x`, secret.slice(0, -1), ""]) {
      expect(verifyWebhook({ headers: { "x-gitlab-token": token }, body }, secret).ok).toBe(false);
    }
  });

  it("refuses a request with no signature header", () => {
    const verdict = verifyWebhook({ headers: { "content-type": "application/json" }, body }, secret);
    expect(verdict).toEqual({ ok: false, reason: "no X-Hub-Signature-256 or X-Gitlab-Token header" });
  });

  it("refuses everything when the configured secret is empty", () => {
    expect(verifyWebhook({ headers: { "x-gitlab-token": "" }, body }, "").ok).toBe(false);
    expect(verifyWebhook({ headers: { "x-hub-signature-256": githubSignature(body, "") }, body }, "").ok).toBe(false);
  });

  it("never puts the secret or the presented signature in the reason", () => {
    const presented = githubSignature(body, "other-secret");
    const verdicts = [
      verifyWebhook({ headers: { "x-hub-signature-256": presented }, body }, secret),
      verifyWebhook({ headers: { "x-gitlab-token": "guess" }, body }, secret),
    ];
    for (const verdict of verdicts) {
      expect(JSON.stringify(verdict)).not.toContain(secret);
      expect(JSON.stringify(verdict)).not.toContain(presented.slice(7));
      expect(JSON.stringify(verdict)).not.toContain("guess");
    }
  });
});
