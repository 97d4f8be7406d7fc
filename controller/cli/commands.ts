/**
 * The table of subcommands `main` dispatches to, in the order `--help` lists them. To add a
 * command (plan, apply, run, agent), implement `Command` in its own file and append it here.
 */
import type { Command } from "./command.ts";
import { applyCommand, planCommand } from "./reconcile-commands.ts";
import { validateCommand } from "./validate.ts";

/** Every subcommand. */
export const COMMANDS: readonly Command[] = [validateCommand, planCommand, applyCommand];
