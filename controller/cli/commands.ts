/**
 * The table of subcommands `main` dispatches to, in the order `--help` lists them. To add a
 * command (run, agent), implement `Command` in its own file and append an entry here.
 *
 * Entries load their module only when run: `validate` must not pay for (or be broken by) the
 * LDAP, ssh and HTTP code that other commands import.
 */
import type { LazyCommand } from "./command.ts";

/** Every subcommand. */
export const COMMANDS: readonly LazyCommand[] = [
  {
    name: "validate",
    summary: "check a folder of manifests (schema, references, lint); exit 1 on errors",
    load: async () => (await import("./validate.ts")).validateCommand,
  },
  {
    name: "plan",
    summary: "show what apply would change in Active Directory (exit 0 none, 2 changes, 1 error)",
    load: async () => (await import("./reconcile-commands.ts")).planCommand,
  },
  {
    name: "apply",
    summary: "make Active Directory match the manifests (--dry-run prints the plan only)",
    load: async () => (await import("./reconcile-commands.ts")).applyCommand,
  },
  {
    name: "explain",
    summary: "show one resource: desired vs observed, conditions, last drift and who changed AD",
    load: async () => (await import("./explain.ts")).explainCommand,
  },
  {
    name: "run",
    summary: "run the controller: watch Git, reconcile continuously, serve metrics and status",
    load: async () => (await import("./run.ts")).runCommand,
  },
  {
    name: "agent",
    summary: "run on a Windows host: reconcile only this host's bindings with the local PowerShell",
    load: async () => (await import("./run.ts")).agentCommand,
  },
  {
    name: "status",
    summary: "show a running controller's resources and conditions (exit 0 all Ready, 1 not)",
    load: async () => (await import("./status.ts")).statusCommand,
  },
];
