/**
 * The layout the code is held to, checked from the source text: imports between modules point
 * one way, no reconcile file grows into a second job, DNs are built in one place, and the
 * production tree holds no code that only tests call.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, matchesGlob, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { DRIFT_TYPES, KINDS } from "./vocabulary.ts";

const root = resolve(import.meta.dirname, "..");

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .map((name) => join(dir, name).replaceAll("\\", "/"))
    .filter((path) => path.endsWith(".ts"));
}

/** Production TypeScript: everything under controller/ except tests and the fixtures tests build on. */
const production = filesUnder("controller").filter((path) => !path.endsWith(".test.ts"));

const source = (path: string): string => readFileSync(join(root, path), "utf8");

/** The repository files a module imports (static and dynamic imports with a relative path). */
function localImports(path: string): string[] {
  const out: string[] = [];
  for (const m of source(path).matchAll(/(?:\bfrom|\bimport)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g))
    out.push(relative(root, resolve(dirname(join(root, path)), m[1] ?? "")).replaceAll("\\", "/"));
  return out;
}

/** Modules of words and pure helpers every layer shares; they import nothing. */
const SHARED_LEAVES = ["controller/vocabulary.ts", "controller/redact.ts", "controller/printable.ts"];

/**
 * The layers of docs/architecture.md, top to bottom: imports point down this list, never up.
 * Within the edges, a module reaches another only through its index.ts.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["controller/cli/"],
  ["controller/main.ts"],
  ["controller/clients.ts"],
  ["controller/notify/"],
  ["controller/reconcile/"],
  ["controller/server/", "controller/metrics/"],
  ["controller/source/", "controller/manifests/", "controller/directory/", "controller/hosts/", "controller/config/"],
  SHARED_LEAVES,
];
const EDGES = LAYERS.length - 2;

/** The layer (index in LAYERS) and module (its path prefix) of a file. */
function placeOf(path: string): { layer: number; module: string } {
  for (const [layer, modules] of LAYERS.entries())
    for (const module of modules) if (path === module || path.startsWith(module)) return { layer, module };
  throw new Error(`${path} is in no layer of docs/architecture.md`);
}

describe("module layout", () => {
  it("imports point down the layers of docs/architecture.md, and edges reach each other only through index.ts", () => {
    const wrong = production.flatMap((path) => {
      const from = placeOf(path);
      return localImports(path)
        .filter((target) => target.startsWith("controller/"))
        .flatMap((target) => {
          const to = placeOf(target);
          if (to.module === from.module) return [];
          if (to.layer < from.layer) return [`${path} -> ${target}: up`];
          if (to.layer === EDGES && from.layer === EDGES && !target.endsWith("/index.ts"))
            return [`${path} -> ${target}: another edge's internals`];
          return [];
        });
    });
    expect(wrong).toEqual([]);
  });

  it("directory/ imports nothing outside itself but the shared words: it knows AD, not what the controller does with it", () => {
    const outward = production
      .filter((path) => path.startsWith("controller/directory/"))
      .flatMap((path) => localImports(path).map((target) => `${path} -> ${target}`))
      .filter((edge) => !edge.split(" -> ")[1]?.startsWith("controller/directory/"))
      .filter((edge) => !SHARED_LEAVES.includes(edge.split(" -> ")[1] ?? ""));
    expect(outward).toEqual([]);
  });

  it("the shared leaves (vocabulary, redact) import nothing, so every layer may use them", () => {
    expect(SHARED_LEAVES.flatMap((path) => localImports(path))).toEqual([]);
    expect(SHARED_LEAVES.flatMap((path) => [...source(path).matchAll(/^import /gm)])).toEqual([]);
  });

  it("no file in reconcile/ is over 300 lines", () => {
    const long = production
      .filter((path) => path.startsWith("controller/reconcile/"))
      .map((path) => ({ path, lines: source(path).split("\n").length - 1 }))
      .filter((f) => f.lines > 300);
    expect(long).toEqual([]);
  });

  it("every DN is built by the directory module, which escapes the RDN value", () => {
    // `CN=${value},...` pasted together skips RFC 4514 escaping; childDn (directory/escape.ts) does not.
    const pasted = production
      .filter((path) => path !== "controller/directory/escape.ts")
      .flatMap((path) =>
        source(path)
          .split("\n")
          .flatMap((line, i) => (/\b(?:CN|OU|DC)=\$\{/i.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])),
      );
    expect(pasted).toEqual([]);
  });
});

/** Source text without re-export lines (`export { x } from`, `export * from`), which use nothing. */
const withoutReexports = (text: string): string =>
  text.replace(/^export\s*(?:type\s*)?\{[^}]*\}\s*from\s*"[^"]+";/gm, "").replace(/^export \* from "[^"]+";/gm, "");

