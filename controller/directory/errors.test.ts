import { describe, expect, it } from "vitest";
import {
  AlreadyExistsError,
  BusyError,
  ConstraintViolationError,
  InsufficientAccessError,
  InvalidCredentialsError,
  NamingViolationError,
  NoSuchObjectError,
  ObjectClassViolationError,
  UnavailableError,
  UnknownStatusCodeError,
  UnwillingToPerformError,
} from "ldapts";
import type { FailureOutcome } from "./errors.ts";
import { DirectoryError, hasResultCode, toDirectoryError } from "./errors.ts";
import { REDACTED, redact } from "../redact.ts";

const PASSWORD = "S3cret!Pass";
const BIND_DN = "CN=svc-gitops,CN=Users,DC=example,DC=com";
const GMSA_DN = "CN=MSA-service1,CN=Managed Service Accounts,DC=example,DC=com";

function systemError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("toDirectoryError", () => {
  const table: {
    name: string;
    err: unknown;
    operation: "bind" | "add" | "modify" | "search" | "connect";
    outcome: FailureOutcome;
    reason: string;
    resultCode?: number;
  }[] = [
    {
      name: "connection refused",
      err: systemError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:636"),
      operation: "connect",
      outcome: "transient",
      reason: "ConnectionFailed",
    },
    {
      name: "connection reset",
      err: systemError("ECONNRESET", "read ECONNRESET"),
      operation: "search",
      outcome: "transient",
      reason: "ConnectionFailed",
    },
    {
      name: "socket timeout",
      err: systemError("ETIMEDOUT", "connect ETIMEDOUT"),
      operation: "connect",
      outcome: "transient",
      reason: "ConnectionFailed",
    },
    {
      name: "ldapts operation timeout",
      err: new Error("SearchRequest: Operation timed out"),
      operation: "search",
      outcome: "transient",
      reason: "ConnectionFailed",
    },
    {
      name: "busy (51)",
      err: new BusyError(),
      operation: "modify",
      outcome: "transient",
      reason: "ServerBusy",
      resultCode: 51,
    },
    {
      name: "unavailable (52)",
      err: new UnavailableError(),
      operation: "search",
      outcome: "transient",
      reason: "ServerBusy",
      resultCode: 52,
    },
    {
      name: "other (80)",
      err: new UnknownStatusCodeError(80, "other"),
      operation: "add",
      outcome: "transient",
      reason: "ServerBusy",
      resultCode: 80,
    },
    {
      name: "invalid credentials (49)",
      err: new InvalidCredentialsError("80090308: LdapErr: DSID-0C0903A9, data 52e"),
      operation: "bind",
      outcome: "stalled",
      reason: "InvalidCredentials",
      resultCode: 49,
    },
    {
      name: "a locked account (49, data 775)",
      err: new InvalidCredentialsError(
        "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 775, v1db1",
      ),
      operation: "bind",
      outcome: "stalled",
      reason: "AccountLocked",
      resultCode: 49,
    },
    {
      name: "insufficient access (50)",
      err: new InsufficientAccessError(),
      operation: "modify",
      outcome: "stalled",
      reason: "InsufficientAccess",
      resultCode: 50,
    },
    {
      name: "constraint violation (19)",
      err: new ConstraintViolationError(),
      operation: "modify",
      outcome: "stalled",
      reason: "ConstraintViolation",
      resultCode: 19,
    },
    {
      name: "naming violation (64)",
      err: new NamingViolationError(),
      operation: "add",
      outcome: "stalled",
      reason: "SchemaViolation",
      resultCode: 64,
    },
    {
      name: "object class violation (65)",
      err: new ObjectClassViolationError(),
      operation: "add",
      outcome: "stalled",
      reason: "SchemaViolation",
      resultCode: 65,
    },
    {
      name: "already exists (68)",
      err: new AlreadyExistsError(),
      operation: "add",
      outcome: "stalled",
      reason: "AlreadyExists",
      resultCode: 68,
    },
    {
      name: "no such object (32) on a search",
      err: new NoSuchObjectError("0000208D: NameErr: root key"),
      operation: "search",
      outcome: "stalled",
      reason: "NoSuchObject",
      resultCode: 32,
    },
    {
      name: "Samba's no-root-key add (32)",
      err: new NoSuchObjectError("samldb: gMSA: failed to find a suitable root key"),
      operation: "add",
      outcome: "waiting",
      reason: "KdsRootKeyMissing",
      resultCode: 32,
    },
    {
      name: "Windows' NTE_NO_KEY add (53)",
      err: new UnwillingToPerformError("0000202B: ... NTE_NO_KEY (0x8009000D)"),
      operation: "add",
      outcome: "waiting",
      reason: "KdsRootKeyMissing",
      resultCode: 53,
    },
    {
      name: "unwilling to perform (53) without KDS text",
      err: new UnwillingToPerformError(),
      operation: "add",
      outcome: "stalled",
      reason: "UnwillingToPerform",
      resultCode: 53,
    },
    {
      name: "untrusted certificate",
      err: systemError("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"),
      operation: "connect",
      outcome: "stalled",
      reason: "CertificateUntrusted",
    },
    {
      name: "self-signed certificate",
      err: systemError("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
      operation: "connect",
      outcome: "stalled",
      reason: "CertificateUntrusted",
    },
    {
      name: "expired certificate",
      err: systemError("CERT_HAS_EXPIRED", "certificate has expired"),
      operation: "connect",
      outcome: "stalled",
      reason: "CertificateExpired",
    },
    {
      name: "wrong host name",
      err: systemError("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match"),
      operation: "connect",
      outcome: "stalled",
      reason: "CertificateNameMismatch",
    },
    {
      name: "TLS to a plaintext port",
      err: systemError("ERR_SSL_WRONG_VERSION_NUMBER", "wrong version number"),
      operation: "connect",
      outcome: "stalled",
      reason: "TlsHandshakeFailed",
    },
    {
      name: "a programming error",
      err: new TypeError("x is undefined"),
      operation: "search",
      outcome: "stalled",
      reason: "Internal",
    },
  ];

  it.each(table)("$name is $outcome", ({ err, operation, outcome, reason, resultCode }) => {
    const mapped = toDirectoryError(err, { operation, dn: GMSA_DN, url: "ldaps://dc1:636", bindDn: BIND_DN });
    expect(mapped).toBeInstanceOf(DirectoryError);
    expect(mapped.outcome).toBe(outcome);
    expect(mapped.reason).toBe(reason);
    expect(mapped.resultCode).toBe(resultCode);
    expect(mapped.operation).toBe(operation);
  });

  it("a rootDSE read that timed out names the rootDSE, not an empty DN", () => {
    const mapped = toDirectoryError(new Error("SearchRequest: Operation timed out"), {
      operation: "search",
      dn: "",
      url: "ldaps://dc1.company.local",
    });
    expect(mapped.message).toBe(
      "search of the rootDSE to ldaps://dc1.company.local failed: SearchRequest: Operation timed out",
    );
  });

  it("a wrong bind password says which DN failed, in plain words", () => {
    const mapped = toDirectoryError(new InvalidCredentialsError(), { operation: "bind", bindDn: BIND_DN });
    expect(mapped.message).toMatch(new RegExp(`^bind as ${BIND_DN} failed: invalid credentials`));
  });

  it("an untrusted certificate says that the CA does not match", () => {
    const mapped = toDirectoryError(
      systemError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"),
      {
        operation: "connect",
        url: "ldaps://dc1:636",
      },
    );
    expect(mapped.message).toMatch(/certificate is not trusted.*CA.*does not match/);
  });

  it("the bind password never appears in the message, stack or JSON, even if the server echoes it", () => {
    const echoed = new InvalidCredentialsError(`bad password ${PASSWORD} for ${BIND_DN}`);
    const mapped = toDirectoryError(echoed, { operation: "bind", bindDn: BIND_DN, secrets: [PASSWORD] });
    for (const text of [String(mapped), mapped.stack ?? "", JSON.stringify(mapped)]) {
      expect(text).not.toContain(PASSWORD);
    }
    expect(mapped.message).toContain(REDACTED);
    expect(mapped.cause).toBeUndefined();
  });

  it("JSON form carries the typed fields", () => {
    const mapped = toDirectoryError(new AlreadyExistsError(), { operation: "add", dn: GMSA_DN });
    expect(JSON.parse(JSON.stringify(mapped))).toMatchObject({
      outcome: "stalled",
      reason: "AlreadyExists",
      dn: GMSA_DN,
      resultCode: 68,
    });
  });

  it("a DirectoryError passes through unchanged", () => {
    const first = toDirectoryError(new BusyError(), { operation: "search" });
    expect(toDirectoryError(first, { operation: "add" })).toBe(first);
  });

  it("hasResultCode matches mapped result codes only", () => {
    const mapped = toDirectoryError(new AlreadyExistsError(), { operation: "add" });
    expect(hasResultCode(mapped, 20, 68)).toBe(true);
    expect(hasResultCode(mapped, 53)).toBe(false);
    expect(hasResultCode(new AlreadyExistsError(), 68)).toBe(false);
  });
});

describe("redact", () => {
  it("replaces every occurrence of every secret", () => {
    expect(redact("a pw b pw", ["pw", ""])).toBe(`a ${REDACTED} b ${REDACTED}`);
  });
});
