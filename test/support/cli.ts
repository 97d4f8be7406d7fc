/**
 * Runs a `plan` or `apply` command in-process against a test DC, as an operator would from the
 * command line (TLS verified against the DC's CA, bind password from a file), capturing output.
 */
import { main } from "../../controller/cli/main.ts";
import type { Dc } from "../harness/samba.ts";

/**
 * The flags that reach the test DC (TLS against its CA, bind password from a file) and, unless
 * `extra` brings its own owner, the DC's ownership key, as production passes a file.
 */
export function dcFlags(dc: Dc, extra: readonly string[] = []): string[] {
  return [
    "--ldap-url",
    dc.url,
    "--bind-dn",
    dc.adminDn,
    "--bind-password-file",
    dc.passwordFile,
    "--ca-file",
    dc.caFile,
    ...(extra.includes("--ownership-key-file") ? [] : ["--ownership-key-file", dc.ownershipKeyFile]),
  ];
}

/** Runs `gmsa-gitops COMMAND --repo REPO` with the DC's connection flags, then any extra flags. */
export async function dcCommand(
  dc: Dc,
  command: string,
  repo: string,
  ...extra: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main([command, "--repo", repo, ...dcFlags(dc, extra), ...extra], {
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
  });
  return { code, stdout, stderr };
}
