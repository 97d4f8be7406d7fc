/**
 * Composition root: builds the logger, metrics, source, directory connection, controller loop
 * and HTTP server from one validated Config, and shuts them down in order. The only module
 * that wires concrete clients together.
 */
import { createHash } from "node:crypto";
import { statSync, unwatchFile, watchFile } from "node:fs";
import type { Stats } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { Logger as PinoLogger } from "pino";
import { keptDirectory, leaseOpener, localHostSettings, sshHostSettings } from "./clients.ts";
import { REDACTED } from "./redact.ts";
import type { Config } from "./config/index.ts";
import { createMetricsRecorder } from "./metrics/index.ts";
import type { BuildInfo, MetricsRecorder } from "./metrics/index.ts";
import { Notifier, redactUrl } from "./notify/index.ts";
import { LeaderElector } from "./reconcile/leader.ts";
import { Controller } from "./reconcile/loop.ts";
import type { Source } from "./reconcile/loop.ts";
import { startServer } from "./server/index.ts";
import type { RunningServer, ServerOptions } from "./server/index.ts";
import { createPoller } from "./reconcile/schedule.ts";
import {
  createGitSource,
  createLocalSource,
  gitCredentialEnv,
  polledEvery,
  redact,
  verifyWebhook,
} from "./source/index.ts";
import type { LocalWatch } from "./source/index.ts";

/**
 * Field names pino blanks wherever they appear: a second line of defence, since no code path
 * is meant to log a secret in the first place.
 */
export const REDACTED_FIELDS = [
  "password",
  "bindPassword",
  "secret",
  "webhookSecret",
  "token",
  "*.password",
  "*.bindPassword",
  "*.secret",
  "*.token",
  'headers["x-gitlab-token"]',
  'headers["x-hub-signature-256"]',
];

/** Builds the logger: JSON lines, or pino-pretty's output on a terminal. */
export function createLogger(config: Config["log"], stream?: NodeJS.WritableStream): PinoLogger {
  const pretty = config.format === "pretty" || (config.format === undefined && process.stdout.isTTY === true);
  const options = {
    level: config.level,
    base: { name: "gmsa-gitops" },
    redact: { paths: REDACTED_FIELDS, censor: REDACTED },
  };
  if (pretty && !stream)
    return pino({
      ...options,
      // Colour codes only on a terminal: piped to a file or a CI log they are noise.
      transport: {
        target: "pino-pretty",
        options: { colorize: process.stdout.isTTY === true, translateTime: "SYS:HH:MM:ss" },
      },
    });
  // Written synchronously: each line is on its way to the reader (a container runtime,
  // journald) before the next write to AD, so a controller killed mid-apply keeps the record
  // of every write it made. pino's default buffers lines and writes them later, and a SIGKILL
  // lost all but the first of 500 (controller/logger.test.ts). The controller logs a few
  // lines per change, never per quiet cycle, so the blocking write costs nothing measurable.
  return pino(options, stream ?? pino.destination({ dest: 1, sync: true }));
}

/** What `run` hands back so tests and the CLI can stop it. */
export interface RunningController {
  readonly url: string;
  readonly controller: Controller;
  readonly metrics: MetricsRecorder;
  /** Finishes the action in flight, then stops the loop, the watcher and the server. */
  stop(): Promise<void>;
}

/** The source, and for a local folder a way to start watching it (started once the server listens). */
function sourceFor(
  config: Config,
  onLocalChange: () => void,
  logger: PinoLogger,
): { source: Source; watch?: () => LocalWatch } {
  const s = config.source;
  if (!s) throw new Error("run needs --git-url URL, or --repo DIR to watch a local folder");
  if (s.type === "local") {
    const local = createLocalSource(s.dir);
    const onError = (error: unknown): void =>
      logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        "folder watch: re-reading the folder",
      );
    return {
      source: { url: `file://${s.dir}`, sync: () => local.read() },
      watch: () => local.watch(onLocalChange, undefined, onError),
    };
  }
  const git = createGitSource({
    url: s.url,
    branch: s.branch,
    ...(s.path !== undefined ? { path: s.path } : {}),
    // One clone per repository, branch and path: two controllers on a host never share one.
    workDir:
      s.workDir ??
      join(
        tmpdir(),
        `gmsa-gitops-source-${createHash("sha256")
          .update(`${s.url}\n${s.branch}\n${s.path ?? ""}`)
          .digest("hex")
          .slice(0, 16)}`,
      ),
    ...(s.verify ? { verify: s.verify } : {}),
    env: gitCredentialEnv(s.url, s.credentials),
  });
  return { source: git };
}

