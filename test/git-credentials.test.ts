/**
 * Credentials for a private Git repository, against real local git servers: `git http-backend`
 * behind an HTTP server that demands basic auth (written here, independent of the controller),
 * and OpenSSH with key authentication and a pinned host key. Each case goes from the settings
 * (`loadConfig`, as `run` reads them) through `gitCredentialEnv` to a real fetch.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../controller/config/index.ts";
import { SourceError, createGitSource, gitCredentialEnv } from "../controller/source/index.ts";
import { createGitRepo } from "./harness/git-repo.ts";
import type { GitRepo } from "./harness/git-repo.ts";
import { makeKey, startSshd } from "./harness/sshd.ts";
import type { Sshd } from "./harness/sshd.ts";

const user = "deploy-bot";
const password = "Rg7-basic-auth-password";
const token = "glpat-test-token-5d1e9c0b";

interface GitHttpServer {
  readonly url: string;
  /** Authorization outcomes in order: the user name that was let in, or "refused". */
  readonly seen: string[];
  stop(): Promise<void>;
}

/**
 * git's smart HTTP protocol: `git http-backend` as a CGI program, behind basic auth that accepts
 * `user:password` and, as forges do, a token as the password of any user name.
 */
async function startGitHttp(projectRoot: string): Promise<GitHttpServer> {
  const seen: string[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const header = req.headers.authorization ?? "";
    const decoded = header.startsWith("Basic ") ? Buffer.from(header.slice(6), "base64").toString("utf8") : "";
    const colon = decoded.indexOf(":");
    const [name, secret] = colon > 0 ? [decoded.slice(0, colon), decoded.slice(colon + 1)] : ["", ""];
    if (!((name === user && secret === password) || (name !== "" && secret === token))) {
      seen.push("refused");
      req.resume();
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' }).end();
      return;
    }
    seen.push(name);
    const url = new URL(req.url ?? "/", "http://localhost");
    const child = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env["PATH"],
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_CONFIG_GLOBAL: "/dev/null",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        REMOTE_USER: name,
        REMOTE_ADDR: "127.0.0.1",
        ...(req.headers["content-encoding"] ? { HTTP_CONTENT_ENCODING: req.headers["content-encoding"] } : {}),
        ...(typeof req.headers["git-protocol"] === "string" ? { GIT_PROTOCOL: req.headers["git-protocol"] } : {}),
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    req.pipe(child.stdin);
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    child.on("close", () => {
      const out = Buffer.concat(chunks);
      const end = out.indexOf("\r\n\r\n");
      const headerText = out.subarray(0, end).toString("latin1");
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of headerText.split("\r\n")) {
        const sep = line.indexOf(":");
        const key = line.slice(0, sep).trim();
        const value = line.slice(sep + 1).trim();
        if (key.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else if (key !== "") headers[key] = value;
      }
      res.writeHead(status, headers).end(out.subarray(end + 4));
    });
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/gmsa.git`,
    seen,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let temp: string;
let repo: GitRepo;
let http: GitHttpServer;
let sshd: Sshd;
let bare: string;

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), "gmsa-git-credentials-"));
  repo = createGitRepo({ files: { "account.yaml": "kind: GroupManagedServiceAccount\n" } });
  const projectRoot = join(temp, "served");
  bare = join(projectRoot, "gmsa.git");
  execFileSync("git", ["clone", "--quiet", "--bare", repo.dir, bare], { stdio: "ignore" });
  http = await startGitHttp(projectRoot);
  sshd = await startSshd();
}, 30_000);

afterAll(async () => {
  await http?.stop();
  await sshd?.stop();
  repo?.remove();
  rmSync(temp, { recursive: true, force: true });
});

let workDirs = 0;

/** Reads the settings as `run` does and syncs once with the credentials they name. */
async function syncWith(flags: Record<string, string>) {
  const result = loadConfig({ flags: { ...flags, "work-dir": join(temp, `clone-${++workDirs}`) }, env: {} });
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.source}: ${e.message}`).join("; "));
  const source = result.config.source;
  if (source?.type !== "git") throw new Error("expected a git source");
  return await createGitSource({
    url: source.url,
    branch: source.branch,
    workDir: source.workDir!,
    timeoutMs: 20_000,
    env: gitCredentialEnv(source.url, source.credentials),
  }).sync();
}

