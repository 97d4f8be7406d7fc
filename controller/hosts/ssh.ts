/**
 * The ssh transport: runs the host script on a Windows host through its OpenSSH server.
 *
 * Key authentication only (the private key is read from a file once); the host key must be
 * pinned in a known_hosts file (no trust on first use); connect and command timeouts; the
 * script and the request travel on stdin (see script.ts), so nothing from Git reaches the
 * remote command line.
 */
import { readFile } from "node:fs/promises";
import { Client } from "ssh2";
import type { ClientErrorExtensions, ConnectConfig } from "ssh2";
import type { HostRequest, HostResult } from "./contract.ts";
import type { HostDriver, HostTarget } from "./driver.ts";
import { HostError } from "./errors.ts";
import { checkHostKey, knownHostName, parseKnownHosts, pinnedAlgorithms } from "./known-hosts.ts";
import type { HostKeyCheck } from "./known-hosts.ts";
import { parseScriptOutput } from "./result.ts";
import { bootstrapCommand, DEFAULT_WINDOWS_SHELL, stdinPayload } from "./script.ts";

/** How the ssh driver connects and how long it waits. */
export interface SshDriverOptions {
  /** Path of the private key (OpenSSH or PEM format). */
  readonly privateKeyPath: string;
  /** Passphrase of the private key, when it has one. */
  readonly passphrase?: string;
  /** Path of the known_hosts file the host keys are pinned in; re-read on every run. */
  readonly knownHostsPath: string;
  /** Login name when the target names none. */
  readonly username: string;
  /** Remote shell when the target names none; default: Windows PowerShell 5.1. */
  readonly shell?: string;
  /** TCP connect + SSH handshake + authentication; default 10 s. */
  readonly connectTimeoutMs?: number;
  /** From the start of the command to its end; default 120 s. */
  readonly commandTimeoutMs?: number;
  /** Stdout beyond this is a failure (a runaway script); default 16 MiB. */
  readonly maxOutputBytes?: number;
}

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);