/** What tells a changed file: its inode (a Kubernetes Secret's symlink swap), size and modification time. */
const statVersion = (s: Stats): string => `${s.ino}:${s.size}:${s.mtimeMs}`;

/** The password file's `statVersion`, why it cannot be read, or undefined without a file. */
function passwordFileVersion(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return statVersion(statSync(path));
  } catch (error: unknown) {
    return (error as NodeJS.ErrnoException).code ?? "error";
  }
}

/**
 * The stat poll of the bind password file (none without a file), running only while a refused
 * bind's back-off holds: otherwise each cycle reads the file anyway, and a poll every second woke
 * an idle process ten times per cycle (docs/benchmarks.md). Stat sees a Kubernetes Secret's
 * symlink swap as well as an edit in place. `changed` is called when the file changes.
 */
function passwordPoll(path: string | undefined, changed: () => void) {
  const onChange = (now: Stats, before: Stats): void => {
    if (statVersion(now) !== statVersion(before)) changed();
  };
  let polling = false;
  const stop = (): void => {
    if (path !== undefined && polling) unwatchFile(path, onChange);
    polling = false;
  };
  return {
    /** The file as a cycle begins, to compare with when the poll starts after it. */
    version: () => passwordFileVersion(path),
    /** Starts or stops the poll as the back-off holds or not. */
    follow(held: boolean, seenAtStart: string | undefined): void {
      if (path === undefined || held === polling) return;
      if (!held) return stop();
      polling = true;
      watchFile(path, { interval: 1000, persistent: false }, onChange);
      // The poll's first stat is its baseline: a file corrected after the refused bind read it,
      // before this point, is told by comparing with the file as the cycle began (at worst, a
      // file changed just before the read is tried once more).
      if (passwordFileVersion(path) !== seenAtStart) changed();
    },
    stop,
  };
}

