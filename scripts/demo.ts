/**
 * The demo: a throwaway Samba AD DC, a local Git repository made from examples/, and the
 * controller running against both with metrics on localhost. Ctrl-C stops everything and
 * removes what it made. Run through `bash scripts/demo.sh`, which installs what is missing.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sourceCommit, version } from "../controller/cli/command.ts";
import { loadConfig } from "../controller/config/index.ts";
import { createLogger, startController } from "../controller/main.ts";
import type { RunningController } from "../controller/main.ts";
import { startDc } from "../test/harness/samba.ts";
import type { Dc } from "../test/harness/samba.ts";

const root = join(import.meta.dirname, "..");
// Not 9090: that is Prometheus's own port, and an SRE trying the demo often runs one beside it.
const listen = process.env["GMSA_GITOPS_DEMO_LISTEN"] ?? "127.0.0.1:9464";
const interval = process.env["GMSA_GITOPS_DEMO_INTERVAL"] ?? "10s";

function git(cwd: string, ...args: string[]): void {
  execFileSync("git", ["-c", "user.name=Demo", "-c", "user.email=demo@company.local", ...args], {
    cwd,
    stdio: "ignore",
  });
}

async function main(): Promise<void> {
  const temp = mkdtempSync(join(tmpdir(), "gmsa-gitops-demo-"));
  let dc: Dc | undefined;
  let controller: RunningController | undefined;
  let stopping = false;
  const cleanup = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stderr.write("\nStopping the controller and the DC...\n");
    await controller?.stop();
    await dc?.stop();
    rmSync(temp, { recursive: true, force: true });
    process.stderr.write("Cleaned up.\n");
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(0)));
  process.once("SIGTERM", () => void cleanup().then(() => process.exit(0)));

  try {
    process.stderr.write("Starting a throwaway Samba AD DC (about 30 s)...\n");
    dc = await startDc();
    for (const host of ["SERVER1", "SERVER2", "WEB1", "WEB2"]) await dc.addComputer(host, `Demo-${host}-Pass1!`);

    const repo = join(temp, "repo");
    cpSync(join(root, "examples"), repo, { recursive: true });
    git(repo, "init", "-q", "-b", "main");
    git(repo, "config", "user.name", "Demo");
    git(repo, "config", "user.email", "demo@company.local");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "gMSAs from examples/");

    const config = loadConfig({
      flags: {
        "ldap-url": dc.url,
        "bind-dn": dc.adminDn,
        "bind-password-file": dc.passwordFile,
        "ca-file": dc.caFile,
        "ownership-key-file": dc.ownershipKeyFile,
        "git-url": `file://${repo}`,
        "work-dir": join(temp, "clone"),
        interval,
        listen,
      },
      env: {},
    });
    if (!config.ok) throw new Error(config.errors.map((e) => `${e.source}: ${e.message}`).join("; "));
    // The build as `run` reports it, so gmsa_gitops_build_info has its series here too.
    controller = await startController(config.config, createLogger({ level: "info", format: "pretty" }), undefined, {
      version: version(),
      node: process.version,
      commit: sourceCommit(),
    });

    const ldap = `LDAPTLS_CACERT=${dc.caFile} ldapmodify -H ${dc.url} -x -D '${dc.adminDn}' -y ${dc.passwordFile}`;
    const hint = [
      "",
      "gmsa-gitops demo is running.",
      `  metrics:  ${controller.url}/metrics`,
      `  status:   ${controller.url}/api/status`,
      `  ready:    ${controller.url}/readyz`,
      "",
      "Make drift by hand and watch it heal within one interval (" + interval + "):",
      `  printf 'dn: CN=MSA-service1,CN=Managed Service Accounts,${dc.baseDn}\\nchangetype: modify\\nreplace: description\\ndescription: edited by hand\\n' | ${ldap}`,
      `  curl -s ${controller.url}/metrics | grep gmsa_gitops_resource_drift`,
      "",
      "Change Git and watch it apply:",
      `  cd ${repo} && sed -i 's/Service1 batch jobs and Windows service/Changed in Git/' service1/account.yaml && git commit -qam 'new description'`,
      "",
      "Ctrl-C stops the controller and the DC and removes everything the demo made.",
      "",
    ].join("\n");
    writeFileSync(join(temp, "README.txt"), hint);
    process.stderr.write(`${hint}\n`);
  } catch (error) {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await cleanup();
    process.exit(1);
  }
}

await main();
