/**
 * A throwaway OpenSSH server on a loopback port for the host-driver tests: its own host key,
 * config, client key pair and authorized_keys, all in a temp folder that stop() removes. The
 * login user is the one running the tests (sshd only lets a non-root server authenticate its
 * own user; as root it is root).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** A running sshd. */
export interface Sshd {
  readonly address: "127.0.0.1";
  readonly port: number;
  /** The sshd listener's pid (its cutime/cstime in /proc add up the CPU of every finished session). */
  readonly pid: number;
  /** The user the client logs in as. */
  readonly username: string;
  /** The client's private key (ed25519, no passphrase), listed in the server's authorized_keys. */
  readonly clientKeyPath: string;
  /** A known_hosts file pinning this server's host key for [127.0.0.1]:port (plain entry). */
  readonly knownHostsPath: string;
  /** The server's host public key line ("ssh-ed25519 AAAA..."). */
  readonly hostPublicKey: string;
  /** The temp folder; tests may put their own files in it (removed by stop). */
  readonly dir: string;
  /** Stops sshd (and the sessions it started) and removes the folder; idempotent. */
  stop(): Promise<void>;
}

/** Options for startSshd. */
export interface SshdOptions {
  /** sshd's MaxStartups (concurrent unauthenticated connections); default 200, for fleet runs. */
  readonly maxStartups?: number;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Makes an ed25519 key pair at path (and path.pub); returns the public key line. */
export async function makeKey(path: string, comment = "gmsa-gitops-test"): Promise<string> {
  await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
  return (await readFile(`${path}.pub`, "utf8")).trim();
}

/** Starts sshd on a free loopback port and resolves once it accepts connections. */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), "gmsa-sshd-"));
  let child: ChildProcess | undefined;
  try {
    const hostKey = join(dir, "host_ed25519");
    const hostPublicKey = await makeKey(hostKey, "gmsa-gitops-test-host");
    const clientKeyPath = join(dir, "client_ed25519");
    const clientPublicKey = await makeKey(clientKeyPath);
    await writeFile(join(dir, "authorized_keys"), `${clientPublicKey}\n`, { mode: 0o600 });
    const port = await freePort();
    const knownHostsPath = join(dir, "known_hosts");
    await writeFile(knownHostsPath, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const username = userInfo().username;
    const maxStartups = options.maxStartups ?? 200;
    const config = [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      // No PAM and no mode checks: the keys live in a temp folder, not in the user's home.
      "UsePAM no",
      "StrictModes no",
      `MaxStartups ${maxStartups}:100:${maxStartups}`,
      "MaxSessions 50",
      "PrintMotd no",
      "LogLevel ERROR",
      "",
    ].join("\n");
    const configPath = join(dir, "sshd_config");
    await writeFile(configPath, config);
    // Debian's sshd refuses to start without its privilege separation directory.
    if (userInfo().uid === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    const started = Date.now();
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${stderr}`);
      if (Date.now() - started > 10_000) throw new Error(`sshd did not listen within 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const proc = child;
    const pid = proc.pid;
    if (pid === undefined) throw new Error("sshd has no pid");
    let stopped = false;
    return {
      address: "127.0.0.1",
      port,
      pid,
      username,
      clientKeyPath,
      knownHostsPath,
      hostPublicKey,
      dir,
      async stop(): Promise<void> {
        if (stopped) return;
        stopped = true;
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise((r) => proc.once("exit", r));
          proc.kill("SIGTERM");
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    if (child !== undefined && child.exitCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
