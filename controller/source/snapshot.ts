/** What a source delivers: the manifest bytes of one revision. Shared by the Git and local sources. */
import type { ManifestError } from "../manifests/index.ts";

/** One manifest file: its path relative to the source's sub-path ('/'-separated) and its raw bytes. */
export interface SnapshotFile {
  path: string;
  content: Uint8Array;
  /** Git's blob id of the content (Git source only). */
  id?: string;
}

/**
 * The manifests of one revision. `revision` is a commit SHA for Git, or `local:<sha256>` of
 * the files for a local directory; equal revisions mean equal files. Files are sorted by path.
 */
export interface Snapshot {
  revision: string;
  files: SnapshotFile[];
  fetchedAt: Date;
  /**
   * Problems found while reading the files (an unreadable folder, a refused symlink, a file
   * too large to read), as `validate` reports them: the revision is rejected with them.
   */
  fileErrors?: ManifestError[];
  /** The commit message (Git only). */
  message?: string | undefined;
  /** The commit author as `Name <email>` (Git only). */
  author?: string | undefined;
}
