// KDS root keys as the anchors have them (issue 13 item 8), against a real Samba AD DC and
// checked through ldapsearch: an explicit effective time, several keys by id, and deletion only
// for a key whose resource said deletionPolicy: Delete.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dateToFiletime, filetimeToDate } from "../controller/directory/index.ts";
import { ldifText as text } from "./harness/ldif.ts";
import { startDc } from "./harness/samba.ts";
import type { Dc } from "./harness/samba.ts";
import { dcCommand as cli } from "./support/cli.ts";

const HEADER = "apiVersion: gmsa-gitops.io/v1alpha1\nkind: KdsRootKey\n";

interface Key {
  readonly id: string;
  readonly useStartTime: string;
  readonly adminDisplayName: string | undefined;
  readonly adminDescription: string | undefined;
}

describe("KDS root keys against Samba", () => {
  let dc: Dc;
  let provisionKey: string;
  const temp: string[] = [];
  const container = (): string => `CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,${dc.configDn}`;
  /** Every root key, read by ldapsearch (the independent path). */
  const keys = async (): Promise<Key[]> => {
    const out = await dc.ldap("ldapsearch", [
      "-b",
      container(),
      "-s",
      "one",
      "(objectClass=msKds-ProvRootKey)",
      "cn",
      "msKds-UseStartTime",
      "adminDisplayName",
      "adminDescription",
    ]);
    return out
      .split(/\n\n/)
      .filter((entry) => /^dn: /m.test(entry))
      .map((entry) => ({
        id: text(entry, "cn")[0]!,
        useStartTime: filetimeToDate(text(entry, "msKds-UseStartTime")[0]!)!.toISOString(),
        adminDisplayName: text(entry, "adminDisplayName")[0],
        adminDescription: text(entry, "adminDescription")[0],
      }))
      .sort((a, b) => a.useStartTime.localeCompare(b.useStartTime));
  };
  function repo(...docs: string[]): string {
    const dir = mkdtempSync(join(tmpdir(), "gmsa-kds-"));
    temp.push(dir);
    writeFileSync(join(dir, "keys.yaml"), docs.map((d) => `${HEADER}${d}`).join("---\n"));
    return dir;
  }

  beforeAll(async () => {
    dc = await startDc();
    // Samba >= 4.21 makes one key at provision, effective at once: a key this repository never made.
    const existing = await keys();
    expect(existing).toHaveLength(1);
    provisionKey = existing[0]!.id;
  });
  afterAll(async () => {
    await dc?.stop();
    for (const d of temp) rmSync(d, { recursive: true, force: true });
  });

  it("an effectiveTime makes a key of its own starting then, a keyId names the provision key, and a second plan has nothing to do", async () => {
    const december = "2026-12-24T08:30:00Z";
    const dir = repo(
      "metadata: { name: default }\nspec: {}\n",
      `metadata: { name: december }\nspec: { effectiveTime: "${december}" }\n`,
      `metadata: { name: provision }\nspec: { keyId: ${provisionKey.toUpperCase()} }\n`,
    );
    const plan = await cli(dc, "plan", dir);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('+ msKds-UseStartTime: "2026-12-24T08:30:00.000Z"');
    expect((await cli(dc, "apply", dir)).code).toBe(0);

    const after = await keys();
    expect(after).toHaveLength(2);
    const made = after.find((k) => k.id !== provisionKey)!;
    // Add-KdsRootKey -EffectiveTime writes the time itself as msKds-UseStartTime.
    expect(made.useStartTime).toBe(new Date(december).toISOString());
    expect(made.adminDisplayName).toBe("gmsa-gitops:KdsRootKey/december");
    expect(made.adminDescription).toBeUndefined();
    expect(dateToFiletime(new Date(made.useStartTime))).toBe(dateToFiletime(new Date(december)));
    // Nothing to do; DCs use the scheduled key one key cycle (10 h 5 min) after its start time.
    const again = await cli(dc, "plan", dir);
    expect(again.stdout).toContain("# the KDS root key becomes effective at 2026-12-24T18:35:00.000Z");
    expect(again.stdout).toContain("Plan: 0 to create, 0 to update, 0 to delete.");
    expect(again.code).toBe(0);

    // The repository drops both: apply --prune deletes neither (Retain, and the provision key was never ours).
    const pruned = await cli(dc, "apply", repo("metadata: { name: default }\nspec: {}\n"), "--prune");
    expect(pruned.code).toBe(0);
    expect((await keys()).map((k) => k.id).sort()).toEqual(after.map((k) => k.id).sort());
  });

  it("deletionPolicy: Delete: once the resource leaves Git the key goes with --prune, and only with it", async () => {
    const before = new Set((await keys()).map((k) => k.id));
    const effective = new Date(Date.now() - 11 * 3_600_000).toISOString().replace(/\.\d+Z$/, "Z");
    const dir = repo(
      "metadata: { name: default }\nspec: {}\n",
      `metadata: { name: lab }\nspec: { effectiveTime: "${effective}", deletionPolicy: Delete }\n`,
    );
    expect((await cli(dc, "apply", dir)).code).toBe(0);
    const lab = (await keys()).find((k) => !before.has(k.id))!;
    expect(lab.adminDisplayName).toBe("gmsa-gitops:KdsRootKey/lab");
    expect(lab.adminDescription).toMatch(/^gmsa-gitops:v2:/);
    expect((await cli(dc, "plan", dir)).code).toBe(0);

    const without = repo("metadata: { name: default }\nspec: {}\n");
    const kept = await cli(dc, "apply", without);
    expect(kept.code).toBe(0);
    expect((await keys()).some((k) => k.id === lab.id)).toBe(true);
    const plan = await cli(dc, "plan", without, "--prune");
    expect(plan.stdout).toContain(`- KdsRootKey/lab  (CN=${lab.id},`);
    expect((await cli(dc, "apply", without, "--prune")).code).toBe(0);
    expect((await keys()).map((k) => k.id).sort()).toEqual([...before].sort());
  });
});