function secretFile(name: string, content: string): string {
  const path = join(temp, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

async function refusal(flags: Record<string, string>): Promise<SourceError> {
  const error: unknown = await syncWith(flags).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

describe("https credentials against git http-backend behind basic auth", () => {
  it("without credentials the server refuses, and the error names no secret", async () => {
    const error = await refusal({ "git-url": http.url });
    expect(error.reason).toBe("FetchFailed");
    expect(http.seen.at(-1)).toBe("refused");
  });

  it("fetches the branch head with a token file (a trailing newline is not part of the token)", async () => {
    const snapshot = await syncWith({ "git-url": http.url, "git-token-file": secretFile("token", `${token}\n`) });
    expect(snapshot.revision).toBe(repo.head());
    expect(snapshot.files.map((f) => f.path)).toEqual(["account.yaml"]);
    expect(http.seen.at(-1)).toBe("x-access-token");
  });

  it("sends the token with the configured user name", async () => {
    await syncWith({
      "git-url": http.url,
      "git-token-file": secretFile("token2", token),
      "git-username": "oauth2",
    });
    expect(http.seen.at(-1)).toBe("oauth2");
  });

  it("fetches with a basic-auth file holding user:password", async () => {
    const snapshot = await syncWith({
      "git-url": http.url,
      "git-basic-auth-file": secretFile("basic-auth", `${user}:${password}\n`),
    });
    expect(snapshot.revision).toBe(repo.head());
    expect(http.seen.at(-1)).toBe(user);
  });

  it("a wrong token is refused, and neither it nor the header reaches the error", async () => {
    const wrong = "glpat-wrong-token-000111";
    const error = await refusal({ "git-url": http.url, "git-token-file": secretFile("wrong", wrong) });
    expect(error.reason).toBe("FetchFailed");
    expect(http.seen.at(-1)).toBe("refused");
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(Buffer.from(`x-access-token:${wrong}`).toString("base64"));
  });
});

describe("ssh credentials against OpenSSH with key authentication", () => {
  const sshUrl = () => `ssh://${sshd.username}@127.0.0.1:${sshd.port}${bare}`;

  it("fetches with the deploy key and the pinned host key", async () => {
    const snapshot = await syncWith({
      "git-url": sshUrl(),
      "git-ssh-key-file": sshd.clientKeyPath,
      "git-ssh-known-hosts": sshd.knownHostsPath,
    });
    expect(snapshot.revision).toBe(repo.head());
  });

  it("a key the server does not authorize is refused", async () => {
    const otherKey = join(temp, "other_ed25519");
    await makeKey(otherKey);
    const error = await refusal({
      "git-url": sshUrl(),
      "git-ssh-key-file": otherKey,
      "git-ssh-known-hosts": sshd.knownHostsPath,
    });
    expect(error.reason).toBe("FetchFailed");
    expect(error.message).toMatch(/Permission denied/);
  });

  it("a server whose host key is not the pinned one is refused", async () => {
    const otherHost = join(temp, "other_host");
    const otherHostKey = await makeKey(otherHost);
    const knownHosts = secretFile("known_hosts_other", `[127.0.0.1]:${sshd.port} ${otherHostKey}\n`);
    const error = await refusal({
      "git-url": sshUrl(),
      "git-ssh-key-file": sshd.clientKeyPath,
      "git-ssh-known-hosts": knownHosts,
    });
    expect(error.reason).toBe("FetchFailed");
    expect(error.message).toMatch(/Host key verification failed|host key/i);
  });
});
