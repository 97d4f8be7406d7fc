/**
 * Ownership and identity of the objects the controller creates: the one place that decides
 * whether an observed object is owned (the marker's format may change; only this function
 * reads it), and the key that ties an object to its repository resource, so that an object
 * whose account name changed is found and renamed instead of recreated
 * (docs/decisions/renames.md).
 */
import type { ResourceRef } from "./model.ts";

/** Whether the controller owns the object: its marker is the one this controller writes. */
export function isOwned(observed: { readonly adminDescription?: string | undefined }, marker: string): boolean {
  return observed.adminDescription === marker;
}

/** The value of adminDisplayName on an object created for `resource`: its kind and metadata.name. */
export function resourceKey(resource: ResourceRef): string {
  return `gmsa-gitops:${resource.kind}/${resource.name}`;
}
