// The CI pipelines in examples/ci/ are copied by teams as they are, so they are tested as they
// are: they parse as YAML; put where examples/ci/README.md says, in a copy of examples/, they are
// not read as manifests; and every `gmsa-gitops` command in them runs through the real command
// line with the pipeline's variables filled in (validate succeeds in its format, plan gets past
// its arguments and settings and fails only on connecting to a directory that is not there).
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { XMLValidator } from "fast-xml-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { isManifestPath, loadManifests } from "../controller/manifests/index.ts";
import { makeSelfSignedCa } from "./harness/ca.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(ROOT, "bin", "gmsa-gitops.mjs");
const EXAMPLES = join(ROOT, "examples");
const GITHUB = ".github/workflows/gmsa-gitops.yml";
const GITLAB = ".gitlab-ci.yml";

/** Values the test gives to the pipelines' variables and secrets (nothing real). */
const SETTINGS: Record<string, string> = {
  GMSA_GITOPS_LDAP_URL: "ldaps://127.0.0.1:1", // nothing listens: connection refused
  GMSA_GITOPS_READONLY_BIND_DN: "CN=svc-gmsa-plan,OU=Service,DC=company,DC=local",
  GMSA_GITOPS_READONLY_BIND_PASSWORD: "not-a-real-password",
  GMSA_GITOPS_OWNERSHIP_KEY: "not-a-real-ownership-key-0123456789abcdef",
  GMSA_GITOPS_REPOSITORY: "example/gmsa-gitops",
  GMSA_GITOPS_REF: "v0.1.0",
};

/** One `gmsa-gitops` invocation found in a pipeline, with the environment it runs in. */
interface Invocation {
  where: string;
  argv: string[];
  env: Record<string, string>;
}

type Token = { word: string } | { op: string };

/**
 * Splits a shell line into words and operators, expanding `$VAR` and `${VAR}` (unquoted and in
 * double quotes) from `vars`; an unknown variable becomes a marker the caller rejects. The
 * target of a redirection is dropped with it. Enough for the pipelines' one-line commands.
 */
function shellWords(line: string, vars: Record<string, string>): Token[] {
  const tokens: Token[] = [];
  let word: string | undefined;
  let i = 0;
  const expand = (): string => {
    const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\?))/.exec(line.slice(i));
    if (!m) {
      i++;
      return "$";
    }
    i += m[0].length;
    const name = m[1] ?? m[2] ?? m[3] ?? "";
    return vars[name] ?? `\u0000${name}\u0000`;
  };
  const end = (): void => {
    if (word !== undefined) tokens.push({ word });
    word = undefined;
  };
  while (i < line.length) {
    const c = line.charAt(i);
    if (c === " " || c === "\t") {
      end();
      i++;
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      word = (word ?? "") + line.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      i++;
      word = word ?? "";
      while (i < line.length && line.charAt(i) !== '"') {
        if (line.charAt(i) === "$") word += expand();
        else word += line.charAt(i++);
      }
      i++;
    } else if (c === "$") {
      word = (word ?? "") + expand();
    } else if ("|&;><".includes(c)) {
      end();
      const op = /^(\|\||&&|>>|[|&;><])/.exec(line.slice(i))?.[0] ?? c;
      tokens.push({ op });
      i += op.length;
    } else {
      word = (word ?? "") + c;
      i++;
    }
  }
  end();
  // Drop redirections and their targets ("2>" arrives as the word "2" then ">").
  const out: Token[] = [];
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t] as Token;
    if ("op" in token && (token.op === ">" || token.op === ">>" || token.op === "<")) {
      const previous = out[out.length - 1];
      if (previous && "word" in previous && /^\d$/.test(previous.word)) out.pop();
      t++;
      continue;
    }
    out.push(token);
  }
  return out;
}

