/**
 * Reads a directory of manifests from disk and hands the bytes to `parseManifests`.
 *
 * Symbolic links are never followed, whether they lead inside the directory or out of it: a
 * link to a `.yaml`/`.yml` name or to a directory is reported as an error (`symlink-outside`
 * when it resolves outside the directory or nowhere, `symlink-refused` otherwise). The Git
 * source never reads symlinks either (a tree entry of mode 120000 is not a file), so what
 * `validate` accepts is exactly what the controller will see. Links with other names are
 * ignored like any other non-manifest file.
 *
 * Entries whose name starts with '.' (`.git`, `.github`) are skipped. Files over the size
 * limit are reported after reading at most limit + 1 bytes; FIFOs and devices are never opened.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { join, relative, sep } from "node:path";
import { fileTooLarge, isManifestPath, parseWith } from "./parse.ts";
import { DEFAULT_MAX_FILE_BYTES } from "./types.ts";
import type { ErrorCode, LoadOptions, LoadResult, ManifestError, ManifestFile } from "./types.ts";

/**
 * Files read per turn of the event loop. Reads are synchronous (four syscalls per file without
 * a thread-pool round trip each: several times cheaper for thousands of small files), in
 * batches so that a large repository never blocks the controller's HTTP server for long.
 */
const READ_BATCH = 200;

/**
 * Loads every manifest under `dir` (nested folders, multi-document files) and validates them
 * as `parseManifests` does. File paths in the result are relative to `dir`, '/'-separated.
 * Throws only when `dir` itself cannot be read; every problem inside it is a ManifestError.
 */
export async function loadManifests(dir: string, options: LoadOptions = {}): Promise<LoadResult> {
  const limit = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const root = await realpath(dir);
  const paths: string[] = [];
  const errors: ManifestError[] = [];
  const fileError = (rel: string, code: ErrorCode, message: string): void => {
    errors.push({ file: rel, line: 1, column: 1, path: "", message, code });
  };

  const walk = async (abs: string): Promise<void> => {
    const entries = await readdir(abs, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const full = join(abs, entry.name);
      const rel = toRel(root, full);
      if (entry.isSymbolicLink()) {
        const problem = await symlinkProblem(root, full, entry.name);
        if (problem) fileError(rel, problem.code, problem.message);
      } else if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && isManifestPath(entry.name)) paths.push(rel);
    }
  };
  await walk(root);

  const files: ManifestFile[] = [];
  for (let i = 0; i < paths.length; i++) {
    if (i > 0 && i % READ_BATCH === 0) await yieldToEventLoop();
    const rel = paths[i] as string;
    const read = readBounded(join(root, ...rel.split("/")), limit);
    if ("content" in read) files.push({ path: rel, content: read.content });
    else if (read.size !== undefined) fileError(rel, "file-too-large", fileTooLarge(read.size, limit));
    else fileError(rel, "unreadable-file", `cannot read the file (${read.reason})`);
  }
  return parseWith(files, options, errors);
}

function toRel(root: string, full: string): string {
  return relative(root, full).split(sep).join("/");
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

/**
 * Reads at most `limit + 1` bytes. O_NOFOLLOW: if the file was swapped for a symlink after the
 * directory listing, the open fails instead of following it.
 */
function readBounded(
  path: string,
  limit: number,
): { content: Uint8Array } | { size: number; reason?: undefined } | { size?: undefined; reason: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    return { reason: (err as NodeJS.ErrnoException).code ?? "error" };
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) return { reason: "not a regular file" };
    if (info.size > limit) return { size: info.size };
    let buffer = new Uint8Array(Math.min(info.size, limit) + 1);
    let filled = 0;
    for (;;) {
      if (filled === buffer.length) {
        if (filled > limit) return { size: filled }; // grew since stat, past the limit
        const bigger = new Uint8Array(Math.min(buffer.length * 2, limit + 1));
        bigger.set(buffer);
        buffer = bigger;
      }
      const bytesRead = readSync(fd, buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { content: buffer.subarray(0, filled) };
  } catch (err) {
    return { reason: (err as NodeJS.ErrnoException).code ?? "error" };
  } finally {
    closeSync(fd);
  }
}