describe("production code", () => {
  const texts = new Map(production.map((path) => [path, withoutReexports(source(path))]));
  const occurrences = (pattern: RegExp): number =>
    [...texts.values()].reduce((n, text) => n + (text.match(pattern)?.length ?? 0), 0);

  it("uses every function, constant and class it exports: none is there for tests alone", () => {
    const unused = production.flatMap((path) =>
      [...(texts.get(path) ?? "").matchAll(/^export (?:async )?(?:function|const|class|let)\s+(\w+)/gm)]
        .map((m) => m[1] ?? "")
        .filter((name) => occurrences(new RegExp(`\\b${name}\\b`, "g")) < 2)
        .map((name) => `${path}: ${name}`),
    );
    expect(unused).toEqual([]);
  });

  it("calls every method its classes and interfaces declare", () => {
    // toJSON is called by JSON.stringify. The host-forgetting methods are for the loop to call
    // when a host leaves the repository; until it does, a host's series outlive it.
    const calledElsewhere = new Set(["toJSON", "forgetHost", "forgetHostRetrievable"]);
    const declaration = /^ {2}(?:async |readonly )?(\w+)\((?:[^()]|\([^()]*\))*\)(?:\s*\{|: [^;{=]+(?:;| \{))$/gm;
    const uncalled = production.flatMap((path) =>
      [...(texts.get(path) ?? "").matchAll(declaration)]
        .map((m) => m[1] ?? "")
        .filter((name) => name !== "constructor" && !calledElsewhere.has(name))
        .filter((name) => occurrences(new RegExp(`\\.${name}\\b`, "g")) === 0)
        .map((name) => `${path}: .${name}()`),
    );
    expect(uncalled).toEqual([]);
  });
});

describe("one owner per word", () => {
  // The closed sets of vocabulary.ts (kinds, drift types) are written there once; a second list
  // of the same words drifts from it the day a kind or a drift type is added.
  const sets: Record<string, readonly string[]> = {
    "every kind": KINDS,
    "every host drift type": DRIFT_TYPES.filter((t) => t.startsWith("host-")),
  };

  it("no production file but vocabulary.ts (and the files generated from crds/) lists a whole closed set again", () => {
    const copies = production
      .filter((path) => path !== "controller/vocabulary.ts" && !path.endsWith(".generated.ts"))
      .flatMap((path) =>
        [...source(path).matchAll(/\[[^[\]]*\]/g)].flatMap((m) =>
          Object.entries(sets)
            .filter(([, words]) => words.every((w) => m[0].includes(`"${w}"`)))
            .map(([what]) => `${path}: ${what}`),
        ),
      );
    expect(copies).toEqual([]);
  });
});

describe("comments", () => {
  it("cite documents that are in this repository", () => {
    const walk = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
        const path = dir === "" ? entry.name : `${dir}/${entry.name}`;
        if (["node_modules", ".git", ".work"].includes(entry.name)) return [];
        return entry.isDirectory() ? walk(path) : [path];
      });
    const everyPath = walk("");
    const code = everyPath.filter(
      (path) =>
        /^(controller|test|scripts|bench|deploy)\//.test(path) ||
        path === "eslint.config.js" ||
        path === "vitest.config.ts",
    );
    const exists = (cited: string): boolean =>
      cited.includes("/") ? everyPath.includes(cited) : everyPath.some((path) => path.split("/").pop() === cited);
    const comment = /^\s*(?:\/\/|\/?\*|#|<#)/;
    const dangling = code
      .filter((path) => /\.(ts|js|mjs|ps1|sh|ya?ml)$|Containerfile$/.test(path))
      .flatMap((path) =>
        source(path)
          .split("\n")
          .filter((line) => comment.test(line))
          .flatMap((line) => [...line.matchAll(/[\w./-]*\b[\w-]+\.md\b/g)].map((m) => m[0].replace(/^\.\.?\//, "")))
          .filter((cited) => !exists(cited))
          .map((cited) => `${path}: ${cited}`),
      );
    expect(dangling).toEqual([]);
  });
});

describe("container image", () => {
  it("copies no tests: the Containerfile's COPY sources minus .dockerignore hold no test file", () => {
    const ignore = source(".dockerignore")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
    // Docker's rule: the last pattern that matches decides; "!" re-includes.
    const ignored = (path: string): boolean => {
      let out = false;
      for (const pattern of ignore) {
        const negated = pattern.startsWith("!");
        if (matchesGlob(path, negated ? pattern.slice(1) : pattern)) out = !negated;
      }
      return out;
    };
    const sources = [...source("deploy/Containerfile").matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)].flatMap((m) =>
      (m[1] ?? "").split(/\s+/),
    );
    const copied = sources.flatMap((src) =>
      src.endsWith(".json")
        ? [src]
        : readdirSync(join(root, src), { recursive: true, encoding: "utf8" }).map((name) =>
            join(src, name).replaceAll("\\", "/"),
          ),
    );
    expect(copied.filter((path) => path.startsWith("controller/"))).not.toEqual([]);
    expect(copied.filter((path) => !ignored(path) && /\.test\.ts$/.test(path))).toEqual([]);
  });
});