/** Every `gmsa-gitops ARGS` command in a script (lines, and commands joined by && || ;). */
function invocations(script: string, where: string, env: Record<string, string>): Invocation[] {
  const found: Invocation[] = [];
  for (const line of script.split("\n")) {
    let command: string[] = [];
    const flush = (): void => {
      if (command[0] === "gmsa-gitops") {
        const argv = command.slice(1);
        const unknown = argv.filter((a) => a.includes("\u0000")).map((a) => a.split("\u0000")[1]);
        if (unknown.length > 0) throw new Error(`${where}: no value for $${unknown.join(", $")} in: ${line}`);
        found.push({ where, argv, env });
      }
      command = [];
    };
    for (const token of shellWords(line, env)) {
      if ("op" in token) flush();
      else command.push(token.word);
    }
    flush();
  }
  return found;
}

/** `${{ vars.X }}` and `${{ secrets.X }}` → the test's value for X; other expressions stay. */
function githubValue(value: unknown): string {
  return String(value).replace(/\$\{\{\s*(?:vars|secrets)\.([A-Z0-9_]+)\s*\}\}/g, (_, name: string) => {
    const v = SETTINGS[name];
    if (v === undefined) throw new Error(`no test value for ${name}`);
    return v;
  });
}

function envOf(map: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((map ?? {}) as Record<string, unknown>)) out[k] = githubValue(v);
  return out;
}

interface GithubWorkflow {
  on: unknown;
  env?: unknown;
  jobs: Record<string, { env?: unknown; steps: { name?: string; run?: string; env?: unknown }[] }>;
}

function githubInvocations(text: string): Invocation[] {
  const workflow = parse(text) as GithubWorkflow;
  const found: Invocation[] = [];
  for (const [jobName, job] of Object.entries(workflow.jobs)) {
    for (const [i, step] of job.steps.entries()) {
      if (!step.run) continue;
      const env = { ...envOf(workflow.env), ...envOf(job.env), ...envOf(step.env) };
      found.push(...invocations(step.run, `${GITHUB} jobs.${jobName}.steps[${i}]`, env));
    }
  }
  return found;
}

type GitlabJob = { variables?: Record<string, string>; script?: string[]; before_script?: string[]; extends?: string };

function gitlabInvocations(text: string): Invocation[] {
  const config = parse(text) as Record<string, unknown>;
  const globals = (config["variables"] ?? {}) as Record<string, string>;
  // File-type variables arrive as a path; the others as their value.
  const { GMSA_GITOPS_OWNERSHIP_KEY: _key, ...settings } = SETTINGS;
  const ci: Record<string, string> = {
    ...settings,
    GMSA_GITOPS_READONLY_BIND_PASSWORD: passwordFile(),
    GMSA_GITOPS_OWNERSHIP_KEY_FILE: join(repo, ".ci", "ownership-key"),
  };
  const found: Invocation[] = [];
  for (const [name, value] of Object.entries(config)) {
    if (["workflow", "stages", "variables", "default", "include"].includes(name)) continue;
    const job = value as GitlabJob;
    const env = { ...ci, ...globals, ...(job.variables ?? {}) };
    const script = [...(job.before_script ?? []), ...(job.script ?? [])].join("\n");
    found.push(...invocations(script, `${GITLAB} ${name}`, env));
  }
  return found;
}

function formatOf(argv: string[]): string {
  const at = argv.indexOf("--format");
  return at < 0 ? "text" : (argv[at + 1] ?? "");
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real bin in `cwd` with the step's environment, as the CI job would. */
function run(argv: string[], cwd: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...argv],
      { cwd, env: { PATH: process.env["PATH"] ?? "", ...env } },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: unknown }).code) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let repo: string;

/** Where GitLab would put the File-type password variable. */
function passwordFile(): string {
  return join(repo, ".ci", "bind-password");
}

beforeAll(() => {
  // A team's repository: examples/ with the pipelines copied to where examples/ci/README.md says.
  repo = mkdtempSync(join(tmpdir(), "gmsa-ci-"));
  cpSync(EXAMPLES, repo, { recursive: true, filter: (src) => src !== join(EXAMPLES, "ci") });
  cpSync(join(EXAMPLES, "ci", ".github"), join(repo, ".github"), { recursive: true });
  cpSync(join(EXAMPLES, "ci", GITLAB), join(repo, GITLAB));
  mkdirSync(join(repo, ".ci"));
  writeFileSync(passwordFile(), `${SETTINGS["GMSA_GITOPS_READONLY_BIND_PASSWORD"] ?? ""}\n`, { mode: 0o600 });
  writeFileSync(join(repo, ".ci", "ownership-key"), `${SETTINGS["GMSA_GITOPS_OWNERSHIP_KEY"] ?? ""}\n`, {
    mode: 0o600,
  });
  renameSync(makeSelfSignedCa(join(repo, ".ci"), "test CA"), join(repo, ".ci", "company-ca.pem"));
});

