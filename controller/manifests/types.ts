/**
 * The typed desired state the manifest loader produces, and the errors it reports instead.
 * Spec types come from `types.generated.ts`, generated from crds/ so they cannot drift apart.
 */
import type {
  ADGroupSpec,
  GroupManagedServiceAccountSpec,
  HostBindingSpec,
  Kind,
  KdsRootKeySpec,
  ManagedServiceAccountSpec,
} from "./types.generated.ts";

export type {
  ADGroupSpec,
  FileSystemAccessBinding,
  GroupManagedServiceAccountSpec,
  GroupMemberRef,
  HostBindingSpec,
  IisAppPoolBinding,
  Kind,
  KdsRootKeySpec,
  ManagedServiceAccountSpec,
  PrincipalRef,
  ScheduledTaskBinding,
  ServiceBinding,
} from "./types.generated.ts";

/** Where something is written: the file relative to the repository directory ('/'-separated), 1-based line and column. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/**
 * One validated resource of the repository. `spec` has every schema default applied, so
 * defaulted fields are always present. `source` is where the resource's document starts.
 */
export interface Resource<K extends Kind, S> {
  kind: K;
  name: string;
  spec: S;
  source: SourceLocation;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A gMSA resource. */
export type GmsaResource = Resource<"GroupManagedServiceAccount", GroupManagedServiceAccountSpec>;
/** A standalone managed service account (sMSA) resource, restricted to one computer. */
export type SmsaResource = Resource<"ManagedServiceAccount", ManagedServiceAccountSpec>;
/** An AD group resource. */
export type GroupResource = Resource<"ADGroup", ADGroupSpec>;
/** A host binding resource. */
export type BindingResource = Resource<"HostBinding", HostBindingSpec>;
/** The KDS root key resource. */
export type KdsRootKeyResource = Resource<"KdsRootKey", KdsRootKeySpec>;

/**
 * Everything a repository revision asks for, after schema validation, defaults, reference
 * resolution and lint all passed: every reference names a resource in these maps, there is no
 * group nesting cycle, and every binding's host may retrieve its account's password (or an
 * external group might allow it). Maps are keyed by `metadata.name`.
 */
export interface DesiredState {
  gmsas: ReadonlyMap<string, GmsaResource>;
  /** Standalone managed service accounts, each restricted to the computer it names. */
  smsas: ReadonlyMap<string, SmsaResource>;
  groups: ReadonlyMap<string, GroupResource>;
  bindings: ReadonlyMap<string, BindingResource>;
  /** KDS root keys: at most one that asks for "any key", the others by keyId or their own effectiveTime. */
  kdsRootKeys: ReadonlyMap<string, KdsRootKeyResource>;
}

/**
 * One problem in the manifests, positioned like a compiler error: at the offending key or
 * value (a missing field points at its parent). `path` is a dot path inside the document such
 * as `spec.members[1].group` ("" for file-level problems). `code` is stable and meant for
 * machines (see `ErrorCode`); `message` is for people and never echoes long values whole.
 */
export interface ManifestError {
  file: string;
  line: number;
  column: number;
  path: string;
  message: string;
  code: ErrorCode;
}

/** Every error code the loader reports. Stable: tools may match on them. */
export type ErrorCode =
  // Files and YAML.
  | "file-too-large"
  | "invalid-utf8"
  | "unreadable-file"
  | "unreadable-folder"
  | "suspicious-name"
  | "symlink-outside"
  | "symlink-refused"
  | "yaml-syntax"
  | "duplicate-key"
  | "alias-refused"
  | "directive-refused"
  | "tag-refused"
  | "too-deep"
  | "not-a-resource"
  // Schema.
  | "unknown-api-version"
  | "unknown-kind"
  | "unknown-field"
  | "missing-field"
  | "wrong-type"
  | "invalid-value"
  | "invalid-format"
  | "too-long"
  | "too-short"
  | "out-of-range"
  | "too-many-items"
  | "too-few-items"
  | "exactly-one"
  | "duplicate-item"
  | "invalid-account-name"
  // Across resources.
  | "duplicate-name"
  | "duplicate-account-name"
  | "duplicate-spn"
  | "duplicate-kds-root-key"
  | "conflicting-fields"
  | "dangling-reference"
  | "group-cycle"
  | "weak-encryption"
  | "empty-encryption"
  | "unconstrained-delegation"
  | "listed-and-removed"
  | "host-cannot-retrieve"
  | "smsa-not-a-reader"
  | "smsa-other-host";

/**
 * The loader's result: the typed desired state, or every error found (sorted by file, line,
 * column). `paths` lists the manifest files read, sorted (files refused before reading, such as
 * symlinks, appear only in `errors`); `files` is their number.
 */
export type LoadResult =
  | { ok: true; desired: DesiredState; files: number; paths: string[] }
  | { ok: false; errors: ManifestError[]; paths: string[] };

/** One manifest file given in memory: its path relative to the repository ('/'-separated) and its bytes. */
export interface ManifestFile {
  path: string;
  content: Uint8Array;
  /**
   * A name of the content that changes whenever the bytes do (Git's blob id), when the source
   * already has one: the parse cache then keys the file by it instead of hashing the bytes.
   */
  id?: string;
}

/** Limits applied while loading. */
export interface LoadOptions {
  /** Files larger than this are reported and not read. Default 1 MiB. */
  maxFileBytes?: number;
}

/** The default per-file size limit: 1 MiB, far above any hand-written manifest. */
export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
