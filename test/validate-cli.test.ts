// Runs the real `gmsa-gitops` bin (through `npx node`, as users of this checkout do) on the
// fixture repositories and checks exit codes and exact output.
import { execFile, execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(ROOT, "bin", "gmsa-gitops.mjs");
const FIXTURES = join(ROOT, "test", "fixtures", "manifests");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bin with `npx node`, or as the given argv prefix (e.g. an unprivileged user's node). */
function run(args: string[], cwd = ROOT, command: string[] = ["npx", "node"]): Promise<Run> {
  return new Promise((resolve) => {
    const [file = "npx", ...prefix] = command;
    execFile(file, [...prefix, BIN, ...args], { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: unknown }).code as number) : 0;
      // npm may warn about the user's npm configuration; that is not our output.
      const ours = stderr
        .split("\n")
        .filter((line) => !line.startsWith("npm warn"))
        .join("\n");
      resolve({ code, stdout, stderr: ours });
    });
  });
}

describe("gmsa-gitops validate", () => {
  it("exits 0 on a valid repository and prints a one-line summary", async () => {
    const result = await run(["validate", join(FIXTURES, "valid")]);
    expect(result).toEqual({
      code: 0,
      stdout:
        "valid: 4 files, 2 ADGroup, 2 GroupManagedServiceAccount, 2 HostBinding, 1 KdsRootKey, 0 ManagedServiceAccount\n",
      stderr: "",
    });
  });

  it("validates the current folder when DIR is omitted", async () => {
    const result = await run(["validate"], join(FIXTURES, "valid"));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^valid: 4 files,/);
  });

  it("exits 1 on an invalid repository and prints one FILE:LINE:COL: message line per error", async () => {
    const result = await run(["validate", join(FIXTURES, "references")]);
    expect(result.code).toBe(1);
    expect(result.stdout.split("\n")).toEqual([
      'refs.yaml:7:12: spec.account: no GroupManagedServiceAccount or ManagedServiceAccount named "msa-servce1" in the repository; did you mean "msa-service1"?',
      'refs.yaml:17:14: spec.principalsAllowedToRetrieveManagedPassword[0].group: no ADGroup named "no-such-group" in the repository; for a group that exists only in AD use externalGroup',
      'refs.yaml:27:14: spec.members[1].group: no ADGroup named "group-c" in the repository; did you mean "group-a"?',
      "refs.yaml:36:14: spec.members[0].group: group nesting cycle group-a → group-b → group-a; a group cannot contain itself",
      "",
    ]);
    expect(result.stderr).toBe("4 errors in 1 file\n");
  });

  it("prints paths relative to DIR across nested files", async () => {
    const result = await run(["validate", "test/fixtures/manifests/cascade"]);
    expect(result.code).toBe(1);
    expect(result.stdout.split("\n").map((l) => l.split(": ")[0])).toEqual([
      "account.yaml:8:16",
      "account.yaml:18:16",
      "binding.yaml:15:12",
      "",
    ]);
  });

  it("prints errors as JSON with --format json", async () => {
    const result = await run(["validate", join(FIXTURES, "retrieval"), "--format", "json"]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      valid: false,
      errors: [
        {
          file: "bindings.yaml",
          line: 23,
          column: 9,
          path: "spec.host",
          code: "host-cannot-retrieve",
          message: expect.stringContaining("SERVER3 is not allowed to retrieve the password"),
        },
      ],
    });
  });

  it("prints the summary as JSON with --format json", async () => {
    const result = await run(["validate", "--format=json", join(FIXTURES, "valid")]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      valid: true,
      files: 4,
      resources: { ADGroup: 2, GroupManagedServiceAccount: 2, HostBinding: 2, KdsRootKey: 1, ManagedServiceAccount: 0 },
    });
  });

  it("exits 2 on usage errors: an unknown format, an unknown option, two folders, a missing folder", async () => {
    const cases: [string[], string][] = [
      [
        ["validate", "--format", "xml"],
        'gmsa-gitops validate: --format must be one of text, json, github, sarif, junit, not "xml"',
      ],
      [["validate", "--verbose"], "gmsa-gitops validate: unknown option --verbose"],
      [["validate", "a", "b"], "gmsa-gitops validate: expected one DIR, got 2"],
      [["validate", "no-such-folder"], "gmsa-gitops validate: no-such-folder is not a folder"],
    ];
    for (const [args, first] of cases) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr.split("\n")[0]).toBe(first);
    }
  });

  it("prints its usage with --help and exits 0", async () => {
    const result = await run(["validate", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Usage: gmsa-gitops validate \[DIR\] \[--format text\|json\|github\|sarif\|junit\]\n/,
    );
  });
});

