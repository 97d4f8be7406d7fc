// Benchmark: load and validate a generated repository of 10,000 resources.
// Run: npx node bench/validate.ts [--resources N] [--keep]
// Prints wall time of loadManifests (read + parse + schema + lint) and peak memory.
// Goal on a 2-core machine: under 1 s and under 150 MB peak RSS.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadManifests } from "../controller/manifests/index.ts";

const { values } = parseArgs({
  options: {
    resources: { type: "string", default: "10000" },
    keep: { type: "boolean", default: false },
    "generate-into": { type: "string" },
  },
});
const target = Number(values.resources);

/**
 * One application = 4 resources in 2 files: a host group (3 computers, every fifth nested in
 * a shared tier group), a gMSA with SPNs allowed through that group, and 2 host bindings.
 */
function generate(dir: string, resources: number): { files: number; resources: number } {
  const apps = Math.floor((resources - 2) / 4);
  let files = 0;
  let count = 0;
  const write = (path: string, text: string): void => {
    writeFileSync(join(dir, path), text);
    files++;
  };
  mkdirSync(join(dir, "platform"));
  write(
    "platform/base.yaml",
    `# Forest-wide prerequisites.
apiVersion: gmsa-gitops.io/v1alpha1
kind: KdsRootKey
metadata:
  name: default
spec:
  effectiveImmediately: false
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: tier1-servers
spec:
  accountName: Tier1-Servers
  scope: Global
  membership: exact
  members:
    - computer: TIER1-A
    - computer: TIER1-B
`,
  );
  count += 2;
  for (let i = 0; i < apps; i++) {
    const app = `app${i}`;
    const hosts = [0, 1, 2].map((h) => `S${i}-${h}`);
    mkdirSync(join(dir, "apps", app), { recursive: true });
    write(
      `apps/${app}/account.yaml`,
      `# ${app}: the account and the computers allowed to retrieve its password.
apiVersion: gmsa-gitops.io/v1alpha1
kind: ADGroup
metadata:
  name: ${app}-hosts
  labels:
    team: team-${i % 50}
spec:
  accountName: GMSA-${app}-Hosts
  scope: ${i % 3 === 0 ? "DomainLocal" : "Global"}
  description: Computers allowed to retrieve the password of ${app}
  membership: exact
  members:
${hosts.map((h) => `    - computer: ${h}`).join("\n")}${i % 5 === 0 ? "\n    - group: tier1-servers" : ""}
---
apiVersion: gmsa-gitops.io/v1alpha1
kind: GroupManagedServiceAccount
metadata:
  name: ${app}
  annotations:
    owner: team-${i % 50}@company.local
spec:
  accountName: gMSA-${i}
  dnsHostName: ${app}.company.local
  description: Service account of ${app}
  kerberosEncryptionTypes: [AES128, AES256]
  managedPasswordIntervalInDays: 30
  servicePrincipalNames:
    - HTTP/${app}.company.local
    - HTTP/${app}
  principalsAllowedToRetrieveManagedPassword:
    - group: ${app}-hosts
`,
    );
    write(
      `apps/${app}/bindings.yaml`,
      [0, 1]
        .map(
          (h) => `apiVersion: gmsa-gitops.io/v1alpha1
kind: HostBinding
metadata:
  name: ${app}-s${h}
spec:
  host: ${hosts[h]}
  account: ${app}
  localGroups: [IIS_IUSRS]
  logonRights: [SeServiceLogonRight, SeBatchLogonRight]
  services:
    - name: ${app}-svc
  scheduledTasks:
    - name: ${app} nightly
      path: \\Apps\\
      runLevel: Highest
  iisAppPools:
    - name: ${app}Pool
`,
        )
        .join("---\n"),
    );
    count += 4;
  }
  return { files, resources: count };
}

// Generation runs in a child process so that the peak RSS printed below is the loader's own.
if (values["generate-into"]) {
  process.stdout.write(JSON.stringify(generate(values["generate-into"], target)));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "gmsa-bench-"));
try {
  const child = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), "--resources", String(target), "--generate-into", dir],
    { encoding: "utf8" },
  );
  if (child.status !== 0) throw new Error(`generation failed: ${child.stderr}`);
  const generated = JSON.parse(child.stdout) as { files: number; resources: number };
  const before = process.memoryUsage();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await loadManifests(dir);
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const after = process.memoryUsage();
  if (!result.ok) {
    for (const e of result.errors.slice(0, 10)) console.error(`${e.file}:${e.line}:${e.column}: ${e.message}`);
    throw new Error(`generated repository is invalid (${result.errors.length} errors)`);
  }
  const loaded =
    result.desired.gmsas.size +
    result.desired.groups.size +
    result.desired.bindings.size +
    result.desired.kdsRootKeys.size;
  const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  console.log(`resources:     ${loaded} (generated ${generated.resources}) in ${generated.files} files`);
  // CPU time too: on a shared machine wall time mostly measures the neighbours.
  console.log(`load+validate: ${elapsed.toFixed(0)} ms wall, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU`);
  console.log(`heap used:     ${mb(before.heapUsed)} before, ${mb(after.heapUsed)} after`);
  console.log(`RSS:           ${mb(before.rss)} before loading (Node and modules)`);
  console.log(`peak RSS:      ${mb(process.resourceUsage().maxRSS * 1024)} (whole process)`);
} finally {
  if (values.keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
