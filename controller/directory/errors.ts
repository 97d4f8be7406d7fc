// One typed error for everything that goes wrong talking to AD. The reconcile loop decides
// retry policy from `outcome` alone (stalled / waiting / transient, by type, never by parsing
// messages), so the mapping below is by LDAP result code and error class.
import { redact } from "../redact.ts";

/**
 * How the caller should react: `transient` (retry with backoff), `stalled` (a person must fix
 * configuration or Git; do not retry) or `waiting` (retry later: AD is not ready yet, e.g. no
 * effective KDS root key).
 */
export type FailureOutcome = "transient" | "stalled" | "waiting";

/** The step that failed. */
export type DirectoryOperation = "connect" | "starttls" | "bind" | "search" | "add" | "modify" | "delete";

/** Why it failed, as a closed CamelCase set usable as a condition reason or metric label. */
export type DirectoryErrorReason =
  | "ConnectionFailed"
  | "Timeout"
  | "ServerBusy"
  | "CertificateUntrusted"
  | "CertificateExpired"
  | "CertificateNameMismatch"
  | "TlsHandshakeFailed"
  | "PlaintextRefused"
  | "InvalidConfiguration"
  | "InvalidCredentials"
  | "AccountLocked"
  | "ConfidentialityRequired"
  | "InsufficientAccess"
  | "NoSuchObject"
  | "AlreadyExists"
  | "ConstraintViolation"
  | "SchemaViolation"
  | "UnwillingToPerform"
  | "KdsRootKeyMissing"
  | "InvalidRequest"
  | "ProtocolError"
  | "Internal";

/** Fields of a DirectoryError besides its message. */
export interface DirectoryErrorDetails {
  outcome: FailureOutcome;
  reason: DirectoryErrorReason;
  operation: DirectoryOperation;
  /** The entry the operation was about, when there is one. */
  dn?: string;
  /** The LDAP result code when the server answered (e.g. 49, 68). */
  resultCode?: number;
}

/**
 * A failed directory operation. Never carries a password: the message is scrubbed of the bind
 * password, and the original error is not kept as `cause` (its text came from the wire).
 * JSON.stringify gives { name, message, outcome, reason, operation, dn, resultCode }.
 */
export class DirectoryError extends Error {
  readonly outcome: FailureOutcome;
  readonly reason: DirectoryErrorReason;
  readonly operation: DirectoryOperation;
  readonly dn: string | undefined;
  readonly resultCode: number | undefined;

  constructor(message: string, details: DirectoryErrorDetails) {
    super(message);
    this.name = "DirectoryError";
    this.outcome = details.outcome;
    this.reason = details.reason;
    this.operation = details.operation;
    this.dn = details.dn;
    this.resultCode = details.resultCode;
  }

