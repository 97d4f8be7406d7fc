// Seeding a DC with a repository's objects in bulk, ownership markers included, so that the
// controller's first cycle finds everything in sync. The controller creates an object with three
// writes (add, read the objectGUID, write the marker, an HMAC over that GUID): about 60–600 ms per
// object on a loaded machine. Here apply runs against a writer that records LDIF instead
// (so the entries carry exactly the attributes and bytes apply would send), then: concurrent
// ldapadd of the adds, one ldapmodify of the group members, one ldapsearch for the new objects'
// GUIDs, and ldapmodify of their markers, computed with the controller's own OwnershipKey.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../controller/config/index.ts";
import type { OwnershipKey } from "../../controller/directory/index.ts";
import { connectDirectory, guidToString } from "../../controller/directory/index.ts";
import type { DesiredState } from "../../controller/manifests/index.ts";
import { applyPlan } from "../../controller/reconcile/apply.ts";
import { observeDirectory } from "../../controller/reconcile/observe.ts";
import { planDirectory } from "../../controller/reconcile/plan.ts";
import type { Dc } from "../../test/harness/samba.ts";
import { ldifReplaceRecord, recordingWriter } from "./ldif.ts";
import { parseLdif, runLdapTool } from "./ldap-tools.ts";

/** What one round of seeding wrote, and how long its steps took (milliseconds). */
export interface SeedRound {
  readonly adds: number;
  readonly memberChanges: number;
  readonly planMs: number;
  readonly addMs: number;
  readonly markMs: number;
}

/** The actions a seed round may record: creations and the members of the groups it creates. */
const SEEDABLE = new Set(["create-gmsa", "create-group", "add-members"]);

/**
 * Creates in the DC what `desired` lacks, in one round: the plan of `desired` against the DC must
 * hold creations only, and must not create a gMSA and a group in the same round (apply would give
 * the gMSA the group's SID, which only the DC knows after the add): seed the groups' desired
 * state first, then the whole. `writers` ldapadd processes run at once; `work` receives the LDIF.
 */
export async function seedRound(
  dc: Dc,
  desired: DesiredState,
  owner: OwnershipKey,
  work: string,
  writers = 2,
): Promise<SeedRound> {
  const t0 = performance.now();
  const dir = await connectDirectory({
    url: dc.url,
    caFile: dc.caFile,
    bindDn: dc.adminDn,
    bindPassword: dc.adminPassword,
  });
  const recorder = recordingWriter();
  try {
    const rootDse = await dir.rootDse();
    const observed = await observeDirectory(desired, dir, {
      baseDn: rootDse.defaultNamingContext,
      configDn: rootDse.configurationNamingContext,
    });
    const plan = planDirectory(
      desired,
      observed,
      { mode: "enforce", prune: false, deletionBudget: 0, adopt: false, owner },
      new Date(),
    );
    const types = new Set(plan.resources.flatMap((r) => r.actions.map((a) => a.type)));
    const other = [...types].filter((t) => !SEEDABLE.has(t));
    assert.deepEqual(other, [], "the seed plan holds actions other than creations");
    assert.ok(
      !(types.has("create-group") && types.has("create-gmsa")),
      "seed the groups in a round of their own: a gMSA created with a group would carry a placeholder SID",
    );
    const blocked = plan.resources.filter((r) => r.blocker !== undefined);
    assert.equal(blocked.length, 0, `the seed plan has ${blocked.length} blocked resource(s)`);
    const applied = await applyPlan(plan, recorder.writer, { now: new Date(), owner });
    const failed = applied.results.filter((r) => r.status !== "applied");
    assert.equal(failed.length, 0, `recording the seed: ${failed[0]?.message ?? ""}`);
  } finally {
    await dir.close();
  }
  const t1 = performance.now();
  if (recorder.dns.length === 0) return { adds: 0, memberChanges: 0, planMs: t1 - t0, addMs: 0, markMs: 0 };

  const run = (tool: "ldapadd" | "ldapmodify", name: string, text: string): Promise<unknown> => {
    const file = join(work, name);
    writeFileSync(file, text);
    return runLdapTool(dc, tool, ["-f", file], "discard");
  };
  await Promise.all(recorder.split(writers).map((text, k) => run("ldapadd", `seed-add-${k}.ldif`, text)));
  const members = recorder.memberChanges();
  if (members !== "") await run("ldapmodify", "seed-members.ldif", members);
  const t2 = performance.now();

  // The objects just added are those without a marker among the kinds the round created.
  const { stdout } = await runLdapTool(
    dc,
    "ldapsearch",
    ["-E", "pr=1000/noprompt", "-b", dc.baseDn, "-s", "sub"].concat([
      "(&(|(objectClass=group)(objectClass=msDS-GroupManagedServiceAccount))(!(adminDescription=*)))",
      "objectGUID",
    ]),
    "capture",
  );
  const found = parseLdif(stdout);
  const marks: string[] = [];
  for (const dn of recorder.dns) {
    const hex = found.get(dn.toLowerCase())?.get("objectguid")?.[0];
    assert.ok(hex !== undefined, `seeded object ${dn} not found by ldapsearch`);
    marks.push(ldifReplaceRecord(dn, "adminDescription", owner.markerFor(guidToString(Buffer.from(hex, "hex")))));
  }
  await Promise.all(
    Array.from({ length: writers }, (_, k) =>
      run("ldapmodify", `seed-marks-${k}.ldif`, marks.filter((_m, i) => i % writers === k).join("")),
    ),
  );
  return {
    adds: recorder.dns.length,
    memberChanges: members === "" ? 0 : members.split("\n\n").length - 1,
    planMs: t1 - t0,
    addMs: t2 - t1,
    markMs: performance.now() - t2,
  };
}

/** The ownership key `run`/`plan` derive from these flags (`--name value` pairs): the seed's markers must verify with it. */
export function ownerFromFlags(flags: readonly string[]): OwnershipKey {
  const parsed: Record<string, string> = {};
  for (let i = 0; i < flags.length; i += 2) parsed[flags[i]!.slice(2)] = flags[i + 1]!;
  const config = loadConfig({ flags: parsed, env: {}, require: { directory: true } });
  if (!config.ok) throw new Error(`flags: ${config.errors.map((e) => `${e.source} ${e.message}`).join("; ")}`);
  return config.config.policy.owner;
}
