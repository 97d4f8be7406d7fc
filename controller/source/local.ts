/**
 * The local source: a directory on disk (a working copy being edited, a mounted ConfigMap) read
 * as a snapshot, and watched with chokidar so that a save triggers a reconcile.
 */
import { createHash } from "node:crypto";
import { basename, relative, resolve, sep } from "node:path";
import { watch as chokidarWatch } from "chokidar";
import { isManifestPath, MAX_FOLDER_DEPTH, readManifestTree } from "../manifests/index.ts";
import type { ManifestError } from "../manifests/index.ts";
import { SourceError } from "./errors.ts";
import type { Snapshot, SnapshotFile } from "./snapshot.ts";

/** A directory as a source. */
export interface LocalSource {
  /**
   * Reads the directory exactly as `validate` does (`readManifestTree`): the same files, and
   * the same refusals (symlinks, unreadable folders, FIFOs...) as `fileErrors`, which reject
   * the revision. The revision is `local:<sha256>` over the paths, contents and refusals, so
   * it changes exactly when they do.
   */
  read(): Promise<Snapshot>;
  /**
   * Calls `onChange` once after a burst of manifest changes has been quiet for `debounceMs`
   * (default 300). Editors' temporary and backup files and `.git` are ignored. A watcher error
   * (EACCES on a folder, ENAMETOOLONG) never throws: it is passed to `onError` and counts as a
   * change, so the next read reports the folder.
   * `ready` resolves once the initial scan is done: changes before it may be missed.
   */
  watch(onChange: () => void, debounceMs?: number, onError?: (error: unknown) => void): LocalWatch;
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
    watch: (onChange, debounceMs = 300, onError = () => undefined) => watchLocal(root, onChange, debounceMs, onError),
  };
}

async function readLocal(root: string): Promise<Snapshot> {
  let tree;
  try {
    tree = await readManifestTree(root);
  } catch (error: unknown) {
    if (isErrno(error, "ENOENT") || isErrno(error, "ENOTDIR")) {
      throw new SourceError({
        outcome: "stalled",
        step: "checkout",
        reason: "PathNotFound",
        message: `local source ${root} is not a directory`,
      });
    }
    throw error;
  }
  const snapshot: Snapshot = {
    revision: localRevision(tree.files, tree.errors),
    files: tree.files,
    fetchedAt: new Date(),
  };
  if (tree.errors.length > 0) snapshot.fileErrors = tree.errors;
  return snapshot;
}

/**
 * `local:` + SHA-256 over each file as `path NUL length NUL content`, in path order, then each
 * refusal as `NUL file NUL code`. The length keeps two different file sets from hashing the
 * same input; the refusals make a folder that became readable a new revision.
 */
export function localRevision(files: readonly SnapshotFile[], refusals: readonly ManifestError[] = []): string {
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(file.path).update("\0").update(String(file.content.byteLength)).update("\0").update(file.content);
  }
  for (const refusal of refusals) hash.update("\0").update(refusal.file).update("\0").update(refusal.code);
  return `local:${hash.digest("hex")}`;
}

// vim (.swp, .swx, 4913 probe, ~ backup), emacs (#x#, .#x lock), JetBrains (___jb_tmp___), generic .tmp.
function isEditorTemp(name: string): boolean {
  return /(~|\.sw[a-p]|\.tmp|___jb_(tmp|old)___)$/i.test(name) || /^(\.#|#.*#$)/.test(name) || name === "4913";
}

function watchLocal(
  root: string,
  onChange: () => void,
  debounceMs: number,
  onError: (error: unknown) => void,
): LocalWatch {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const watcher = chokidarWatch(root, {
    ignoreInitial: true,
    followSymlinks: false,
    // The tree reader refuses deeper folders; watching them would only cost descriptors.
    depth: MAX_FOLDER_DEPTH,
    ignored: (path: string) => {
      const rel = relative(root, path);
      return rel.split(sep).includes(".git") || isEditorTemp(basename(path));
    },
  });

  const changed = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, debounceMs);
  };
  watcher.on("all", (event, path) => {
    if (closed) return;
    // Directory events count too: removing a folder removes the manifests in it.
    const relevant =
      event === "addDir" || event === "unlinkDir" || isManifestPath(relative(root, path).split(sep).join("/"));
    if (relevant) changed();
  });
  // Without a listener, an EventEmitter 'error' (EACCES on a folder made unreadable,
  // ENAMETOOLONG deep down) is thrown and kills the process.
  watcher.on("error", (error: unknown) => {
    if (closed) return;
    onError(error);
    changed();
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