afterAll(() => rmSync(repo, { recursive: true, force: true }));

describe("examples/ci", () => {
  it("is never read as manifests: in examples/ under ci/, nor at a team repository's root", async () => {
    for (const path of [`ci/${GITHUB}`, `ci/${GITLAB}`, GITHUB, GITLAB]) expect(isManifestPath(path), path).toBe(false);
    const examples = await loadManifests(EXAMPLES);
    const copied = await loadManifests(repo);
    expect(examples.ok && copied.ok).toBe(true);
    expect(examples.paths.filter((p) => p.startsWith("ci/"))).toEqual([]);
    expect(copied.paths).toEqual(examples.paths);
  });

  it("holds a GitHub workflow and a GitLab job that parse as YAML and run validate and plan on every pull request", () => {
    const github = parse(readFileSync(join(repo, GITHUB), "utf8")) as GithubWorkflow;
    expect(Object.keys(github.on as object)).toEqual(["pull_request"]);
    const gitlab = parse(readFileSync(join(repo, GITLAB), "utf8")) as {
      workflow: { rules: { if: string }[] };
      validate: { artifacts: { reports: { junit: string } } };
    };
    expect(gitlab.workflow.rules.map((r) => r.if)).toEqual(['$CI_PIPELINE_SOURCE == "merge_request_event"']);
    expect(gitlab.validate.artifacts.reports.junit).toBe("gmsa-gitops-junit.xml");

    const commands = (list: Invocation[]): string[] => list.map((c) => `${c.argv[0] ?? ""} ${formatOf(c.argv)}`);
    expect(commands(githubInvocations(readFileSync(join(repo, GITHUB), "utf8")))).toEqual([
      "validate github",
      "validate sarif",
      "plan markdown",
    ]);
    expect(commands(gitlabInvocations(readFileSync(join(repo, GITLAB), "utf8")))).toEqual([
      "validate junit",
      "validate text", // the same errors as text, for the job log
      "plan markdown",
    ]);
  });

  it("runs every gmsa-gitops command of both pipelines through the real command line", async () => {
    const all = [
      ...githubInvocations(readFileSync(join(repo, GITHUB), "utf8")),
      ...gitlabInvocations(readFileSync(join(repo, GITLAB), "utf8")),
    ];
    for (const { where, argv, env } of all) {
      const result = await run(argv, repo, env);
      const label = `${where}: gmsa-gitops ${argv.join(" ")}\n${result.stderr}`;
      if (argv[0] === "validate") {
        expect(result.code, label).toBe(0);
        const format = formatOf(argv);
        if (format === "sarif") expect((JSON.parse(result.stdout) as { version: string }).version).toBe("2.1.0");
        if (format === "junit") expect(XMLValidator.validate(result.stdout), label).toBe(true);
        if (format === "github") expect(result.stdout, label).toBe("");
        if (format === "text") expect(result.stdout, label).toMatch(/^valid: 6 files/);
      } else {
        expect(argv[0], label).toBe("plan");
        // Arguments, settings, the CA file and the manifests were all accepted: what failed is
        // the connection to a directory that is not there (1), not the usage (2).
        expect(result.code, label).toBe(1);
        expect(result.stderr, label).toContain("bind to ldaps://127.0.0.1:1 failed: ECONNREFUSED");
        // The same command with a flag that does not exist is a usage error: the check can fail.
        const wrong = await run([...argv, "--no-such-flag"], repo, env);
        expect(wrong.code, label).toBe(2);
      }
    }
    expect(all.length).toBe(6);
  });
});
