import { describe, expect, it } from "vitest";
import { SourceError, redact, urlSecrets } from "./errors.ts";

describe("redact", () => {
  it("removes user:password@ from every URL in a message", () => {
    const text = "fatal: unable to access 'https://bob:hunter22@git.example.com/a.git/' and ssh://bob:pw12@h/x";
    expect(redact(text)).toBe("fatal: unable to access 'https://git.example.com/a.git/' and ssh://h/x");
  });

  it("removes a bare token used as the user name", () => {
    expect(redact("https://ghp_abcdef123456@github.example/org/repo")).toBe("https://github.example/org/repo");
  });

  it("leaves scp-like git@host:path alone: it holds no password", () => {
    expect(redact("cannot reach git@github.example:org/repo.git")).toBe("cannot reach git@github.example:org/repo.git");
  });

  it("also hides a URL's password where git printed it decoded, outside the URL", () => {
    const secrets = urlSecrets("https://bob:p%40ss%2Fword@host/x");
    expect(redact("Authentication failed for password p@ss/word", secrets)).not.toContain("p@ss/word");
  });
});

describe("urlSecrets", () => {
  it("returns the password and whole userinfo, longest first, but never a plain user name", () => {
    expect(urlSecrets("https://bob:s3cret@host/x")).toEqual(["bob:s3cret", "s3cret"]);
    expect(urlSecrets("ssh://git@host/x")).toEqual([]);
    expect(urlSecrets("git@host:x")).toEqual([]);
    expect(urlSecrets("https://tok3n@host/x")).toEqual(["tok3n"]);
  });
});

describe("SourceError", () => {
  it("carries outcome, kind, reason and revision for the loop to branch on", () => {
    const error = new SourceError({
      outcome: "stalled",
      kind: "verify",
      reason: "SignatureInvalid",
      message: "unsigned",
      revision: "a".repeat(40),
    });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: "SourceError", outcome: "stalled", kind: "verify", revision: "a".repeat(40) });
  });
});
