// A folder the gMSA lacks rights on, as the host side of a reconcile reports it: its own drift
// type (the drift_type metric label), and a status whose condition and changes name the folder
// and the rights it lacks. The host is a recording fake (HostDriver); the host script itself is
// tested against real pwsh in test/hosts-file-access.test.ts.
import { describe, expect, it } from "vitest";
import type { BindingRequest, BindingResult, HostRequest } from "../hosts/index.ts";
import { desiredOf, gmsa, hostBinding, recordingHost } from "../../test/support/reconcile.ts";
import { driftTypesByKind } from "../metrics/recorder.ts";
import { DRIFT_TYPES } from "../vocabulary.ts";
import { hostMemory, reconcileHosts } from "./hosts.ts";
import { summarize } from "./status.ts";

const DATA = "D:\\Scripts\\MyScript\\Data";

const binding = hostBinding("server1-service1", {
  host: "SERVER1",
  account: "msa-service1",
  fileSystemAccess: [
    { path: DATA, rights: "Modify", appliesTo: "ThisFolderSubfoldersAndFiles", createIfMissing: false },
  ],
});

/** A host that answers with one file-access item for the binding. */
const answer = (b: BindingRequest): Omit<BindingResult, "name" | "account"> => ({
  retrievable: true,
  install: "NotNeeded",
  items: [
    { item: "retrievable", name: b.account, observed: true, desired: true, action: "none" },
    {
      item: "fileAccess",
      name: DATA,
      observed: "ReadAndExecute (this folder, subfolders and files)",
      desired: "Modify (this folder, subfolders and files)",
      action: "would-change",
      reason: "MissingRights",
      missing: "Write, Delete (this folder, subfolders, files)",
    },
  ],
});

describe("file access drift", () => {
  it("is its own drift type, and the condition and the change name the folder and the missing rights", async () => {
    expect(DRIFT_TYPES).toContain("host-file-access");
    expect(driftTypesByKind.HostBinding).toContain("host-file-access");

    const requests: HostRequest[] = [];
    const desired = desiredOf(gmsa("msa-service1", { accountName: "MSA-service1" }), binding);
    const now = new Date("2026-11-30T08:00:00Z");
    const { bindings } = await reconcileHosts(
      desired,
      undefined,
      undefined,
      "observe",
      "enforce",
      {
        driver: recordingHost(requests, answer),
        domain: "COMPANY",
        concurrency: 1,
        target: (host) => ({ host, address: host }),
      },
      hostMemory(),
      { now },
    );
    expect(requests[0]?.bindings[0]?.fileSystemAccess).toEqual(binding.spec.fileSystemAccess);
    expect(requests[0]?.bindings[0]?.fileSystemAccessPolicy).toBe("additive");

    const plan = bindings[0]!.plan;
    expect([...plan.drift]).toEqual(["host-file-access"]);
    expect(plan.changes).toEqual([
      {
        attribute: `fileAccess ${DATA}`,
        from: "ReadAndExecute (this folder, subfolders and files)",
        to: "Modify (this folder, subfolders and files); missing Write, Delete (this folder, subfolders, files)",
      },
    ]);
    const status = summarize({ entry: plan, attempts: [], executed: false, revision: "abc", now }, undefined);
    const drift = status.conditions.find((c) => c.type === "DriftDetected");
    expect(drift?.message).toBe(
      `host-file-access: fileAccess ${DATA}: missing Write, Delete (this folder, subfolders, files)`,
    );
  });
});
