import { describe, expect, it } from "vitest";
import { age, filterResources, readStatusView, sourceStale } from "./status-view.ts";

const cond = (type: string, status: string, reason = "R") => ({
  type,
  status,
  reason,
  message: "",
  lastTransitionTime: null,
});
const doc = {
  controller: { source: { url: "u", revision: "abc", lastFetchedAt: null, lastFetchError: null, rejected: null } },
  resources: [
    { kind: "ADGroup", name: "ok", conditions: [cond("Ready", "True"), cond("Stalled", "False")] },
    { kind: "ADGroup", name: "stuck", conditions: [cond("Ready", "False"), cond("Stalled", "True")] },
    { kind: "GroupManagedServiceAccount", name: "drifting", conditions: [cond("Ready", "False")] },
    { kind: "KdsRootKey", name: "default", conditions: [cond("Ready", "Unknown")] },
    { kind: "HostBinding", name: "no-conditions" },
    { name: "no-kind" },
    "not an object",
  ],
};

describe("readStatusView", () => {
  it("reads each resource's state: Stalled over Ready, Unknown without a Ready condition", () => {
    const view = readStatusView(doc);
    expect(view.resources.map((r) => [r.name, r.state])).toEqual([
      ["ok", "Ready"],
      ["stuck", "Stalled"],
      ["drifting", "NotReady"],
      ["default", "Unknown"],
      ["no-conditions", "Unknown"],
    ]);
  });

  it("never throws on a document of another shape", () => {
    for (const junk of [null, 42, "x", [], { controller: 1, resources: {} }])
      expect(readStatusView(junk).resources).toEqual([]);
  });

  it("reads the optional last drift and host when present", () => {
    const view = readStatusView({
      resources: [
        {
          kind: "HostBinding",
          name: "b",
          lastDrift: {
            changes: [{ attribute: "description", from: "a", to: ["b", "c"] }],
            observedAt: "t1",
            correctedAt: null,
          },
          host: { name: "WEB1", reachable: true, retrievable: "pending" },
        },
      ],
    });
    expect(view.resources[0]?.lastDrift).toEqual({
      changes: [{ attribute: "description", from: "a", to: ["b", "c"], lastChange: null }],
      observedAt: "t1",
      correctedAt: null,
    });
    expect(view.resources[0]?.host).toEqual({ name: "WEB1", reachable: true, retrievable: "pending" });
  });
});

describe("filterResources", () => {
  const resources = readStatusView(doc).resources;
  it("keeps one kind, matched without regard to case", () => {
    expect(filterResources(resources, { kind: "adgroup" }).map((r) => r.name)).toEqual(["ok", "stuck"]);
  });
  it("keeps everything not Ready (Stalled, NotReady, Unknown) with notReady", () => {
    expect(filterResources(resources, { notReady: true }).map((r) => r.name)).toEqual([
      "stuck",
      "drifting",
      "default",
      "no-conditions",
    ]);
  });
});

describe("sourceStale", () => {
  it("is true with a refused revision or a failed fetch", () => {
    const c = readStatusView(doc).controller;
    expect(sourceStale(c)).toBe(false);
    expect(sourceStale({ ...c, source: { ...c.source, lastFetchError: "boom" } })).toBe(true);
  });
});

describe("age", () => {
  const now = new Date("2026-01-01T12:00:00Z");
  it.each([
    ["2026-01-01T11:59:15Z", "45s"],
    ["2026-01-01T11:48:00Z", "12m"],
    ["2026-01-01T07:00:00Z", "5h"],
    ["2025-12-29T12:00:00Z", "3d"],
    ["2026-01-01T12:00:30Z", "0s"],
    ["not a time", "-"],
    [null, "-"],
  ])("%s is %s", (iso, expected) => {
    expect(age(iso, now)).toBe(expected);
  });
});
