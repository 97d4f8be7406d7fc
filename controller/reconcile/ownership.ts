/**
 * The identity of the objects the controller creates: the tag that ties an object to its
 * repository resource, so that an object whose account name changed is found and renamed
 * instead of recreated (docs/decisions/renames.md). Whether an object is ours is decided by
 * diff/ownership.ts (the keyed marker), never here.
 */
import type { ResourceRef } from "./model.ts";

/** The value of adminDisplayName on an object created for `resource`: its kind and metadata.name. */
export function resourceTag(resource: ResourceRef): string {
  return `gmsa-gitops:${resource.kind}/${resource.name}`;
}
