/**
 * Whether the CLI colours its output. A module of its own, without the settings table's
 * imports (the directory module, LDAP, YAML), so that `main` can decide it before knowing
 * which command runs and `validate` loads none of what it does not use.
 */

/**
 * Whether the CLI colours its output: only on a terminal, and never when NO_COLOR is set to a
 * non-empty value (https://no-color.org) or TERM is "dumb".
 */
export function colorWanted(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!isTTY) return false;
  if ((env["NO_COLOR"] ?? "") !== "") return false;
  return env["TERM"] !== "dumb";
}
