// In-memory and temp-dir cases: hostile or broken files that cannot live in the fixture tree
// (the formatter rejects invalid YAML, and symlinks or 1 MiB files do not belong in Git).
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadManifests, parseManifests } from "./index.ts";
import type { LoadResult } from "./index.ts";

const encoder = new TextEncoder();

function files(entries: Record<string, string | Uint8Array>): { path: string; content: Uint8Array }[] {
  return Object.entries(entries).map(([path, content]) => ({
    path,
    content: typeof content === "string" ? encoder.encode(content) : content,
  }));
}

function positions(result: LoadResult): string[] {
  if (result.ok) return [];
  return result.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.code}`);
}

const GMSA = (name: string, extra = ""): string =>
  `apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: ${name}
spec:
  accountName: ${name.toUpperCase()}
  dnsHostName: ${name}.company.local
${extra}`;

const BINDING = (name: string, account: string): string =>
  `apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: ${name}
spec:
  host: SERVER1
  account: ${account}
`;

describe("YAML problems", () => {
  it("a syntax error is reported at its line and does not hide another file's errors", () => {
    const result = parseManifests(
      files({
        "a.yaml": "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata:\n  name: [unclosed\n",
        "b.yaml": GMSA("msa-b", "  suspend: maybe\n"),
      }),
    );
    expect(positions(result)).toEqual(["a.yaml:5:1 yaml-syntax", "b.yaml:8:12 wrong-type"]);
  });

  it("a duplicate key is reported at the second occurrence", () => {
    const result = parseManifests(files({ "a.yaml": GMSA("msa-a", "  dnsHostName: again.company.local\n") }));
    expect(positions(result)).toEqual(["a.yaml:8:3 duplicate-key"]);
  });

  // Expanded, this bomb would be 10^12 nodes: finishing at all proves it was not expanded.
  it("an alias bomb is refused at its first alias, quickly and without expanding it", { timeout: 30_000 }, () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array.from({ length: 10 }, () => `*${prev}`).join(", ")}]`);
    }
    const started = performance.now();
    const result = parseManifests(files({ "bomb.yaml": `${levels.join("\n")}\n` }));
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors.every((e) => e.code === "alias-refused")).toBe(true);
    expect(errors[0]).toMatchObject({ file: "bomb.yaml", line: 2, column: 8 });
  });

  it("invalid UTF-8 is reported at the first bad byte", () => {
    const bytes = new Uint8Array([...encoder.encode("kind: ADGroup\nmetadata:\n  name: gr"), 0xc3, 0x28, 0x0a]);
    const result = parseManifests(files({ "latin1.yaml": bytes }));
    expect(positions(result)).toEqual(["latin1.yaml:3:11 invalid-utf8"]);
  });

  it("nesting deeper than any manifest needs is refused", () => {
    const deep = `${"[".repeat(100)}${"]".repeat(100)}\n`;
    const result = parseManifests(files({ "deep.yaml": deep }));
    expect(positions(result)[0]).toMatch(/^deep\.yaml:1:\d+ too-deep$/);
  });

  it("a key named __proto__ is an unknown field, never a prototype", () => {
    const result = parseManifests(files({ "a.yaml": GMSA("msa-a", "  __proto__:\n    polluted: true\n") }));
    expect(positions(result)).toEqual(["a.yaml:8:3 unknown-field"]);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  // Under the size limit, 900 KB of "*a," or "1," was still 300,000 nodes: the position-keeping
  // parser took 640 MB for them (the controller's limit is 1 GiB) and printed 300,000 errors.
  it("a file of more items than any manifest holds is refused once, before either parser builds it", () => {
    for (const body of [
      `a: &a x\nb: [${Array(300_000).fill("*a").join(",")}]\n`,
      `a: [${Array(450_000).fill("1").join(",")}]\n`,
      `a:\n${"  - x\n".repeat(60_000)}`, // plain block YAML, which yaml.ts reads without either parser
    ]) {
      const started = performance.now();
      const result = parseManifests(files({ "wide.yaml": body }));
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(
        result.ok ? [] : result.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.code} | ${e.message}`),
      ).toEqual([
        expect.stringMatching(
          /^wide\.yaml:1:1 file-too-large \| holds [\d,]+ lines and flow items; a manifest file holds at most 50,000: split it into several files$/,
        ),
      ]);
    }
  });

  it("a file over the size limit is reported, not parsed", () => {
    const result = parseManifests(files({ "big.yaml": GMSA("msa-big") }), { maxFileBytes: 10 });
    expect(positions(result)).toEqual(["big.yaml:1:1 file-too-large"]);
  });
});

describe("cascades", () => {
  it("a reference into a file with a syntax error is not reported as dangling", () => {
    const result = parseManifests(
      files({
        "account.yaml": `${GMSA("msa-a")}  description: "unclosed\n`,
        "binding.yaml": BINDING("server1-a", "msa-a"),
      }),
    );
    expect(positions(result)).toEqual(["account.yaml:9:1 yaml-syntax"]);
  });

  it("a reference into a document whose kind could not be read is not reported as dangling", () => {
    const result = parseManifests(
      files({ "account.yaml": "kind: [\n", "binding.yaml": BINDING("server1-a", "msa-a") }),
    );
    expect(positions(result).every((p) => p.startsWith("account.yaml"))).toBe(true);
  });
});