  /** Plain-object form for logs and status; holds nothing secret. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      outcome: this.outcome,
      reason: this.reason,
      operation: this.operation,
      dn: this.dn,
      resultCode: this.resultCode,
    };
  }
}

/** What the mapper needs to know besides the error itself. */
export interface ErrorContext {
  operation: DirectoryOperation;
  dn?: string;
  /** The server, e.g. "ldaps://dc1.example.com:636", named in connection errors. */
  url?: string;
  /** The bind DN, named in credential errors. */
  bindDn?: string;
  /** Strings that must never appear in the result (the bind password). */
  secrets?: readonly string[];
}

interface CodeRule {
  outcome: FailureOutcome;
  reason: DirectoryErrorReason;
  text: string;
}

// LDAP result codes (RFC 4511 appendix A) and what the controller does about each.
const RESULT_CODES: Readonly<Record<number, CodeRule>> = {
  1: { outcome: "transient", reason: "ProtocolError", text: "operations error" },
  2: { outcome: "stalled", reason: "ProtocolError", text: "protocol error" },
  3: { outcome: "transient", reason: "Timeout", text: "time limit exceeded" },
  4: { outcome: "stalled", reason: "InvalidRequest", text: "size limit exceeded" },
  7: { outcome: "stalled", reason: "InvalidConfiguration", text: "authentication method not supported" },
  8: { outcome: "stalled", reason: "ConfidentialityRequired", text: "strong authentication required" },
  10: { outcome: "stalled", reason: "InvalidConfiguration", text: "referral: the entry is not held by this server" },
  11: { outcome: "stalled", reason: "InvalidRequest", text: "administrative limit exceeded" },
  12: { outcome: "stalled", reason: "InvalidRequest", text: "unavailable critical extension" },
  13: {
    outcome: "stalled",
    reason: "ConfidentialityRequired",
    text: "confidentiality required (use LDAPS or StartTLS)",
  },
  16: { outcome: "stalled", reason: "ConstraintViolation", text: "no such attribute" },
  17: { outcome: "stalled", reason: "SchemaViolation", text: "undefined attribute type" },
  18: { outcome: "stalled", reason: "InvalidRequest", text: "inappropriate matching" },
  19: { outcome: "stalled", reason: "ConstraintViolation", text: "constraint violation" },
  20: { outcome: "stalled", reason: "ConstraintViolation", text: "attribute or value exists" },
  21: { outcome: "stalled", reason: "SchemaViolation", text: "invalid attribute syntax" },
  32: { outcome: "stalled", reason: "NoSuchObject", text: "no such object" },
  34: { outcome: "stalled", reason: "InvalidRequest", text: "invalid DN syntax" },
  48: { outcome: "stalled", reason: "InvalidConfiguration", text: "inappropriate authentication" },
  49: { outcome: "stalled", reason: "InvalidCredentials", text: "invalid credentials" },
  50: { outcome: "stalled", reason: "InsufficientAccess", text: "insufficient access rights" },
  51: { outcome: "transient", reason: "ServerBusy", text: "server busy" },
  52: { outcome: "transient", reason: "ServerBusy", text: "server unavailable" },
  53: { outcome: "stalled", reason: "UnwillingToPerform", text: "unwilling to perform" },
  54: { outcome: "stalled", reason: "InvalidRequest", text: "loop detected" },
  64: { outcome: "stalled", reason: "SchemaViolation", text: "naming violation" },
  65: { outcome: "stalled", reason: "SchemaViolation", text: "object class violation" },
  66: { outcome: "stalled", reason: "ConstraintViolation", text: "not allowed on non-leaf" },
  67: { outcome: "stalled", reason: "SchemaViolation", text: "not allowed on RDN" },
  68: { outcome: "stalled", reason: "AlreadyExists", text: "entry already exists" },
  69: { outcome: "stalled", reason: "SchemaViolation", text: "object class modifications prohibited" },
  71: { outcome: "stalled", reason: "InvalidRequest", text: "affects multiple DSAs" },
  80: { outcome: "transient", reason: "ServerBusy", text: "other server error" },
};

// Node socket errors that mean "the server could not be reached right now".
const TRANSIENT_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EADDRNOTAVAIL",
]);

// OpenSSL verification codes as Node reports them on err.code.
const CERT_EXPIRY_CODES = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
const CERT_NAME_CODES = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"]);
const CERT_TRUST_CODES = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

/**
 * The one documented exception to "never parse messages": a gMSA add without a usable KDS root
 * key. Windows reports NTE_NO_KEY (0x8009000D); Samba 4.21+ (gkdi.c) says it failed to find a
 * suitable root key. The result code alone (32 or 53) is shared with real configuration errors.
 */
const KDS_NO_KEY = /NTE_NO_KEY|8009000D|root key/i;

function fieldOf(err: unknown, key: string): unknown {
  return typeof err === "object" && err !== null ? (err as Record<string, unknown>)[key] : undefined;
}

/** True when `err` is an ldapts ResultCodeError (the server answered with a result code). */
function ldapResultCode(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = fieldOf(err, "code");
  // ldapts' ResultCodeError has a numeric `code`; Node's system errors have string codes.
  return typeof code === "number" ? code : undefined;
}

/** The server's diagnostic text, without ldapts' " Code: 0x31" suffix. */
function diagnostic(err: Error): string {
  return err.message.replace(/\s*Code: 0x[0-9a-f]+$/i, "").trim();
}

function subject(ctx: ErrorContext): string {
  if (ctx.dn === undefined) return ctx.operation;
  // The rootDSE's DN is empty: "search  to ldaps://..." would leave the reader guessing.
  return ctx.dn === "" ? `${ctx.operation} of the rootDSE` : `${ctx.operation} ${ctx.dn}`;
}

