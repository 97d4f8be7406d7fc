/**
 * The local source: a directory on disk (a working copy being edited, a mounted ConfigMap) read
 * as a snapshot, and watched with chokidar so that a save triggers a reconcile.
 */
import { createHash } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { watch as chokidarWatch } from "chokidar";
import { SourceError } from "./errors.ts";
import { isManifestPath } from "./snapshot.ts";
import type { Snapshot, SnapshotFile } from "./snapshot.ts";

/** A directory as a source. */
export interface LocalSource {
  /**
   * Reads every regular `.yaml`/`.yml` file under the directory (symlinks and `.git` skipped).
   * The revision is `local:<sha256>` over the paths and contents, so it changes exactly when they do.
   */
  read(): Promise<Snapshot>;
  /**
   * Calls `onChange` once after a burst of manifest changes has been quiet for `debounceMs`
   * (default 300). Editors' temporary and backup files and `.git` are ignored.
   * `ready` resolves once the initial scan is done: changes before it may be missed.
   */
  watch(onChange: () => void, debounceMs?: number): LocalWatch;
}

/** A running watch. */
export interface LocalWatch {
  /** Resolves when the watcher has scanned the directory and reports changes. */
  readonly ready: Promise<void>;
  /** Stops watching; no `onChange` call happens after it resolves. */
  close(): Promise<void>;
}

/** Creates a source for the directory `dir`. */
export function createLocalSource(dir: string): LocalSource {
  const root = resolve(dir);
  return {
    read: () => readLocal(root),
    watch: (onChange, debounceMs = 300) => watchLocal(root, onChange, debounceMs),
  };
}

async function readLocal(root: string): Promise<Snapshot> {
  const files: SnapshotFile[] = [];
  try {
    await collect(root, "", files);
  } catch (error: unknown) {
    if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) {
      throw new SourceError({
        outcome: "stalled",
        kind: "checkout",
        reason: "PathNotFound",
        message: `local source ${root} is not a directory`,
      });
    }
    throw error;
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { revision: localRevision(files), files, fetchedAt: new Date() };
}

/**
 * `local:` + SHA-256 over each file as `path NUL length NUL content`, in path order. The length
 * keeps two different file sets from hashing the same input.
 */
export function localRevision(files: readonly SnapshotFile[]): string {
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(file.path).update("\0").update(String(file.content.byteLength)).update("\0").update(file.content);
  }
  return `local:${hash.digest("hex")}`;
}

async function collect(root: string, prefix: string, into: SnapshotFile[]): Promise<void> {
  // withFileTypes reports a symlink as a symlink (lstat semantics): it is neither descended nor read.
  const entries = await readdir(join(root, prefix), { withFileTypes: true });
  for (const entry of entries) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== ".git") await collect(root, path, into);
    } else if (entry.isFile() && isManifestPath(entry.name) && !isEditorTemp(entry.name)) {
      const content = await readNoFollow(join(root, path));
      if (content) into.push({ path, content });
    }
  }
}

/**
 * Reads a file refusing a symlink at the last component (O_NOFOLLOW), in case it was swapped
 * for one after readdir. A file deleted meanwhile is skipped: the watcher reports the deletion.
 */
async function readNoFollow(path: string): Promise<Uint8Array | undefined> {
  let handle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch (error: unknown) {
    if (isErrno(error, "ENOENT") || isErrno(error, "ELOOP")) return undefined;
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    return new Uint8Array(await handle.readFile());
  } finally {
    await handle.close();
  }
}

// vim (.swp, .swx, 4913 probe, ~ backup), emacs (#x#, .#x lock), JetBrains (___jb_tmp___), generic .tmp.
function isEditorTemp(name: string): boolean {
  return /(~|\.sw[a-p]|\.tmp|___jb_(tmp|old)___)$/i.test(name) || /^(\.#|#.*#$)/.test(name) || name === "4913";
}

function watchLocal(root: string, onChange: () => void, debounceMs: number): LocalWatch {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const watcher = chokidarWatch(root, {
    ignoreInitial: true,
    followSymlinks: false,
    ignored: (path: string) => {
      const rel = relative(root, path);
      return rel.split(sep).includes(".git") || isEditorTemp(basename(path));
    },
  });

  watcher.on("all", (event, path) => {
    if (closed) return;
    // Directory events count too: removing a folder removes the manifests in it.
    const relevant = event === "addDir" || event === "unlinkDir" || isManifestPath(path);
    if (!relevant) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, debounceMs);
  });

  const ready = new Promise<void>((resolveReady) => watcher.once("ready", () => resolveReady()));

  return {
    ready,
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      await watcher.close();
    },
  };
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
