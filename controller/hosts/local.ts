/**
 * The local transport, for `gmsa-gitops agent` running on the Windows host itself: the host
 * script runs in a child PowerShell process, fed exactly as over ssh (bootstrap on the command
 * line, script and request on stdin), so both transports run the same code path on the host.
 */
import { spawn } from "node:child_process";
import type { HostRequest, HostResult } from "./contract.ts";
import type { HostDriver, HostTarget } from "./driver.ts";
import { HostError } from "./errors.ts";
import { parseScriptOutput } from "./result.ts";
import { ENCODED_BOOTSTRAP, stdinPayload } from "./script.ts";

/** How the local driver starts PowerShell. */
export interface LocalDriverOptions {
  /**
   * argv before `-EncodedCommand <bootstrap>`; default Windows PowerShell on Windows,
   * `pwsh` elsewhere.
   */
  readonly command?: readonly string[];
  /** The whole run; default 120 s. */
  readonly timeoutMs?: number;
  /** Platform, for the default command (a parameter so that tests need no process globals). */
  readonly platform?: NodeJS.Platform;
}

/** The default argv for a platform. */
export function defaultLocalCommand(platform: NodeJS.Platform): string[] {
  return platform === "win32"
    ? ["powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"]
    : ["pwsh", "-NoProfile", "-NonInteractive"];
}

/** Creates a local HostDriver; the target's address is ignored, its host must match the request. */
export function createLocalDriver(options: LocalDriverOptions = {}): HostDriver {
  const argv = options.command ?? defaultLocalCommand(options.platform ?? "win32");
  const timeoutMs = options.timeoutMs ?? 120_000;

  function run(target: HostTarget, request: HostRequest, signal?: AbortSignal): Promise<HostResult> {
    const host = target.host;
    if (request.host.toLowerCase() !== host.toLowerCase())
      return Promise.reject(new HostError("RequestRejected", host, `the request is for host '${request.host}'`));
    const [exe, ...args] = argv;
    if (exe === undefined) return Promise.reject(new HostError("Internal", host, "empty PowerShell command"));
    return new Promise<HostResult>((resolve, reject) => {
      let settled = false;
      const child = spawn(exe, [...args, "-EncodedCommand", ENCODED_BOOTSTRAP], { stdio: ["pipe", "pipe", "pipe"] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      const fail = (e: HostError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        child.kill("SIGKILL");
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new HostError("Timeout", host, `the host script did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = (): void => fail(new HostError("Aborted", host, "aborted"));
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      child.on("error", (e) =>
        fail(new HostError("ScriptFailed", host, `cannot start ${exe}: ${e.message}`, { cause: e })),
      );
      child.stdout.on("data", (c: Buffer) => stdout.push(c));
      child.stderr.on("data", (c: Buffer) => stderr.push(c));
      // A child that exits before reading stdin makes the write fail with EPIPE; the exit
      // code and stderr say more, so the write error itself is ignored.
      child.stdin.on("error", () => undefined);
      child.on("close", (code) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        try {
          resolve(
            parseScriptOutput(host, request, {
              stdout: Buffer.concat(stdout).toString("utf8"),
              stderr: Buffer.concat(stderr).toString("utf8"),
              exitCode: code,
            }),
          );
        } catch (e) {
          reject(e instanceof HostError ? e : new HostError("Internal", host, String(e)));
        }
      });
      child.stdin.end(stdinPayload(request));
    });
  }

  return { run };
}
