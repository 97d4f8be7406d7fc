/**
 * The manifests module: YAML files → validated, typed desired state, or every error with its
 * file, line and column. See parse.ts for the steps and load.ts for how a directory is read.
 */
export { loadManifests } from "./load.ts";
export { ParseCache, parseManifests } from "./parse.ts";
export { fileTooLarge, isManifestPath, MAX_FOLDER_DEPTH, readManifestTree, refusedTreePath } from "./tree.ts";
export type { ManifestTree } from "./tree.ts";
export { API_VERSION, KINDS } from "./types.generated.ts";
export { DEFAULT_MAX_FILE_BYTES } from "./types.ts";
export { manifestWarnings } from "./warnings.ts";
export type { ManifestWarning } from "./warnings.ts";
export type * from "./types.ts";
