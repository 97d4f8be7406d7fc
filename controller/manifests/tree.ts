/**
 * The one reader of a manifest tree on disk, shared by `validate`/`plan` (`loadManifests`) and
 * the controller's local source, so that both read exactly the same files and refuse the same
 * things. It owns what a manifest is (`isManifestPath`) and how a folder is walked.
 *
 * - Entries whose name starts with '.' (`.git`, `.github`) are skipped.
 * - Symbolic links are never followed, whether they lead inside the folder or out of it: a
 *   link to a `.yaml`/`.yml` name or to a folder is an error (`symlink-outside` when it leads
 *   outside or nowhere, `symlink-refused` otherwise). The Git source never reads symlinks
 *   either (a tree entry of mode 120000 is not a file). Links with other names are ignored.
 * - A manifest name that is not a regular file (a FIFO, a socket, a device) is reported and
 *   never opened; a name ending in white space (`app.yaml `) is reported, not silently skipped.
 * - A folder that cannot be read (permissions, a name too long) is an error at `PATH:1:1`, and
 *   folders nested deeper than MAX_FOLDER_DEPTH are refused at the limit: the walk is a loop
 *   with its own stack, so neither 10,000 nested folders nor one unreadable folder throws.
 * - Files over the size limit are reported after reading at most limit + 1 bytes.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync } from "node:fs";
import type { Dirent } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { join, sep } from "node:path";
import { DEFAULT_MAX_FILE_BYTES } from "./types.ts";
import type { ErrorCode, ManifestError, ManifestFile } from "./types.ts";

/** Folders below the root deeper than this are not read; no manifest repository comes close. */
export const MAX_FOLDER_DEPTH = 32;

/**
 * Files read, or folders listed, per turn of the event loop. Reads and listings are synchronous
 * (a few syscalls each without a thread-pool round trip: several times cheaper for thousands of
 * small files and folders), in batches so that a large repository never blocks the
 * controller's HTTP server for long.
 */
const READ_BATCH = 200;

const MANIFEST_NAME = /\.ya?ml$/i;

/**
 * Whether a path names a manifest: `.yaml` or `.yml` (any case), and no part of the path
 * starts with '.' (so `.git/` and `.github/workflows/*.yml` are never read as manifests).
 * The Git source and the folder walk both decide with this.
 */
export function isManifestPath(path: string): boolean {
  // A part starts with '.' exactly when the path does or holds "/.": no split per call (12,500
  // calls for a 5,000-file folder).
  return MANIFEST_NAME.test(path) && !path.startsWith(".") && !path.includes("/.");
}

/** What a walk found: the manifests' bytes (paths '/'-separated, relative, sorted) and the file-level errors. */
export interface ManifestTree {
  files: ManifestFile[];
  errors: ManifestError[];
}

/**
 * Reads every manifest under `dir`. Throws only when `dir` itself does not exist or is not a
 * folder (the caller's usage error); every problem inside it is a ManifestError at line 1.
 */
