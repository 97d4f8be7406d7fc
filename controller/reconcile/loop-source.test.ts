/**
 * What the loop says when its source fails or a revision is rejected: "the last good revision
 * stays in force" only once there is one, and the cause of a failed fetch in the log.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createMetricsRecorder } from "../metrics/index.ts";
import { SourceError } from "../source/index.ts";
import type { Snapshot } from "../source/index.ts";
import { OWNER } from "../../test/support/reconcile.ts";
import { Controller } from "./loop.ts";

interface Line {
  level: number;
  msg: string;
  err?: string;
}

const invalid = new TextEncoder().encode("apiVersion: gmsa-gitops.io/v1alpha1\nkind: ADGroup\nmetadata: {}\n");

function controllerWith(sync: () => Promise<Snapshot>) {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString("utf8").split("\n")) if (text.trim()) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  const controller = new Controller({
    source: { url: "https://git.company.local/ad/gmsa.git", sync },
    metrics: createMetricsRecorder(),
    logger: pino({ level: "info" }, stream),
    policy: { mode: "enforce", prune: false, deletionBudget: 5, adopt: false, owner: OWNER },
    intervalMs: 60_000,
    openDirectory: () => Promise.reject(new Error("no directory in this test")),
  });
  return { controller, lines, warnings: () => lines.filter((l) => l.level === 40) };
}

const cause =
  "cannot list https://git.company.local/ad/gmsa.git: fatal: unable to access 'https://git.company.local/ad/gmsa.git/': Could not resolve host: git.company.local";

describe("source failures in the log", () => {
  it("before any revision was loaded, a failed fetch says none is in force and keeps git's cause", async () => {
    const { controller, warnings } = controllerWith(() =>
      Promise.reject(new SourceError({ outcome: "transient", step: "fetch", reason: "FetchFailed", message: cause })),
    );
    await controller.reconcile();

    const [warning] = warnings();
    expect(warning?.msg).toBe("source sync failed; no revision is in force yet");
    expect(warning?.err).toContain("Could not resolve host: git.company.local");
    expect(controller.status().controller.source.lastFetchError).toContain("Could not resolve host");
  });

  it("an invalid first revision does not claim a last good revision", async () => {
    const { controller, warnings } = controllerWith(() =>
      Promise.resolve({
        revision: "a".repeat(40),
        files: [{ path: "bad.yaml", content: invalid }],
        fetchedAt: new Date(),
      }),
    );
    await controller.reconcile();

    expect(warnings().map((w) => w.msg)).toContain("revision rejected: invalid manifests; no revision is in force yet");
    expect(warnings().some((w) => w.msg.includes("last good revision"))).toBe(false);
  });

  it("once a revision is in force, a failed fetch says it stays in force", async () => {
    let fail = false;
    const { controller, warnings } = controllerWith(() =>
      fail
        ? Promise.reject(
            new SourceError({ outcome: "transient", step: "fetch", reason: "FetchFailed", message: cause }),
          )
        : Promise.resolve({ revision: "b".repeat(40), files: [], fetchedAt: new Date() }),
    );
    await controller.reconcile();
    fail = true;
    await controller.reconcile();

    expect(warnings().map((w) => w.msg)).toContain("source sync failed; the last good revision stays in force");
  });
});
