import { describe, expect, it } from "vitest";
import { renderStatusPage } from "./page.ts";
import { readStatusView } from "./status-view.ts";

const now = new Date("2026-01-01T12:00:00Z");
const at = now.toISOString();
const res = (name: string, ready: string, stalled = false) => ({
  kind: "ADGroup",
  name,
  conditions: [
    { type: "Ready", status: ready, reason: "R", message: "", lastTransitionTime: at },
    { type: "Stalled", status: stalled ? "True" : "False", reason: "R", message: "", lastTransitionTime: at },
  ],
  lastObservedAt: at,
});

const names = (html: string): string[] =>
  [...html.matchAll(/<tr class="resource [^"]*" data-kind="[^"]*" data-name="([^"]*)"/g)].map((m) => m[1]!);

describe("renderStatusPage", () => {
  const view = readStatusView({
    resources: [
      res("a-ok", "True"),
      res("b-unknown", "Unknown"),
      res("c-stuck", "False", true),
      res("d-failing", "False"),
    ],
  });

  it("lists problems first: Stalled, not Ready, Unknown, then Ready", () => {
    const html = renderStatusPage(view, { filter: {}, now, refreshSeconds: 10 });
    expect(names(html)).toEqual(["c-stuck", "d-failing", "b-unknown", "a-ok"]);
  });

  it("renders at most maxRows rows and says how many more there are", () => {
    const html = renderStatusPage(view, { filter: {}, now, refreshSeconds: 10, maxRows: 2 });
    expect(names(html)).toEqual(["c-stuck", "d-failing"]);
    expect(html).toContain(`<td colspan="7" class="muted" id="more">2 more resources not shown`);
    expect(html).toContain("4 resources: 1 Ready, 3 not Ready (1 Stalled)");
  });

  it("details conditions only for resources that are not Ready", () => {
    const html = renderStatusPage(view, { filter: {}, now, refreshSeconds: 10 });
    expect(html.match(/<details>/g)).toHaveLength(3);
  });
});

describe("who changed AD, on the status page", () => {
  it("puts each drifted attribute's last change (time, DC, version, whose) under it, escaped", () => {
    const view = readStatusView({
      resources: [
        {
          ...res("edited", "True"),
          lastDrift: {
            observedAt: at,
            correctedAt: at,
            changes: [
              {
                attribute: "description",
                from: "edited by hand",
                to: "from Git",
                lastChange: {
                  time: "2026-01-01T11:59:00.000Z",
                  dc: "DC1.company.local<b>",
                  version: 3,
                  byController: false,
                  objectLevel: false,
                },
              },
              {
                attribute: "member",
                from: ["A$"],
                to: [],
                lastChange: {
                  time: "2026-01-01T11:58:00.000Z",
                  dc: null,
                  version: null,
                  byController: null,
                  objectLevel: true,
                },
              },
              { attribute: "path", from: "a", to: "b" },
            ],
          },
        },
      ],
    });
    const html = renderStatusPage(view, { filter: {}, now, refreshSeconds: 10 });
    const notes = [...html.matchAll(/<div class="last-change[^"]*">([^<]*)<\/div>/g)].map((m) => m[1]);
    expect(notes).toEqual([
      "last changed 2026-01-01T11:59:00.000Z on DC1.company.local&lt;b&gt; (version 3), not by gmsa-gitops",
      "object last changed 2026-01-01T11:58:00.000Z",
    ]);
  });
});

describe("a HostBinding without a host transport", () => {
  it("is listed, in the resources and the hosts, as Unknown with its reason and message", () => {
    const message =
      "not observed: no host transport here (--host-transport ssh); a gmsa-gitops agent on WEB1 may reconcile it";
    const view = readStatusView({
      resources: [
        {
          kind: "HostBinding",
          name: "web1-reports",
          conditions: ["Ready", "Stalled", "Reconciling"].map((type) => ({
            type,
            status: "Unknown",
            reason: "NoHostTransport",
            message,
            lastTransitionTime: at,
          })),
          lastObservedAt: null,
          host: { name: "WEB1", reachable: null, retrievable: null },
        },
      ],
    });
    const html = renderStatusPage(view, { filter: {}, now, refreshSeconds: 10 });
    expect(names(html)).toEqual(["web1-reports"]);
    const host = /<tr class="host" data-name="web1-reports">.*?<\/tr>/.exec(html)?.[0] ?? "";
    expect(host).toContain("<td>WEB1</td>");
    expect(host).toContain("Unknown");
    expect(host).toContain("no host transport here (--host-transport ssh)");
    expect(html).toContain("NoHostTransport");
  });
});

describe("drift evidence on the page", () => {
  it("says who changed AD (when, which DC, version, not this controller) and how often drift was corrected", () => {
    const view = readStatusView({
      resources: [
        {
          kind: "GroupManagedServiceAccount",
          name: "gmsa-reports",
          conditions: [
            { type: "Ready", status: "True", reason: "DriftCorrected", message: "", lastTransitionTime: at },
          ],
          lastObservedAt: at,
          lastDrift: {
            drift: ["attribute"],
            observedAt: "2026-01-01T11:55:00Z",
            correctedAt: "2026-01-01T11:55:00Z",
            changes: [
              {
                attribute: "description",
                from: "edited by hand",
                to: "Reports",
                lastChange: {
                  time: "2026-01-01T11:54:00Z",
                  dc: "DC1.company.local",
                  version: 2,
                  byController: false,
                  objectLevel: false,
                },
              },
            ],
          },
          corrections: { count: 3, since: "2026-01-01T09:00:00Z" },
        },
      ],
    });
    const html = renderStatusPage(view, { filter: {}, now, refreshSeconds: 10 });
    const who = /<div class="last-change[^"]*">([^<]*)<\/div>/.exec(html)?.[1] ?? "";
    expect(who).toBe("last changed 2026-01-01T11:54:00Z on DC1.company.local (version 2), not by gmsa-gitops");
    const often = /<div class="how-often muted">(.*?)<\/div>/.exec(html)?.[1] ?? "";
    expect(often.replace(/<[^>]+>/g, "")).toBe("corrected 3 times, first 3h ago");
  });
});
