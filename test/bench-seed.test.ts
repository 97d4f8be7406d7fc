// The benches' bulk seed (bench/lib/seed.ts): groups, their members and gMSAs written by ldapadd
// and ldapmodify, with the ownership markers the controller would write, so that the controller's
// plan against the seeded DC is a no-op. Against a real Samba DC, with the CLI's own `plan`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLdapTool } from "../bench/lib/ldap-tools.ts";
import type { RepoShape } from "../bench/lib/repo.ts";
import { computersLdif, loadRepo, writeRepo } from "../bench/lib/repo.ts";
import { ownerFromFlags, seedRound } from "../bench/lib/seed.ts";
import type { Dc } from "./harness/samba.ts";
import { startDc } from "./harness/samba.ts";
import { dcCommand, dcFlags } from "./support/cli.ts";

describe("bench seed by LDIF", () => {
  let dc: Dc;
  let work: string;
  const shape: RepoShape = { computers: 6, groups: 3, membersPerGroup: 2, gmsas: 10, spnEvery: 3 };

  beforeAll(async () => {
    dc = await startDc();
    work = mkdtempSync(join(tmpdir(), "bench-seed-"));
    const file = join(work, "computers.ldif");
    writeFileSync(file, computersLdif(shape, dc.baseDn, dc.realm.toLowerCase()));
    await runLdapTool(dc, "ldapadd", ["-f", file], "discard");
  });
  afterAll(async () => {
    await dc?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("seeds groups with members, then gMSAs, marked as the controller marks them: plan finds nothing to do", async () => {
    const repo = join(work, "repo");
    writeRepo(repo, shape, [{ prefix: "bsd", count: shape.gmsas }], dc.realm.toLowerCase());
    const owner = ownerFromFlags(dcFlags(dc));
    const groups = await seedRound(dc, await loadRepo(join(repo, "groups")), owner, work);
    expect(groups).toMatchObject({ adds: shape.groups, memberChanges: shape.groups });
    const gmsas = await seedRound(dc, await loadRepo(repo), owner, work);
    expect(gmsas).toMatchObject({ adds: shape.gmsas, memberChanges: 0 });

    const plan = await dcCommand(dc, "plan", repo);
    expect(plan.stderr).toBe("");
    expect(plan.code, plan.stdout).toBe(0);
    // A second round has nothing left to create.
    expect((await seedRound(dc, await loadRepo(repo), owner, work)).adds).toBe(0);
  });

  it("refuses a round that creates a group and a gMSA naming it (the gMSA would carry a placeholder SID)", async () => {
    const repo = join(work, "mixed");
    mkdirSync(repo);
    // One more group than seeded: the gMSAs of group 3 name a group the same round creates.
    writeRepo(repo, { ...shape, groups: 4 }, [{ prefix: "bsm", count: 4 }], dc.realm.toLowerCase());
    const owner = ownerFromFlags(dcFlags(dc));
    await expect(seedRound(dc, await loadRepo(repo), owner, work)).rejects.toThrow(/round of their own/);
  });
});