describe("gmsa-gitops validate on a hostile folder", () => {
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made) execFileSync("rm", ["-rf", dir]); // fs.rm cannot remove the deep tree
  }, 60_000);
  const folder = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), "gmsa-validate-"));
    await chmod(dir, 0o755);
    made.push(dir);
    return dir;
  };
  const group =
    "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: web\nspec:\n  accountName: web\n";
  // An unprivileged user: root reads a mode-000 folder anyway.
  const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath];

  it("reports an unreadable subfolder at PATH:1:1 when run as an unprivileged user, with no stack trace", async () => {
    const dir = await folder();
    await mkdir(join(dir, "apps/locked"), { recursive: true });
    await writeFile(join(dir, "apps/group.yaml"), group);
    await chmod(join(dir, "apps/locked"), 0o000);
    const result = await run(["validate", dir], ROOT, nobody);
    expect(result).toEqual({
      code: 1,
      stdout: "apps/locked:1:1: cannot read the folder (EACCES); its manifests are unknown\n",
      stderr: "1 error in 1 file\n",
    });
  });

  it("refuses folders nested past PATH_MAX at the depth limit, in bounded time", async () => {
    const dir = await folder();
    execFileSync("python3", [
      "-c",
      "import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(2500):\n os.mkdir('d'); os.chdir('d')",
      dir,
    ]);
    const started = performance.now();
    const result = await run(["validate", dir]);
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(result).toEqual({
      code: 1,
      stdout: `${"d/".repeat(32)}d:1:1: folders nested more than 32 levels deep are not read\n`,
      stderr: "1 error in 1 file\n",
    });
  }, 60_000);

  it("prints file names escaped, reports FIFOs and names ending in a space instead of skipping them", async () => {
    const dir = await folder();
    await writeFile(join(dir, "x.yaml\nforged.yaml:1:1: all good.yaml"), "a: [\n");
    await writeFile(join(dir, "group.yaml "), group);
    execFileSync("mkfifo", [join(dir, "pipe.yaml")]);
    const result = await run(["validate", dir]);
    expect(result.code).toBe(1);
    expect(result.stdout.split("\n")).toEqual([
      "group.yaml :1:1: the name ends with white space, which Windows and most tools cannot handle; rename it",
      "pipe.yaml:1:1: not a regular file (a named pipe); it is not read",
      expect.stringMatching(/^x\.yaml\\nforged\.yaml:1:1: all good\.yaml:2:1: /),
      "",
    ]);
  });
});