export async function readManifestTree(dir: string, maxFileBytes = DEFAULT_MAX_FILE_BYTES): Promise<ManifestTree> {
  const root = await realpath(dir);
  if (!(await stat(root)).isDirectory()) throw Object.assign(new Error(`${dir} is not a folder`), { code: "ENOTDIR" });
  const paths: string[] = [];
  const errors: ManifestError[] = [];
  const fileError = (rel: string, code: ErrorCode, message: string): void => {
    errors.push({ file: rel, line: 1, column: 1, path: "", message, code });
  };

  const stack: Array<{ rel: string; depth: number }> = [{ rel: "", depth: 0 }];
  let listed = 0;
  for (let folder = stack.pop(); folder; folder = stack.pop()) {
    if (++listed % READ_BATCH === 0) await yieldToEventLoop();
    const abs = folder.rel === "" ? root : under(root, folder.rel);
    let entries: Dirent[];
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch (error: unknown) {
      const code = (error as NodeJS.ErrnoException).code ?? "error";
      fileError(folder.rel || ".", "unreadable-folder", `cannot read the folder (${code}); its manifests are unknown`);
      continue;
    }
    const below: Array<{ rel: string; depth: number }> = [];
    for (const entry of entries) {
      const name = entry.name;
      if (name.startsWith(".")) continue;
      const rel = folder.rel === "" ? name : `${folder.rel}/${name}`;
      const manifestName = isManifestPath(name.trimEnd());
      if (name !== name.trimEnd() && (manifestName || entry.isDirectory())) {
        errors.push(suspiciousName(rel));
      } else if (name.includes("\ufffd") && (manifestName || entry.isDirectory())) {
        // Bytes that are not UTF-8 were decoded to U+FFFD: the name no longer opens the entry.
        errors.push(suspiciousName(rel, "is not valid UTF-8 (shown with U+FFFD), so it cannot be read by its name"));
      } else if (entry.isSymbolicLink()) {
        const problem = await symlinkProblem(root, join(abs, name), name);
        if (problem) fileError(rel, problem.code, problem.message);
      } else if (entry.isDirectory()) {
        if (folder.depth + 1 > MAX_FOLDER_DEPTH) errors.push(tooDeep(rel));
        else below.push({ rel, depth: folder.depth + 1 });
      } else if (manifestName && !entry.isFile()) {
        fileError(rel, "unreadable-file", `not a regular file (${fileType(entry)}); it is not read`);
      } else if (manifestName) paths.push(rel);
    }
    // Depth-first in name order, like the recursive walk this replaces.
    stack.push(...below.reverse());
  }

  const files: ManifestFile[] = [];
  const slab = new Slab();
  paths.sort(compare);
  for (let i = 0; i < paths.length; i++) {
    if (i > 0 && i % READ_BATCH === 0) await yieldToEventLoop();
    const rel = paths[i] as string;
    const read = readBounded(under(root, rel), maxFileBytes, slab);
    if ("content" in read) files.push({ path: rel, content: read.content });
    else if (read.size !== undefined) fileError(rel, "file-too-large", fileTooLarge(read.size, maxFileBytes));
    else fileError(rel, "unreadable-file", `cannot read the file (${read.reason})`);
  }
  return { files, errors };
}

/**
 * The absolute path of `rel` ('/'-separated, relative, made of names a listing gave: no '.',
 * '..' or empty parts) under `root`: concatenated where '/' is the separator, which at 5,000
 * files is cheaper than `join` normalising each path again.
 */
function under(root: string, rel: string): string {
  return sep === "/" ? `${root}/${rel}` : join(root, ...rel.split("/"));
}

/**
 * The refusal the folder walk gives for the file at `path` ('/'-separated, relative), for a
 * file found another way (a Git tree listing), so that both refuse alike: a folder on the way
 * whose name ends in white space or that lies deeper than MAX_FOLDER_DEPTH, or a manifest name
 * ending in white space. Undefined when the walk would read the file or skip it silently.
 */
export function refusedTreePath(path: string): ManifestError | undefined {
  const parts = path.split("/");
  if (parts.some((part) => part.startsWith("."))) return undefined;
  for (let i = 0; i < parts.length - 1; i++) {
    const folder = parts.slice(0, i + 1).join("/");
    const name = parts[i] ?? "";
    if (name !== name.trimEnd()) return suspiciousName(folder);
    if (i + 1 > MAX_FOLDER_DEPTH) return tooDeep(folder);
  }
  const name = parts[parts.length - 1] ?? "";
  return name !== name.trimEnd() && isManifestPath(name.trimEnd()) ? suspiciousName(path) : undefined;
}

function suspiciousName(
  rel: string,
  why = "ends with white space, which Windows and most tools cannot handle",
): ManifestError {
  const message = `the name ${why}; rename it`;
  return { file: rel, line: 1, column: 1, path: "", message, code: "suspicious-name" };
}

function tooDeep(rel: string): ManifestError {
  const message = `folders nested more than ${MAX_FOLDER_DEPTH} levels deep are not read`;
  return { file: rel, line: 1, column: 1, path: "", message, code: "too-deep" };
}