/** Starts the controller (or, with `agent`, the host agent): the loop, its triggers and the HTTP server. */
export async function startController(
  config: Config,
  logger: PinoLogger,
  agent?: { readonly host: string; readonly domain: string; readonly shell: string | undefined },
  build?: BuildInfo,
): Promise<RunningController> {
  const directory = agent ? undefined : config.directory;
  if (!agent && !directory) throw new Error("run needs --ldap-url, --bind-dn and a bind password");
  const metrics = createMetricsRecorder({
    collectDefault: true,
    ...(directory ? { ldapTimeoutSeconds: directory.timeoutMs / 1000 } : {}),
    ...(build ? { build } : {}),
  });
  let trigger = (): void => undefined;
  const polled = sourceFor(
    config,
    () => {
      // A watched change is looked at by the next cycle, whatever --source-interval says.
      source.moved();
      trigger();
    },
    logger,
  );
  const source = polledEvery(polled.source, config.sourceIntervalMs);
  const startWatch = polled.watch;
  const hosts = agent
    ? localHostSettings(agent.domain, agent.shell)
    : config.hosts
      ? await sshHostSettings(config.hosts)
      : undefined;
  const notifier = config.notify
    ? new Notifier({
        url: config.notify.url,
        format: config.notify.format,
        perResourceIntervalMs: config.notify.minIntervalMs,
        maxPerMinute: config.notify.maxPerMinute,
        timeoutMs: config.notify.timeoutMs,
        sourceUrl: redact(source.url),
        logger,
      })
    : undefined;
  const onLdap = (op: Parameters<MetricsRecorder["ldapOperation"]>[0], seconds: number, ok: boolean): void =>
    metrics.ldapOperation(op, seconds, ok);
  const leaderConfig = directory ? config.leader : undefined;
  const elector =
    directory && leaderConfig
      ? new LeaderElector({
          open: leaseOpener(directory, leaderConfig.leaseDn, leaderConfig.durationMs, onLdap),
          replicaId: leaderConfig.replicaId,
          durationMs: leaderConfig.durationMs,
          logger,
          onChange: (leader) => {
            metrics.setLeader(leader);
            // A new leader acts at once (a commit may be waiting); a former one observes from now on.
            trigger();
          },
        })
      : undefined;
  // One bound connection kept between cycles (docs/decisions/incremental-observe.md).
  const kept = directory
    ? keptDirectory(directory, { onOperation: onLdap, viaPdc: elector !== undefined, logger })
    : undefined;
  const controller = new Controller({
    source,
    ...(notifier ? { onStatusChange: (previous, next) => notifier.observe(previous, next) } : {}),
    ...(hosts ? { hosts } : {}),
    ...(agent ? { onlyHost: agent.host } : {}),
    metrics,
    logger,
    policy: config.policy,
    intervalMs: config.intervalMs,
    fullResyncMs: config.fullResyncMs,
    ...(directory?.baseDn ? { baseDn: directory.baseDn } : {}),
    ...(kept ? { openDirectory: kept.open } : {}),
    ...(elector ? { leadership: elector } : {}),
  });
  const webhookSecret = config.server.webhookSecret;
  // The server starts before anything that runs on its own (watcher, poller): if it cannot
  // listen, nothing has started and start-up fails with one line, instead of a controller
  // reconciling with no HTTP surface.
  const server = await listen({
    address: config.server.address,
    metrics,
    status: {
      status: () => controller.status(),
      ready: () => controller.ready(),
      notReady: () => controller.notReady(),
    },
    ...(webhookSecret
      ? {
          webhook: {
            secret: webhookSecret,
            verify: verifyWebhook,
            onTrigger: () => {
              // Only the leader writes: a follower's cycle would only observe, so it says who
              // applies the commit (at its next poll, or on its own webhook) and triggers nothing.
              const leadership = elector?.status();
              if (leadership && !leadership.leader)
                return `not the leader; the leader is ${leadership.holder || "unknown (nobody holds the lease)"}: it applies the commit at its next poll`;
              logger.info({}, "webhook: reconcile now");
              source.moved();
              trigger();
              return undefined;
            },
          },
        }
      : {}),
    logger,
  });
  // A new bind password (a rotated Secret, a fixed typo) ends the bind back-off at once.
  const password = passwordPoll(directory?.bindPasswordFile, () => {
    controller.credentialsChanged();
    running.trigger();
  });
  const running = createPoller(
    async (signal) => {
      const seenAtStart = password.version();
      const delay = await controller.reconcile(signal);
      password.follow(controller.bindHeld(), seenAtStart);
      return delay;
    },
    {
      intervalMs: config.intervalMs,
      onError: (error) =>
        logger.error({ err: error instanceof Error ? error.message : String(error) }, "reconcile crashed"),
    },
  );
  trigger = () => running.trigger();
  if (elector) {
    metrics.setLeader(false);
    elector.start();
  }
  let watch: LocalWatch | undefined;
  try {
    watch = startWatch?.();
  } catch (error: unknown) {
    // Start-up is all or nothing: what already runs stops before the failure is reported.
    password.stop();
    await running.stop();
    await kept?.close();
    await elector?.stop();
    await server.close();
    throw error;
  }
  logger.info(
    {
      url: server.url,
      source: redact(source.url),
      mode: config.policy.mode,
      intervalSeconds: config.intervalMs / 1000,
      ...(config.notify ? { notify: `${config.notify.format} to ${redactUrl(config.notify.url)}` } : {}),
      ...(leaderConfig ? { replica: leaderConfig.replicaId, leaseSeconds: leaderConfig.durationMs / 1000 } : {}),
    },
    "controller started",
  );
  let stopped: Promise<void> | undefined;
  return {
    url: server.url,
    controller,
    metrics,
    stop: () =>
      (stopped ??= (async () => {
        logger.info({}, "stopping: finishing the action in flight");
        await watch?.close();
        password.stop();
        await running.stop();
        await kept?.close();
        // Only once no cycle can write: give the lease up, so a follower takes over at once.
        await elector?.stop();
        await server.close();
        await notifier?.close();
        logger.info({}, "stopped");
      })()),
  };
}

/** Starts the HTTP server, turning a listen failure into one clear sentence. */
async function listen(options: ServerOptions): Promise<RunningServer> {
  try {
    return await startServer(options);
  } catch (error: unknown) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "EADDRINUSE"
        ? "the address is already in use (EADDRINUSE); stop the other process or choose another --listen"
        : code === "EACCES"
          ? "permission denied (EACCES); ports below 1024 need privileges"
          : code === "EADDRNOTAVAIL"
            ? "no local interface has this address (EADDRNOTAVAIL)"
            : error instanceof Error
              ? error.message
              : String(error);
    throw new Error(`cannot listen on ${options.address}: ${why}`, { cause: error });
  }
}
