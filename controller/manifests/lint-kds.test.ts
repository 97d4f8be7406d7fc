// Several KdsRootKeys in one repository (issue 13 item 8): which key each means must be clear.
import { describe, expect, it } from "vitest";
import { parseManifests } from "./index.ts";

const KEY = (name: string, spec: string): string =>
  `apiVersion: gmsa-gitops.io/v1alpha1\nkind: KdsRootKey\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

function check(text: string): string[] {
  const result = parseManifests([{ path: "keys.yaml", content: new TextEncoder().encode(text) }]);
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.column} ${e.code} ${e.path}: ${e.message}`);
}

describe("KdsRootKey lint", () => {
  it("a repository holds any-key, keyId and effectiveTime keys side by side", () => {
    const result = parseManifests([
      {
        path: "keys.yaml",
        content: new TextEncoder().encode(
          [
            KEY("default", "  effectiveImmediately: false\n"),
            KEY("provision", "  keyId: c4f02fdd-8a2d-aef2-faf1-373506b6b860\n  deletionPolicy: Delete\n"),
            KEY("december", "  effectiveTime: 2026-12-01T08:00:00Z\n"),
          ].join("---\n"),
        ),
      },
    ]);
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("\n"));
    expect([...result.desired.kdsRootKeys.keys()]).toEqual(["default", "provision", "december"]);
    expect(result.desired.kdsRootKeys.get("default")?.spec.deletionPolicy).toBe("Retain");
  });

  it("a key named twice, contradictory fields and an impossible date are errors at their line", () => {
    const errors = check(
      [
        KEY("a", "  keyId: c4f02fdd-8a2d-aef2-faf1-373506b6b860\n"), // lines 1-6
        KEY("b", "  keyId: C4F02FDD-8A2D-AEF2-FAF1-373506B6B860\n"), // 8-13
        KEY("c", "  keyId: 0e1a8d9c-2b44-4f1e-9a51-3c2d5e6f7a80\n  effectiveTime: 2026-12-01T08:00:00Z\n"), // 15-21
        KEY("d", "  effectiveTime: 2026-12-01T08:00:00Z\n  effectiveImmediately: true\n"), // 23-29
        KEY("e", "  effectiveTime: 2026-02-30T08:00:00Z\n"), // 31-36
        KEY("f", "  effectiveTime: tomorrow\n"), // 38-43
      ].join("---\n"),
    );
    expect(errors.map((e) => e.slice(0, e.indexOf(": ")))).toEqual([
      "13:10 duplicate-kds-root-key spec.keyId",
      "20:10 conflicting-fields spec.keyId",
      "28:18 conflicting-fields spec.effectiveTime",
      "36:18 invalid-format spec.effectiveTime",
      "43:18 invalid-format spec.effectiveTime",
    ]);
    expect(errors[0]).toContain('KdsRootKey "a" already names key');
    expect(errors[0]).toContain("keys.yaml:6");
    expect(errors[3]).toContain("is not a real date and time");
  });

  it("two resources asking for any effective key are one too many", () => {
    const errors = check([KEY("a", "  effectiveImmediately: true\n"), KEY("b", "  suspend: false\n")].join("---\n"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^9:7 duplicate-kds-root-key kind: .*already asks for any effective key \(keys\.yaml:2\)/,
    );
  });
});