describe("validate warnings", () => {
  it("warns, without failing, when a manifest names a well-known account (text, json, github)", async () => {
    const dir = join(FIXTURES, "protected");
    const text = await run(["validate", dir]);
    expect(text.code).toBe(0);
    const warning = (name: string): string =>
      `spec.accountName: ${JSON.stringify(name)} is one of the domain's well-known accounts; gmsa-gitops never touches it (plan reports it as protected)`;
    expect(text.stdout.split("\n")).toEqual([
      `groups.yaml:2:1: warning: ${warning("Domain Admins")}`,
      `groups.yaml:10:1: warning: ${warning("administrators")}`,
      "valid: 1 file, 3 ADGroup, 0 GroupManagedServiceAccount, 0 HostBinding, 0 KdsRootKey, 0 ManagedServiceAccount",
      "",
    ]);
    const json = await run(["validate", dir, "--format", "json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      valid: true,
      warnings: [
        { file: "groups.yaml", line: 2, column: 1, path: "spec.accountName", code: "protected-account" },
        { file: "groups.yaml", line: 10, column: 1, path: "spec.accountName", code: "protected-account" },
      ],
    });
    const github = await run(["validate", "test/fixtures/manifests/protected", "--format", "github"]);
    expect(github.code).toBe(0);
    expect(github.stdout).toContain(
      "::warning file=test/fixtures/manifests/protected/groups.yaml,line=2,col=1,title=gmsa-gitops protected-account::",
    );
  });

  it("prints a warning's file name escaped, as it does an error's: a newline in the name forges no line", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gmsa-validate-"));
    try {
      const name = "x.yaml\nforged.yaml:1:1: fine.yaml";
      await writeFile(join(dir, name), await readFile(join(FIXTURES, "protected", "groups.yaml")));
      const text = await run(["validate", dir]);
      expect(text.code).toBe(0);
      const lines = text.stdout.split("\n");
      expect(lines).toHaveLength(4);
      expect(lines[0]).toMatch(/^x\.yaml\\nforged\.yaml:1:1: fine\.yaml:2:1: warning: /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("what validate loads", () => {
  /**
   * The modules a `gmsa-gitops ARGS` process loads (file URLs and package paths), reported by a
   * module hook registered before the bin starts.
   */
  async function loadedModules(args: string[]): Promise<{ run: Run; modules: string[] }> {
    const hook =
      'import{registerHooks}from"node:module";const s=[];' +
      "registerHooks({load(u,c,n){s.push(u);return n(u,c)}});" +
      'process.on("exit",()=>process.stderr.write("\\nLOADED\\n"+s.join("\\n")+"\\n"))';
    const run0 = await run(args, ROOT, ["npx", "node", "--import", `data:text/javascript,${encodeURIComponent(hook)}`]);
    const [stderr = "", list = ""] = run0.stderr.split("\nLOADED\n");
    return { run: { ...run0, stderr }, modules: list.split("\n").filter((line) => line !== "") };
  }

  it("loads no LDAP, ssh, Git, HTTP, metrics or logging code, nor the controller's settings table", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gmsa-validate-"));
    try {
      const { run: result, modules } = await loadedModules(["validate", dir]);
      expect(result.code).toBe(0);
      const heavy = modules.filter(
        (url) =>
          /\/node_modules\/(ldapts|ssh2|simple-git|prom-client|pino|pino-pretty|chokidar)\//.test(url) ||
          /\/controller\/(config|directory|hosts|server|metrics|source|reconcile|notify)\/(?!color\.ts$)/.test(url),
      );
      expect(heavy).toEqual([]);
      expect(modules.some((url) => url.endsWith("/controller/manifests/parse.ts"))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("checks a valid repository without loading ajv or the position-keeping YAML parser", async () => {
    const { run: result, modules } = await loadedModules(["validate", join(FIXTURES, "valid")]);
    expect(result.code).toBe(0);
    expect(modules.filter((url) => /\/node_modules\/(ajv|yaml)\//.test(url))).toEqual([]);
  });
});

/** Runs `gmsa-gitops validate DIR` with `env` added, reporting its peak RSS in MiB. */
function measured(dir: string, env: Record<string, string>, user: string[] = []): Promise<Run & { peakMiB: number }> {
  const hook = 'process.on("exit",()=>process.stderr.write("\\nPEAK "+process.resourceUsage().maxRSS/1024+"\\n"))';
  const [file = process.execPath, ...prefix] = [...user, process.execPath];
  const args = [...prefix, "--import", `data:text/javascript,${encodeURIComponent(hook)}`, BIN, "validate", dir];
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("NODE_")));
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...clean, ...env } }, (error, stdout, stderr) => {
      const [ours = "", peak = "0"] = stderr.split("\nPEAK ");
      const code = error ? ((error as { code?: unknown }).code as number) : 0;
      resolve({ code, stdout, stderr: ours, peakMiB: Number(peak) });
    });
  });
}

describe("start-up", () => {
  it("keeps the type-stripped code in a per-user cache: a warm start loads no type stripper", async () => {
    const home = await mkdtemp(join(tmpdir(), "gmsa-cache-"));
    try {
      const env = { XDG_CACHE_HOME: join(home, "cache") };
      const cold = await measured(join(FIXTURES, "valid"), env);
      const warm = await measured(join(FIXTURES, "valid"), env);
      expect(warm).toMatchObject({ code: 0, stderr: "", stdout: cold.stdout });
      expect(cold.stdout).toMatch(/^valid: 4 files,/);
      const cache = join(home, "cache", "gmsa-gitops", "compile-cache");
      expect((await stat(cache)).mode & 0o777).toBe(0o700);
      expect((await readdir(cache, { recursive: true })).length).toBeGreaterThan(20);
      // The stripper's WebAssembly memory alone is 16 MiB.
      expect(cold.peakMiB - warm.peakMiB).toBeGreaterThan(12);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("runs the same without a cache it can write (read-only, no home)", async () => {
    const home = await mkdtemp(join(tmpdir(), "gmsa-cache-"));
    try {
      await chmod(home, 0o555);
      const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
      const readOnly = await measured(join(FIXTURES, "valid"), { XDG_CACHE_HOME: join(home, "cache") }, nobody);
      const noHome = await measured(join(FIXTURES, "valid"), { XDG_CACHE_HOME: "", HOME: "/nonexistent" }, nobody);
      for (const result of [readOnly, noHome]) {
        expect(result).toMatchObject({ code: 0, stderr: "" });
        expect(result.stdout).toMatch(/^valid: 4 files,/);
      }
      expect(await readdir(home)).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe("at scale", () => {
  it("validates 10,000 resources (bench/validate.ts's repository) within 150 MiB peak RSS", async () => {
    const home = await mkdtemp(join(tmpdir(), "gmsa-scale-"));
    try {
      const repo = join(home, "repo");
      await mkdir(repo);
      const bench = join(ROOT, "bench", "validate.ts");
      execFileSync(process.execPath, [bench, "--resources", "10000", "--generate-into", repo]);
      const env = { XDG_CACHE_HOME: join(home, "cache") };
      await measured(join(FIXTURES, "valid"), env); // a warm start, as every run after the first
      const result = await measured(repo, env);
      expect(result).toMatchObject({
        code: 0,
        stdout:
          "valid: 4999 files, 2500 ADGroup, 2499 GroupManagedServiceAccount, 4998 HostBinding, 1 KdsRootKey, 0 ManagedServiceAccount\n",
        stderr: "",
      });
      expect(result.peakMiB).toBeLessThan(150);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 60_000);
});