describe("messages", () => {
  it("never echo a huge value whole", () => {
    const result = parseManifests(files({ "a.yaml": GMSA("msa-a", `  description: ${"x".repeat(5000)}\n`) }));
    expect(positions(result)).toEqual(["a.yaml:8:16 too-long"]);
    const message = result.ok ? "" : (result.errors[0]?.message ?? "");
    expect(message.length).toBeLessThan(200);
    expect(message).toContain("(5000 characters)");
  });
});

describe("results", () => {
  it("errors are sorted by file, line and column", () => {
    const result = parseManifests(
      files({
        "b.yaml": GMSA("msa-b", "  bogus: 1\n"),
        "a.yaml": GMSA("msa-a", "  bogus: 1\n  other: 2\n"),
      }),
    );
    expect(positions(result)).toEqual([
      "a.yaml:8:3 unknown-field",
      "a.yaml:9:3 unknown-field",
      "b.yaml:8:3 unknown-field",
    ]);
  });

  it("an empty repository is valid and empty", () => {
    const result = parseManifests(files({ "notes.txt": "hello", ".hidden/x.yaml": "kind: nonsense" }));
    expect(result).toMatchObject({ ok: true, files: 0 });
    expect(result.ok && result.desired.kdsRootKeys.size).toBe(0);
  });

  it("a group nested in itself is a cycle", () => {
    const group = `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: loop
spec:
  accountName: Loop
  members:
    - group: loop
`;
    const result = parseManifests(files({ "g.yaml": group }));
    expect(positions(result)).toEqual(["g.yaml:8:14 group-cycle"]);
  });
});

describe("loading a directory", () => {
  let dir = "";
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = "";
  });

  function repo(): string {
    dir = mkdtempSync(join(tmpdir(), "gmsa-manifests-"));
    mkdirSync(join(dir, "repo", "apps"), { recursive: true });
    mkdirSync(join(dir, "outside"));
    writeFileSync(join(dir, "outside", "secret.yaml"), GMSA("msa-outside"));
    writeFileSync(join(dir, "repo", "apps", "a.yaml"), GMSA("msa-a"));
    return join(dir, "repo");
  }

  it("reports symlinks that lead outside the directory and never follows them", async () => {
    const root = repo();
    symlinkSync(join(dir, "outside", "secret.yaml"), join(root, "apps", "linked.yaml"));
    symlinkSync(join(dir, "outside"), join(root, "outside-folder"));
    symlinkSync(join(dir, "nowhere.yaml"), join(root, "dangling.yaml"));
    const result = await loadManifests(root);
    expect(positions(result)).toEqual([
      "apps/linked.yaml:1:1 symlink-outside",
      "dangling.yaml:1:1 symlink-outside",
      "outside-folder:1:1 symlink-outside",
    ]);
  });

  it("refuses symlinks inside the directory too, and ignores links with other names", async () => {
    const root = repo();
    symlinkSync(join(root, "apps", "a.yaml"), join(root, "copy.yaml"));
    symlinkSync(join(root, "apps"), join(root, "apps-again"));
    writeFileSync(join(root, "README.md"), "readme");
    symlinkSync(join(root, "README.md"), join(root, "README-link.md"));
    const result = await loadManifests(root);
    expect(positions(result)).toEqual(["apps-again:1:1 symlink-refused", "copy.yaml:1:1 symlink-refused"]);
  });

  it("reports a file over 1 MiB without parsing it, and still validates the others", async () => {
    const root = repo();
    writeFileSync(join(root, "huge.yaml"), `# ${"x".repeat(1024 * 1024)}\n`);
    writeFileSync(join(root, "apps", "b.yaml"), GMSA("msa-b", "  typo: 1\n"));
    const result = await loadManifests(root);
    expect(positions(result)).toEqual(["apps/b.yaml:8:3 unknown-field", "huge.yaml:1:1 file-too-large"]);
  });

  it("names that are not UTF-8 are reported as such, not as files that vanished", async () => {
    const root = repo();
    writeFileSync(Buffer.from(`${root}/apps/n\xff\xfe.yaml`, "latin1"), GMSA("msa-n"));
    mkdirSync(Buffer.from(`${root}/d\x9b2J`, "latin1"));
    const result = await loadManifests(root);
    expect(
      result.ok ? [] : result.errors.map((e) => `${e.file}:${e.line}:${e.column} ${e.code} | ${e.message}`),
    ).toEqual([
      "apps/n\ufffd\ufffd.yaml:1:1 suspicious-name | the name is not valid UTF-8 (shown with U+FFFD), so it cannot be read by its name; rename it",
      "d\ufffd2J:1:1 suspicious-name | the name is not valid UTF-8 (shown with U+FFFD), so it cannot be read by its name; rename it",
    ]);
  });

  it("reads the same files as the in-memory entry point", async () => {
    const root = repo();
    const result = await loadManifests(root);
    expect(result.ok && [...result.desired.gmsas.keys()]).toEqual(["msa-a"]);
    expect(result.ok && result.desired.gmsas.get("msa-a")?.source).toEqual({ file: "apps/a.yaml", line: 1, column: 1 });
  });
});
