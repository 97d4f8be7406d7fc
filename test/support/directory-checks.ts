/**
 * Shorthands for integration tests of the model against one test DC: reading back what the
 * controller wrote with ldapsearch (the independent path), changing AD by hand with ldapmodify,
 * and throwaway manifest repositories that hold a KDS root key.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSid } from "../../controller/directory/index.ts";
import { ldifValues } from "../harness/ldif.ts";
import type { Dc } from "../harness/samba.ts";

/** The document header every manifest starts with. */
export const HEADER = "apiVersion: gmsa-gitops.io/v1alpha1\n";

/** ldapsearch over the whole domain, ldapmodify of LDIF lines, and an object's SID; `dc` is read at each call. */
export function directoryChecks(dc: () => Dc): {
  search: (filter: string, ...attributes: string[]) => Promise<string>;
  modify: (...lines: string[]) => Promise<void>;
  sidOf: (filter: string) => Promise<string>;
} {
  const search = async (filter: string, ...attributes: string[]): Promise<string> =>
    dc().ldap("ldapsearch", ["-b", dc().baseDn, "-s", "sub", filter, ...attributes]);
  return {
    search,
    modify: async (...lines) => void (await dc().ldap("ldapmodify", [], { input: [...lines, ""].join("\n") })),
    sidOf: async (filter) => parseSid(ldifValues(await search(filter, "objectSid"), "objectSid")[0]!),
  };
}

/** Temporary repositories of one manifest file plus a KdsRootKey; `removeAll` in afterAll. */
export function manifestRepos(prefix: string): { repo: (manifests: string) => string; removeAll: () => void } {
  const temp: string[] = [];
  return {
    repo(manifests) {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      temp.push(dir);
      writeFileSync(join(dir, "kds.yaml"), `${HEADER}kind: KdsRootKey\nmetadata: { name: default }\nspec: {}\n`);
      writeFileSync(join(dir, "resources.yaml"), manifests);
      return dir;
    },
    removeAll: () => temp.forEach((d) => rmSync(d, { recursive: true, force: true })),
  };
}
