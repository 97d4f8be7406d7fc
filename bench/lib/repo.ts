// A generated repository of manifests at benchmark scale: N ADGroups of computers, and gMSAs
// each allowed through one of the groups, some with SPNs. One file per "application" (a group
// and the accounts it serves), the way a team would lay a large repository out.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DesiredState } from "../../controller/manifests/index.ts";
import { API_VERSION, loadManifests } from "../../controller/manifests/index.ts";
import { ldifAddRecord } from "./ldif.ts";

/** The size and shape of a generated repository. */
export interface RepoShape {
  /** Computer accounts the groups draw members from (created in AD, never managed). */
  readonly computers: number;
  readonly groups: number;
  /** Computer members per group. */
  readonly membersPerGroup: number;
  readonly gmsas: number;
  /** Every n-th gMSA has two SPNs. */
  readonly spnEvery: number;
}

/**
 * The value of flag `--name` (parseArgs' text) as a positive integer; throws "--name must be a
 * positive integer" otherwise.
 */
export function countFlag<K extends string>(flags: { readonly [k in K]?: string | undefined }, name: K): number {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/** The parseArgs options --gmsas, --groups and --computers, with a bench's own defaults. */
export function shapeOptions(defaults: {
  readonly gmsas: number;
  readonly groups: number;
  readonly computers: number;
}) {
  return {
    gmsas: { type: "string", default: String(defaults.gmsas) },
    groups: { type: "string", default: String(defaults.groups) },
    computers: { type: "string", default: String(defaults.computers) },
  } as const;
}

/**
 * The shape the benches' --gmsas, --groups and --computers flags give (each a positive integer,
 * else a thrown error naming the flag): three computer members per group, every third gMSA with SPNs.
 */
export function shapeFromFlags(flags: {
  readonly gmsas?: string | undefined;
  readonly groups?: string | undefined;
  readonly computers?: string | undefined;
}): RepoShape {
  return {
    computers: countFlag(flags, "computers"),
    groups: countFlag(flags, "groups"),
    membersPerGroup: 3,
    gmsas: countFlag(flags, "gmsas"),
    spnEvery: 3,
  };
}

const pad = (n: number, width: number): string => String(n).padStart(width, "0");

/** sAMAccountName (without '$') of computer i: at most 15 characters. */
export const computerName = (i: number): string => `BENCH-PC${pad(i, 4)}`;
/** sAMAccountName of group i. */
export const groupAccount = (i: number): string => `Bench-Hosts-${pad(i, 4)}`;
/** metadata.name of group i. */
export const groupResource = (i: number): string => groupAccount(i).toLowerCase();
/** sAMAccountName (without '$') of gMSA i in a batch: "bsv00042" for the seed, another prefix for later batches. */
export const gmsaAccount = (prefix: string, i: number): string => `${prefix}${pad(i, 5)}`;

function groupYaml(i: number, shape: RepoShape): string {
  const members = Array.from(
    { length: shape.membersPerGroup },
    (_, k) => `    - computer: ${computerName((i * shape.membersPerGroup + k) % shape.computers)}`,
  );
  return [
    `apiVersion: ${API_VERSION}`,
    "kind: ADGroup",
    "metadata:",
    `  name: ${groupResource(i)}`,
    "spec:",
    `  accountName: ${groupAccount(i)}`,
    "  scope: Global",
    `  description: Hosts of bench application ${i}`,
    "  membership: exact",
    "  members:",
    ...members,
    "",
  ].join("\n");
}

function gmsaYaml(prefix: string, i: number, shape: RepoShape, domain: string): string {
  const account = gmsaAccount(prefix, i);
  const host = `${account.toLowerCase()}.${domain}`;
  const lines = [
    `apiVersion: ${API_VERSION}`,
    "kind: GroupManagedServiceAccount",
    "metadata:",
    `  name: ${account.toLowerCase()}`,
    "spec:",
    `  accountName: ${account}`,
    `  dnsHostName: ${host}`,
    `  description: Bench service ${prefix} ${i}`,
    "  kerberosEncryptionTypes: [AES128, AES256]",
    "  principalsAllowedToRetrieveManagedPassword:",
    `    - group: ${groupResource(i % shape.groups)}`,
  ];
  if (i % shape.spnEvery === 0) lines.push("  servicePrincipalNames:", `    - HTTP/${host}`, `    - HTTP/${account}`);
  lines.push("");
  return lines.join("\n");
}

/**
 * Writes the manifests under `dir`: `groups/app-NNNN.yaml` (one ADGroup each) and
 * `<prefix>/app-NNNN.yaml` (the gMSAs of that group) for each batch of accounts, so that a
 * sub-folder alone, or the whole tree, is a valid repository. `domain` is the DNS domain of
 * the accounts' dNSHostName.
 */
export function writeRepo(
  dir: string,
  shape: RepoShape,
  batches: ReadonlyArray<{ prefix: string; count: number }>,
  domain: string,
): void {
  mkdirSync(join(dir, "groups"), { recursive: true });
  for (let g = 0; g < shape.groups; g++)
    writeFileSync(join(dir, "groups", `app-${pad(g, 4)}.yaml`), groupYaml(g, shape));
  for (const batch of batches) {
    const folder = join(dir, batch.prefix);
    mkdirSync(folder, { recursive: true });
    const byGroup = new Map<number, string[]>();
    for (let i = 0; i < batch.count; i++) {
      const docs = byGroup.get(i % shape.groups) ?? [];
      docs.push(gmsaYaml(batch.prefix, i, shape, domain));
      byGroup.set(i % shape.groups, docs);
    }
    for (const [g, docs] of byGroup) writeFileSync(join(folder, `app-${pad(g, 4)}.yaml`), docs.join("---\n"));
  }
}

/**
 * LDIF creating the computer accounts the groups name, for one ldapadd. They carry no
 * password: nothing binds as them in the benches.
 */
export function computersLdif(shape: RepoShape, baseDn: string, domain: string): string {
  let out = "";
  for (let i = 0; i < shape.computers; i++) {
    const name = computerName(i);
    out += ldifAddRecord(`CN=${name},CN=Computers,${baseDn}`, {
      objectClass: "computer",
      sAMAccountName: `${name}$`,
      userAccountControl: "4096",
      dNSHostName: `${name.toLowerCase()}.${domain}`,
    });
  }
  return out;
}

/** The desired state of a generated repository (or of one of its folders); throws if it is invalid. */
export async function loadRepo(dir: string): Promise<DesiredState> {
  const loaded = await loadManifests(dir);
  if (!loaded.ok) throw new Error(`generated repository is invalid: ${JSON.stringify(loaded.errors.slice(0, 3))}`);
  return loaded.desired;
}
