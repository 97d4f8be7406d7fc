/**
 * `gmsa-gitops run`: the long-running controller. Exits 0 after SIGTERM/SIGINT once the action
 * in flight has finished; 2 on a configuration error.
 */
import { parseArgs } from "node:util";
import { loadConfig, SETTINGS } from "../config/index.ts";
import { createLogger, startController } from "../main.ts";
import type { Command, Io } from "./command.ts";
import { EXIT, sourceCommit, version } from "./command.ts";

export const RUN_USAGE = `Usage: gmsa-gitops run [--git-url URL [--git-branch B] [--git-path P] | --repo DIR] [settings]

Reconciles continuously: every --interval (with jitter), on POST /hooks/git, and (with --repo)
when a file under DIR changes. Serves /metrics, /healthz, /readyz and /api/status on --listen.

Settings (flag / environment variable / config-file key):
${SETTINGS.map((s) => `  --${s.flag ?? ""}${s.type === "boolean" ? "" : " VALUE"}\n      ${s.env}, ${s.key}: ${s.description}`).join("\n")}
  --config FILE
      GMSA_GITOPS_CONFIG: a YAML file with the keys above
`;

/** Resolves when the process receives SIGTERM or SIGINT. */
function termination(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => () => {
      process.off("SIGTERM", term);
      process.off("SIGINT", int);
      resolve(signal);
    };
    const term = on("SIGTERM");
    const int = on("SIGINT");
    process.once("SIGTERM", term);
    process.once("SIGINT", int);
  });
}

export const AGENT_USAGE = `Usage: gmsa-gitops agent --host NAME --netbios-domain DOMAIN (--git-url URL | --repo DIR) [settings]

Runs on a Windows server itself: reads the same Git repository as the controller, reconciles
only the HostBindings whose host is NAME with the local PowerShell (no inbound credentials, no
Kerberos double hop), and serves its own /metrics, /healthz, /readyz and /api/status. It never
talks to AD. --host-shell overrides the PowerShell command line. Other settings as for run.
`;

async function run(argv: readonly string[], io: Io, agent = false): Promise<number> {
  const options: Record<string, { type: "boolean" | "string" }> = { config: { type: "string" } };
  if (agent) options["host"] = { type: "string" };
  for (const s of SETTINGS) if (s.flag) options[s.flag] = { type: s.type === "boolean" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    io.stderr(`gmsa-gitops: ${(error as Error).message}\n\n${RUN_USAGE}`);
    return EXIT.usage;
  }
  const result = loadConfig({
    flags: values,
    ...(typeof values["config"] === "string" ? { configFile: values["config"] } : {}),
    require: { directory: !agent },
  });
  if (!result.ok) {
    for (const e of result.errors) io.stderr(`gmsa-gitops: ${e.source}: ${e.message}\n`);
    return EXIT.usage;
  }
  if (!result.config.source) {
    io.stderr("gmsa-gitops: run needs --git-url URL, or --repo DIR to watch a local folder\n");
    return EXIT.usage;
  }
  const agentHost = typeof values["host"] === "string" ? values["host"] : undefined;
  const domain = result.config.netbiosDomain;
  if (agent && (agentHost === undefined || domain === undefined)) {
    io.stderr("gmsa-gitops: agent needs --host NAME and --netbios-domain DOMAIN\n");
    return EXIT.usage;
  }
  const logger = createLogger(result.config.log);
  let running;
  try {
    running = await startController(
      result.config,
      logger,
      agent && agentHost !== undefined && domain !== undefined
        ? { host: agentHost, domain, shell: result.config.hostShell }
        : undefined,
      { version: version(), node: process.version, commit: sourceCommit() },
    );
  } catch (error) {
    io.stderr(`gmsa-gitops: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
  // Listened for only once started: a handler installed before a failed start-up would
  // swallow SIGTERM for whatever was left running.
  const signal = await termination();
  logger.info({ signal }, "signal received");
  await running.stop();
  logger.flush();
  return EXIT.ok;
}

/** The controller command. */
export const runCommand: Command = {
  name: "run",
  summary: "run the controller: watch Git, reconcile continuously, serve metrics and status",
  usage: RUN_USAGE,
  run,
};

/** The host agent: the same loop for this host's bindings only, through the local PowerShell. */
export const agentCommand: Command = {
  name: "agent",
  summary: "run on a Windows host: reconcile only this host's bindings with the local PowerShell",
  usage: AGENT_USAGE,
  run: (argv, io) => run(argv, io, true),
};