/**
 * Maps anything thrown while talking to AD (ldapts result-code errors, Node socket and TLS
 * errors, ldapts' own timeout and connection errors) to a DirectoryError, and scrubs the
 * context's secrets from its message. A DirectoryError passes through unchanged.
 */
export function toDirectoryError(err: unknown, ctx: ErrorContext): DirectoryError {
  if (err instanceof DirectoryError) return err;
  const make = (
    outcome: FailureOutcome,
    reason: DirectoryErrorReason,
    message: string,
    resultCode?: number,
  ): DirectoryError => {
    const details: DirectoryErrorDetails = { outcome, reason, operation: ctx.operation };
    if (ctx.dn !== undefined) details.dn = ctx.dn;
    if (resultCode !== undefined) details.resultCode = resultCode;
    return new DirectoryError(redact(message, ctx.secrets), details);
  };

  const resultCode = ldapResultCode(err);
  if (resultCode !== undefined && err instanceof Error) {
    const said = diagnostic(err);
    const serverSaid = said === "" ? "" : `: ${said}`;
    if (ctx.operation === "add" && KDS_NO_KEY.test(said)) {
      return make(
        "waiting",
        "KdsRootKeyMissing",
        `${subject(ctx)} failed: no KDS root key is effective yet, so the DC cannot create a gMSA (LDAP ${resultCode}${serverSaid})`,
        resultCode,
      );
    }
    if (resultCode === 49) {
      // AD puts the Win32 reason in the diagnostic ("AcceptSecurityContext error, data 775"):
      // 775 is ERROR_ACCOUNT_LOCKED_OUT, the one case a person must unlock before any retry helps.
      const locked = /\bdata 775\b/i.test(said);
      return make(
        "stalled",
        locked ? "AccountLocked" : "InvalidCredentials",
        `bind as ${ctx.bindDn ?? ctx.dn ?? "(unknown DN)"} failed: invalid credentials (LDAP 49${serverSaid})`,
        resultCode,
      );
    }
    const rule = RESULT_CODES[resultCode] ?? {
      outcome: "stalled",
      reason: "InvalidRequest",
      text: "unexpected result",
    };
    return make(
      rule.outcome,
      rule.reason,
      `${subject(ctx)} failed: ${rule.text} (LDAP ${resultCode}${serverSaid})`,
      resultCode,
    );
  }

  const where = ctx.url === undefined ? "" : ` to ${ctx.url}`;
  const code = fieldOf(err, "code");
  const text = err instanceof Error ? err.message : String(err);
  if (typeof code === "string") {
    if (CERT_TRUST_CODES.has(code)) {
      return make(
        "stalled",
        "CertificateUntrusted",
        `${ctx.operation}${where} failed: the server certificate is not trusted (${code}); the CA in caFile (or the system CAs) does not match the server's certificate chain`,
      );
    }
    if (CERT_EXPIRY_CODES.has(code)) {
      return make(
        "stalled",
        "CertificateExpired",
        `${ctx.operation}${where} failed: the server certificate is outside its validity period (${code})`,
      );
    }
    if (CERT_NAME_CODES.has(code)) {
      return make(
        "stalled",
        "CertificateNameMismatch",
        `${ctx.operation}${where} failed: the server certificate does not name this host (${code}): ${text}`,
      );
    }
    if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) {
      return make(
        "stalled",
        "TlsHandshakeFailed",
        `${ctx.operation}${where} failed: TLS handshake failed (${code}): ${text}`,
      );
    }
    if (TRANSIENT_SOCKET_CODES.has(code)) {
      return make("transient", "ConnectionFailed", `${ctx.operation}${where} failed: ${code}: ${text}`);
    }
  }
  // Programming errors are not worth retrying.
  if (
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof SyntaxError ||
    err instanceof ReferenceError
  ) {
    return make("stalled", "Internal", `${subject(ctx)} failed: internal error: ${text}`);
  }
  // Anything else that ldapts throws without a result code is about the connection: its own
  // connect/operation timeouts, "socket error" and "connection closed" errors.
  return make("transient", "ConnectionFailed", `${subject(ctx)}${where} failed: ${text}`);
}

/** True when `err` is a DirectoryError whose LDAP result code is one of `codes`. */
export function hasResultCode(err: unknown, ...codes: number[]): boolean {
  return err instanceof DirectoryError && err.resultCode !== undefined && codes.includes(err.resultCode);
}