function mapConnectError(
  host: string,
  err: Error & Partial<ClientErrorExtensions>,
  keyCheck: HostKeyCheck | undefined,
  where: string,
): HostError {
  if (keyCheck !== undefined && !keyCheck.ok) {
    if (keyCheck.reason === "unknown")
      return new HostError(
        "HostKeyUnknown",
        host,
        `no host key for ${where} in known_hosts (presented ${keyCheck.fingerprint}); add it after checking it out of band`,
      );
    return new HostError(
      "HostKeyMismatch",
      host,
      `${where} presented host key ${keyCheck.fingerprint}, which known_hosts ${keyCheck.reason === "revoked" ? "marks as revoked" : "does not list for it"}: refusing to connect`,
    );
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (err.level === "client-timeout")
    return new HostError("Timeout", host, `no SSH session with ${where} within the connect timeout`, { cause: err });
  if (err.level === "client-authentication")
    return new HostError("AuthFailed", host, `${where} refused the key (${err.message})`, { cause: err });
  if (code !== undefined && UNREACHABLE_CODES.has(code))
    return new HostError("Unreachable", host, `cannot reach ${where} (${code})`, { cause: err });
  return new HostError("Unreachable", host, `SSH connection to ${where} failed: ${err.message}`, { cause: err });
}

/**
 * Creates an ssh HostDriver. Reads the private key now (a missing key fails here, at start-up,
 * not on every host); never puts the key or passphrase into an error or log.
 */
export async function createSshDriver(options: SshDriverOptions): Promise<HostDriver> {
  const privateKey = await readFile(options.privateKeyPath);
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const commandTimeoutMs = options.commandTimeoutMs ?? 120_000;
  const maxOutputBytes = options.maxOutputBytes ?? 16 * 1024 * 1024;

  async function run(target: HostTarget, request: HostRequest, signal?: AbortSignal): Promise<HostResult> {
    const host = target.host;
    if (request.host.toLowerCase() !== host.toLowerCase())
      throw new HostError("RequestRejected", host, `the request is for host '${request.host}'`);
    if (signal?.aborted) throw new HostError("Aborted", host, "aborted before connecting");
    const port = target.port ?? 22;
    const where = knownHostName(target.address, port);
    const knownHosts = parseKnownHosts(await readFile(options.knownHostsPath, "utf8"));
    const command = bootstrapCommand(target.shell ?? options.shell ?? DEFAULT_WINDOWS_SHELL);
    const payload = stdinPayload(request);

    return await new Promise<HostResult>((resolve, reject) => {
      const client = new Client();
      let keyCheck: HostKeyCheck | undefined;
      let settled = false;
      let commandTimer: NodeJS.Timeout | undefined;

      const finish = (outcome: { result: HostResult } | { error: HostError }): void => {
        if (settled) return;
        settled = true;
        if (commandTimer !== undefined) clearTimeout(commandTimer);
        signal?.removeEventListener("abort", onAbort);
        client.removeAllListeners("ready");
        // Keep an error listener: a late socket error after settling must not crash the process.
        client.on("error", () => undefined);
        client.destroy();
        if ("result" in outcome) resolve(outcome.result);
        else reject(outcome.error);
      };
      const onAbort = (): void => finish({ error: new HostError("Aborted", host, "aborted") });
      signal?.addEventListener("abort", onAbort, { once: true });

      const algorithms = pinnedAlgorithms(knownHosts, where);
      const config: ConnectConfig = {
        host: target.address,
        port,
        username: target.username ?? options.username,
        privateKey,
        readyTimeout: connectTimeoutMs,
        hostVerifier: (key: Buffer): boolean => {
          keyCheck = checkHostKey(knownHosts, where, key);
          return keyCheck.ok;
        },
        ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
        ...(algorithms !== undefined ? { algorithms: { serverHostKey: algorithms as never } } : {}),
      };

      client.on("error", (err) => finish({ error: mapConnectError(host, err, keyCheck, where) }));
      client.on("close", () => finish({ error: new HostError("Unreachable", host, `${where} closed the connection`) }));
      client.on("ready", () => {
        commandTimer = setTimeout(
          () =>
            finish({
              error: new HostError("Timeout", host, `the host script did not finish within ${commandTimeoutMs} ms`),
            }),
          commandTimeoutMs,
        );
        client.exec(command, (err, stream) => {
          if (err) {
            finish({
              error: new HostError("ScriptFailed", host, `cannot start the remote shell: ${err.message}`, {
                cause: err,
              }),
            });
            return;
          }
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          let stdoutBytes = 0;
          let stderrBytes = 0;
          stream.on("data", (chunk: Buffer) => {
            stdoutBytes += chunk.length;
            if (stdoutBytes > maxOutputBytes) {
              finish({
                error: new HostError("BadResult", host, `the host script printed more than ${maxOutputBytes} bytes`),
              });
              return;
            }
            stdout.push(chunk);
          });
          stream.stderr.on("data", (chunk: Buffer) => {
            // Only the end of stderr is kept: it ends up (bounded) in an error message.
            stderrBytes += chunk.length;
            stderr.push(chunk);
            while (stderrBytes > 64 * 1024 && stderr.length > 1) stderrBytes -= stderr.shift()?.length ?? 0;
          });
          stream.on("close", (code: number | null) => {
            try {
              const result = parseScriptOutput(host, request, {
                stdout: Buffer.concat(stdout).toString("utf8"),
                stderr: Buffer.concat(stderr).toString("utf8"),
                exitCode: code ?? null,
              });
              finish({ result });
            } catch (e) {
              finish({ error: e instanceof HostError ? e : new HostError("Internal", host, String(e)) });
            }
          });
          stream.end(payload);
        });
      });
      client.connect(config);
    });
  }

  return { run };
}