/** The message for a file over the size limit; shared with the in-memory parser. */
export function fileTooLarge(size: number, limit: number): string {
  return `file is ${size} bytes; the limit is ${limit} bytes per manifest file (split it into several files)`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function fileType(entry: Dirent): string {
  if (entry.isFIFO()) return "a named pipe";
  if (entry.isSocket()) return "a socket";
  if (entry.isCharacterDevice() || entry.isBlockDevice()) return "a device";
  return "not a file";
}

/** Why a symlink is refused, or undefined when its name and target make it irrelevant. */
async function symlinkProblem(
  root: string,
  link: string,
  name: string,
): Promise<{ code: ErrorCode; message: string } | undefined> {
  let target: string | undefined;
  let isDir = false;
  try {
    target = await realpath(link);
    isDir = (await stat(target)).isDirectory();
  } catch {
    target = undefined; // dangling, or a loop
  }
  if (!isDir && !isManifestPath(name)) return undefined;
  const inside = target !== undefined && (target === root || target.startsWith(root + sep));
  if (!inside)
    return {
      code: "symlink-outside",
      message: `symbolic link ${target === undefined ? "leads nowhere" : "leads outside the directory"}; it is not followed (commit the manifests themselves)`,
    };
  return {
    code: "symlink-refused",
    message: `symbolic links are not followed (the Git source ignores them too); commit the ${isDir ? "folder" : "file"} itself, or delete the link`,
  };
}

/** Bytes per slab: small enough that a few files kept from one (a parse cache) hold little else. */
const SLAB_BYTES = 64 * 1024;

/**
 * Consecutive files' bytes share one buffer, a view each, instead of a buffer per file: an
 * ArrayBuffer costs an allocation outside the heap and bookkeeping at every scavenge, which at
 * 5,000 small files was a visible part of reading them.
 */
class Slab {
  #buffer = new Uint8Array(0);
  #used = 0;
  /** Room for `bytes` bytes; only `commit` makes the bytes written there the caller's. */
  room(bytes: number): Uint8Array {
    if (this.#buffer.length - this.#used < bytes) {
      this.#buffer = new Uint8Array(Math.max(SLAB_BYTES, bytes));
      this.#used = 0;
    }
    // A view made directly: `subarray` looks up a species constructor each time.
    return new Uint8Array(this.#buffer.buffer, this.#used, bytes);
  }
  /** Keeps the first `bytes` bytes of the last `room`. */
  commit(room: Uint8Array, bytes: number): Uint8Array {
    if (room.buffer === this.#buffer.buffer) this.#used += bytes;
    return new Uint8Array(room.buffer, room.byteOffset, bytes);
  }
}

/**
 * Reads at most `limit + 1` bytes. O_NOFOLLOW: if the file was swapped for a symlink after the
 * folder listing, the open fails instead of following it; O_NONBLOCK: if it was swapped for a
 * FIFO, the open does not wait for a writer (fstat then refuses it).
 */
function readBounded(
  path: string,
  limit: number,
  slab: Slab,
): { content: Uint8Array } | { size: number; reason?: undefined } | { size?: undefined; reason: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return { reason: (err as NodeJS.ErrnoException).code ?? "error" };
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) return { reason: "not a regular file" };
    if (info.size > limit) return { size: info.size };
    let buffer = slab.room(Math.min(info.size, limit) + 1);
    let filled = 0;
    for (;;) {
      if (filled === buffer.length) {
        if (filled > limit) return { size: filled }; // grew since stat, past the limit
        const bigger = new Uint8Array(Math.min(buffer.length * 2, limit + 1));
        bigger.set(buffer);
        buffer = bigger;
      }
      const asked = buffer.length - filled;
      const bytesRead = readSync(fd, buffer, filled, asked, null);
      filled += bytesRead;
      // A short read once the size fstat gave is in is the end of a regular file (as for
      // readFileSync): no further read just to be told so. Growth past that size fills the buffer.
      if (bytesRead === 0 || (bytesRead < asked && filled >= info.size)) break;
    }
    return { content: slab.commit(buffer, filled) };
  } catch (err) {
    return { reason: (err as NodeJS.ErrnoException).code ?? "error" };
  } finally {
    closeSync(fd);
  }
}
