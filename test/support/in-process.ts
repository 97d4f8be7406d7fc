// The controller as `run` builds it, started in the test's own process against a throwaway DC.
import { loadConfig } from "../../controller/config/index.ts";
import { createLogger, startController } from "../../controller/main.ts";
import type { RunningController } from "../../controller/main.ts";
import type { Dc } from "../harness/samba.ts";
import { logCapture } from "./logs.ts";
import { OWNER } from "./reconcile.ts";

/**
 * Starts a controller reconciling `source` (a folder, or flags such as `git-url` and `work-dir`)
 * every `interval` (default 1s) as the owner that applied the examples (OWNER), bound with the
 * password in `passwordFile` (default the DC's), with its JSON log lines captured: `text()` is
 * everything it logged so far.
 */
export async function runInProcess(
  dc: Dc,
  source: string | Readonly<Record<string, string>>,
  options: { passwordFile?: string; interval?: string } = {},
): Promise<{ running: RunningController; text: () => string }> {
  const config = loadConfig({
    flags: {
      "ldap-url": dc.url,
      "bind-dn": dc.adminDn,
      "bind-password-file": options.passwordFile ?? dc.passwordFile,
      "ca-file": dc.caFile,
      "owner-id": OWNER.ownerId,
      ...(typeof source === "string" ? { repo: source } : source),
      listen: "127.0.0.1:0",
      "log-format": "json",
      interval: options.interval ?? "1s",
    },
    env: { GMSA_GITOPS_OWNERSHIP_KEY: "unit-test-ownership-key-0123456789abcdef" },
  });
  if (!config.ok) throw new Error(JSON.stringify(config.errors));
  const { stream, text } = logCapture();
  const running = await startController(config.config, createLogger(config.config.log, stream));
  return { running, text };
}
