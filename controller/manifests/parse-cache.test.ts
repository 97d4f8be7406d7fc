// A parse that reuses the files of the last revision must give exactly what parsing every file
// gives: the same desired state and the same errors, in the same order, over a random sequence
// of edits (files becoming invalid and valid again, renamed, duplicate names across files).
import { describe, expect, it } from "vitest";
import { ParseCache, parseManifests } from "./parse.ts";

const group = (name: string, description: string): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: ${name}
spec:
  accountName: ${name.toUpperCase()}
  description: ${description}
`;

const gmsa = (name: string, principal: string): string => `apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: ${name}
spec:
  accountName: gMSA-${name}
  dnsHostName: ${name}.company.local
  principalsAllowedToRetrieveManagedPassword:
    - group: ${principal}
`;

/** Content a file may take: valid, invalid in several ways, or naming what another file names. */
const variants = (i: number, r: () => number): string[] => [
  group(`g${i}`, `v${Math.floor(r() * 1000)}`),
  `${group(`g${i}`, "two")}---\n${gmsa(`a${i}`, `g${i}`)}`,
  group("shared", `from ${i}`), // the same name in several files: a duplicate
  gmsa(`a${i}`, "g-missing"), // a dangling reference
  "apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: {name: [\n", // broken YAML
  group(`g${i}`, "x").replace("accountName", "acountName"), // schema error
  "kind: Nope\n",
  group(`123`, "digits").replace("accountName: 123", "accountName: '123'"),
];

/** A small deterministic generator, so a failure repeats. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const bytes = (files: Map<string, string>) =>
  [...files].map(([path, text]) => ({ path, content: new TextEncoder().encode(text) }));

describe("parsing with the last revision's files kept", () => {
  it("gives the same desired state and errors as a full parse over 200 random edits", () => {
    const r = random(12);
    const files = new Map<string, string>();
    for (let i = 0; i < 8; i++) files.set(`apps/f${i}.yaml`, group(`g${i}`, "start"));
    const cache = new ParseCache();
    let reused = 0;
    for (let step = 0; step < 200; step++) {
      const names = [...files.keys()];
      const pick = names[Math.floor(r() * names.length)]!;
      const op = r();
      if (step % 6 === 0) {
        // A repair commit: every file valid again (unique names), so valid revisions recur.
        [...files.keys()].forEach((path, i) => files.set(path, group(`fixed${i}`, `step ${step}`)));
      } else if (op < 0.6) {
        // Mostly valid edits, so that valid and invalid revisions alternate.
        const options = variants(step, r);
        files.set(pick, options[r() < 0.7 ? Math.floor(r() * 2) : Math.floor(r() * options.length)]!);
      } else if (op < 0.75) {
        // Renamed: the same content under another path.
        const text = files.get(pick)!;
        files.delete(pick);
        files.set(`moved/s${step}.yaml`, text);
      } else if (op < 0.85 && files.size > 2) files.delete(pick);
      else files.set(`apps/new${step}.yaml`, group(`n${step}`, "new"));

      const full = parseManifests(bytes(files));
      const cached = parseManifests(bytes(files), {}, [], cache);
      expect(cached, `step ${step}`).toEqual(full);
      if (full.ok) reused++;
    }
    // The sequence went through valid and invalid revisions both.
    expect(reused).toBeGreaterThan(10);
    expect(reused).toBeLessThan(190);
  });

  it("a file that becomes invalid and valid again gives its errors, then its resources", () => {
    const cache = new ParseCache();
    const files = new Map([
      ["a.yaml", group("alpha", "one")],
      ["b.yaml", gmsa("app", "alpha")],
    ]);
    expect(parseManifests(bytes(files), {}, [], cache).ok).toBe(true);
    files.set("a.yaml", group("alpha", "one").replace("accountName", "acountName"));
    const bad = parseManifests(bytes(files), {}, [], cache);
    expect(bad).toEqual(parseManifests(bytes(files)));
    expect(bad.ok).toBe(false);
    files.set("a.yaml", group("alpha", "one"));
    const good = parseManifests(bytes(files), {}, [], cache);
    expect(good).toEqual(parseManifests(bytes(files)));
    expect(good.ok && [...good.desired.groups.keys()]).toEqual(["alpha"]);
  });

  it("a duplicate name is reported at the later file, whichever file was parsed before", () => {
    const cache = new ParseCache();
    const files = new Map([["b.yaml", group("shared", "b")]]);
    parseManifests(bytes(files), {}, [], cache);
    files.set("a.yaml", group("shared", "a"));
    const result = parseManifests(bytes(files), {}, [], cache);
    expect(result).toEqual(parseManifests(bytes(files)));
    expect(!result.ok && result.errors.map((e) => `${e.file}:${e.line} ${e.code}`)).toEqual([
      "b.yaml:4 duplicate-name",
    ]);
  });
});
