/**
 * The one scrubber for credentials in text: every layer that puts text into an error, a
 * condition, a log line or the status page passes it through here first. It imports nothing, so
 * every layer can use it. What it writes in place of a secret is always {@link REDACTED}; pino's
 * own field redaction (main.ts) uses the same word.
 */

/** What a hidden value is replaced with, everywhere. */
export const REDACTED = "[redacted]";

// scheme://userinfo@host: userinfo may be "user:password" or a bare token ("https://ghp_x@github.com").
const urlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s'"]+@/gi;

/** A query or fragment parameter whose name says it holds a credential (a global regex: group 1 is the name and "="). */
// A query or fragment parameter whose name says it holds a credential: GitLab's
// ?private_token=, OAuth's access_token (also in a #fragment), ?password=, ?api_key=, a
// pre-signed URL's signature. Over-matching a harmless parameter only hides its value.
export const credentialParameter =
  /([?&;#][^=&;#\s'"]*(?:token|passw|pwd|secret|key|auth|sig|credential)[^=&;#\s'"]*=)[^&;#\s'"]+/gi;

/**
 * Removes credentials from text before it is logged or shown:
 * - `user:password@` (and a bare `token@`) from every `scheme://` URL (scp-like `git@host:path`
 *   is left alone: it cannot hold a password);
 * - the value of every query or fragment parameter named like a credential (`?private_token=`,
 *   `access_token`, `password`, `api_key`...);
 * - each of `secrets` (a bind password, the decoded userinfo of a configured URL) wherever it
 *   appears, when at least `minSecretLength` long (a 3-letter user name like "git" would blank
 *   ordinary words; callers whose secrets are always secret pass 1).
 */
export function redact(text: string, secrets: readonly string[] = [], minSecretLength = 1): string {
  let out = text.replace(urlUserinfo, "$1").replace(credentialParameter, `$1${REDACTED}`);
  for (const secret of secrets)
    if (secret.length >= Math.max(1, minSecretLength)) out = out.split(secret).join(REDACTED);
  return out;
}
