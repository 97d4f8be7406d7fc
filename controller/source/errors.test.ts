import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { SourceError, hideSecrets, redact, urlSecrets } from "./errors.ts";
import { createGitSource } from "./git.ts";

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
    expect(hideSecrets("Authentication failed for password p@ss/word", secrets)).not.toContain("p@ss/word");
  });

  it("removes credentials passed in a query string or fragment, whatever the parameter's case or encoding", () => {
    const cases: Array<[string, string]> = [
      [
        "https://gitlab.example/a.git?private_token=glpat-abc123",
        "https://gitlab.example/a.git?private_token=[redacted]",
      ],
      ["https://h/x?ref=main&access_token=ya29.a0Af&b=1", "https://h/x?ref=main&access_token=[redacted]&b=1"],
      ["https://h/x?Password=hunter22", "https://h/x?Password=[redacted]"],
      ["https://h/x?api_key=k3y;token=t0k", "https://h/x?api_key=[redacted];token=[redacted]"],
      ["https://h/cb#access_token=abc&state=xyz", "https://h/cb#access_token=[redacted]&state=xyz"],
      ["'https://u:p4ss@h/x?oauth_token=abc'", "'https://h/x?oauth_token=[redacted]'"],
      ["https://h/x?ref=main&page=2", "https://h/x?ref=main&page=2"],
      // Spelled as a server reads them: percent-encoded names, "@" inside a password.
      ["https://h/x?%74oken=t0k3nValue", "https://h/x?%74oken=[redacted]"],
      ["https://h/x?ref=main&private%5Ftoken=glpat-abc", "https://h/x?ref=main&private%5Ftoken=[redacted]"],
      ["https://h/x?%50%41SSWORD=hunter22", "https://h/x?%50%41SSWORD=[redacted]"],
      ["https://h/cb#%61ccess_token=abc&state=xyz", "https://h/cb#%61ccess_token=[redacted]&state=xyz"],
      ["https://h/x?%2574oken=twice", "https://h/x?%2574oken=[redacted]"],
      ["fatal: 'https://bob:p@ss@host/a.git/'", "fatal: 'https://host/a.git/'"],
      ["ssh://git:s3cr@t@host:22/x and https://tok@en@h/y", "ssh://host:22/x and https://h/y"],
      ["https://h/x?%zz=1&ref=a@b", "https://h/x?%zz=1&ref=a@b"],
    ];
    for (const [text, expected] of cases) expect(redact(text), text).toBe(expected);
  });
});

describe("a Git source with credentials in its URL", () => {
  const cases: Array<[string, string, string, RegExp]> = [
    [
      "a token in its query string",
      "https://127.0.0.1:1/group/repo.git?private_token=glpat-Sup3rSecret&access_token=ya29-Sup3rSecret",
      "https://127.0.0.1:1/group/repo.git?private_token=[redacted]&access_token=[redacted]",
      /Sup3rSecret/,
    ],
    [
      "a password holding '@' and a token under a percent-encoded parameter name",
      "https://alice:Sup3r@Secr@t1@127.0.0.1:1/group/repo.git?private_%74oken=glpat-Sup3rSecret2",
      "https://127.0.0.1:1/group/repo.git?private_%74oken=[redacted]",
      /Secr|Sup3r/,
    ],
  ];
  it.each(cases)(
    "never shows %s, in its URL or in the failure it reports",
    async (_what, url, safe, secret) => {
      const workDir = await mkdtemp(join(tmpdir(), "gmsa-redact-"));
      onTestFinished(() => rm(workDir, { recursive: true, force: true }));
      const source = createGitSource({ url, workDir, timeoutMs: 20_000 });
      expect(source.url).toBe(safe);
      const error: unknown = await source.sync().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SourceError);
      expect((error as SourceError).message).toContain("127.0.0.1:1/group/repo.git");
      expect((error as SourceError).message).not.toMatch(secret);
    },
    30_000,
  );
});

describe("urlSecrets", () => {
  it("returns the password and whole userinfo, longest first, but never a plain user name", () => {
    expect(urlSecrets("https://bob:s3cret@host/x")).toEqual(["bob:s3cret", "s3cret"]);
    expect(urlSecrets("ssh://git@host/x")).toEqual([]);
    expect(urlSecrets("git@host:x")).toEqual([]);
    expect(urlSecrets("https://tok3n@host/x")).toEqual(["tok3n"]);
    expect(urlSecrets("https://host/x?private_token=glpat%2Fx1")).toEqual(["glpat%2Fx1", "glpat/x1"]);
    expect(urlSecrets("https://bob:p@ssw0rd@host/x?%74oken=t0k3n")).toEqual(["bob:p@ssw0rd", "p@ssw0rd", "t0k3n"]);
  });
});

describe("SourceError", () => {
  it("carries outcome, kind, reason and revision for the loop to branch on", () => {
    const error = new SourceError({
      outcome: "stalled",
      step: "verify",
      reason: "SignatureInvalid",
      message: "unsigned",
      revision: "a".repeat(40),
    });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: "SourceError", outcome: "stalled", step: "verify", revision: "a".repeat(40) });
  });
});
