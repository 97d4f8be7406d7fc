/**
 * The one scrubber for credentials in text: every layer that puts text into an error, a
 * condition, a log line or the status page passes it through here first. It imports nothing, so
 * every layer can use it. What it writes in place of a secret is always {@link REDACTED}; pino's
 * own field redaction (main.ts) uses the same word.
 */

/** What a hidden value is replaced with, everywhere. */
export const REDACTED = "[redacted]";

// scheme://userinfo@host: userinfo may be "user:password" or a bare token ("https://ghp_x@github.com").
// Greedy up to the last "@" before the path: a password may itself hold "@" (URL parsers take the
// last one as the end of the userinfo), and stopping at the first would show the rest.
const urlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s'"]*@/gi;

// Every query or fragment parameter: group 1 is the separator and the name, group 2 the value.
const parameter = /([?&;#]([^=&;#\s'"]*)=)([^&;#\s'"]+)/g;

// A parameter name that says it holds a credential: GitLab's ?private_token=, OAuth's
// access_token (also in a #fragment), ?password=, ?api_key=, a pre-signed URL's signature.
// Over-matching a harmless parameter only hides its value.
const credentialName = /token|passw|pwd|secret|key|auth|sig|credential/i;

/**
 * Whether a query parameter's name says it holds a credential, read as the server reads it:
 * percent-decoded (`%74oken` is `token`), repeatedly, since a proxy may decode once more.
 */
export function isCredentialParameter(name: string): boolean {
  let current = name;
  for (let i = 0; i < 3; i++) {
    if (credentialName.test(current)) return true;
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      // An invalid escape ("%zz"): decode what can be decoded, byte by byte.
      decoded = current.replace(/%[0-9a-f]{2}/gi, (e) => String.fromCharCode(parseInt(e.slice(1), 16)));
    }
    if (decoded === current) return false;
    current = decoded;
  }
  return credentialName.test(current);
}

/** The values of the query and fragment parameters of `text` named like a credential. */
export function credentialParameterValues(text: string): string[] {
  return [...text.matchAll(parameter)].filter((m) => isCredentialParameter(m[2] ?? "")).map((m) => m[3] ?? "");
}

/**
 * Removes credentials from text before it is logged or shown:
 * - `user:password@` (and a bare `token@`) from every `scheme://` URL (scp-like `git@host:path`
 *   is left alone: it cannot hold a password);
 * - the value of every query or fragment parameter named like a credential (`?private_token=`,
 *   `access_token`, `password`, `api_key`...), however its name is percent-encoded;
 * - each of `secrets` (a bind password, the decoded userinfo of a configured URL) wherever it
 *   appears, when at least `minSecretLength` long (a 3-letter user name like "git" would blank
 *   ordinary words; callers whose secrets are always secret pass 1).
 */
export function redact(text: string, secrets: readonly string[] = [], minSecretLength = 1): string {
  let out = text
    .replace(urlUserinfo, "$1")
    .replace(parameter, (whole, head: string, name: string) =>
      isCredentialParameter(name) ? `${head}${REDACTED}` : whole,
    );
  for (const secret of secrets)
    if (secret.length >= Math.max(1, minSecretLength)) out = out.split(secret).join(REDACTED);
  return out;
}
