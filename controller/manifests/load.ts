/**
 * Reads a folder of manifests from disk (through `readManifestTree`, the walk the controller's
 * local source shares) and hands the bytes to `parseManifests`.
 */
import { parseManifests } from "./parse.ts";
import { readManifestTree } from "./tree.ts";
import type { LoadOptions, LoadResult } from "./types.ts";

/**
 * Loads every manifest under `dir` (nested folders, multi-document files) and validates them
 * as `parseManifests` does. File paths in the result are relative to `dir`, '/'-separated.
 * Throws only when `dir` itself is missing or not a folder; every problem inside it is a
 * ManifestError (an unreadable folder at `PATH:1:1`).
 */
export async function loadManifests(dir: string, options: LoadOptions = {}): Promise<LoadResult> {
  const tree = await readManifestTree(dir, options.maxFileBytes);
  return parseManifests(tree.files, options, tree.errors);
}
