/**
 * Cross-resource checks: what no single document's schema can see. Every check is one pass
 * over the resources with maps keyed by name (O(n)); group closure is computed once per
 * account and memoised.
 *
 * To avoid cascades, a reference is only reported as dangling when the repository's names of
 * that kind are fully known: a resource that exists but is invalid, or a file that could not be
 * read at all, silences references into it (its own errors are already reported).
 */
import { formatPath, listOr, quote, suggest } from "./text.ts";
import { reservedNameProblem } from "./windows-path.ts";
import type {
  BindingResource,
  ErrorCode,
  GmsaResource,
  GroupResource,
  Kind,
  SmsaResource,
  ManifestError,
  PrincipalRef,
  GroupMemberRef,
} from "./types.ts";
import { locate } from "./yaml.ts";
import type { PathSegment, YamlDocument } from "./yaml.ts";

/**
 * A valid resource and the document it came from, for error positions. The document is
 * obtained on demand (re-parsed from the file's text) so that syntax trees are not all kept in
 * memory for the rare resource that has a cross-resource error.
 */
export interface Checked<R> {
  resource: R;
  doc: () => YamlDocument;
}

/** What lint needs: the valid resources (first of each name), and what is known about the rest. */
export interface LintInput {
  gmsas: ReadonlyMap<string, Checked<GmsaResource>>;
  smsas: ReadonlyMap<string, Checked<SmsaResource>>;
  groups: ReadonlyMap<string, Checked<GroupResource>>;
  bindings: ReadonlyMap<string, Checked<BindingResource>>;
  /** Names that exist in the repository but whose resource is invalid, per kind. */
  invalidNames: ReadonlyMap<Kind, ReadonlySet<string>>;
  /** Kinds whose list of names may be incomplete because a document could not be read. */
  incomplete: ReadonlySet<Kind>;
}

/** Weak Kerberos encryption types: refused unless the account opts in. */
const WEAK = new Set(["RC4", "DES"]);

/** Runs every cross-resource check and appends its errors. */
export function lint(input: LintInput, errors: ManifestError[]): void {
  const report = (doc: YamlDocument, path: PathSegment[], code: ErrorCode, message: string): void => {
    const pos = locate(doc, path, "value");
    const p = formatPath(path);
    errors.push({ file: doc.file, line: pos.line, column: pos.column, path: p, message: `${p}: ${message}`, code });
  };
  const where = (c: Checked<unknown>, path: PathSegment[]): string => {
    const doc = c.doc();
    const pos = locate(doc, path, "value");
    return `${doc.file}:${pos.line}`;
  };

  // Whether a reference to `name` of `kind` that matched no valid resource is an error.
  const dangling = (kind: Kind, name: string): boolean =>
    !input.incomplete.has(kind) && !(input.invalidNames.get(kind)?.has(name) ?? false);

  // sAMAccountName is unique in the domain and compared case-insensitively. A gMSA's value
  // gets a '$' appended, but a group and a gMSA with the same name would still be confusing
  // in every tool that shows names, so accountName is unique across both kinds.
  const accountNames = new Map<string, { c: Checked<GmsaResource | GroupResource | SmsaResource> }>();
  const spns = new Map<string, { c: Checked<GmsaResource | SmsaResource>; index: number }>();
  for (const c of [...input.gmsas.values(), ...input.smsas.values(), ...input.groups.values()]) {
    const key = c.resource.spec.accountName.toLowerCase();
    const first = accountNames.get(key);
    if (first) {
      const r = first.c.resource;
      report(
        c.doc(),
        ["spec", "accountName"],
        "duplicate-account-name",
        `${quote(c.resource.spec.accountName)} is already the accountName of ${r.kind} "${r.name}" (${where(first.c, ["spec", "accountName"])}); AD compares sAMAccountNames case-insensitively`,
      );
    } else accountNames.set(key, { c });
  }

  // sMSAs share the account rules that do not involve password readers: SPNs, encryption types.
  for (const c of input.smsas.values()) {
    const spec = c.resource.spec;
    spnAndEncryption(c, spns, report, where);
    listedAndRemoved(
      c,
      report,
      "servicePrincipalNames",
      spec.servicePrincipalNames.map((spn) => spn.toLowerCase()),
      "removeServicePrincipalNames",
      spec.removeServicePrincipalNames.map((spn) => spn.toLowerCase()),
    );
  }
  // An sMSA's password is set by the one computer it is installed on (Install-ADServiceAccount)
  // and is never served by the DC, so an sMSA retrieving a gMSA's password makes no sense:
  // the computer that runs the service is the reader (docs/reference/managedserviceaccount.md).
  const smsaNames = new Map<string, string>();
  for (const c of input.smsas.values()) {
    smsaNames.set(c.resource.name.toLowerCase(), c.resource.name);
    smsaNames.set(c.resource.spec.accountName.toLowerCase(), c.resource.name);
  }

  for (const c of input.gmsas.values()) {
    const spec = c.resource.spec;
    spec.principalsAllowedToRetrieveManagedPassword.forEach((ref, index) => {
      const smsa = ref.serviceAccount === undefined ? undefined : smsaNames.get(ref.serviceAccount.toLowerCase());
      const host = smsa === undefined ? undefined : input.smsas.get(smsa)?.resource.spec.computer;
      if (smsa !== undefined)
        report(
          c.doc(),
          ["spec", "principalsAllowedToRetrieveManagedPassword", index, "serviceAccount"],
          "smsa-not-a-reader",
          `${quote(ref.serviceAccount ?? "")} is ManagedServiceAccount "${smsa}", a standalone account whose password only its computer knows; the computer that runs the service retrieves a gMSA's password: name it instead ({ computer: ${host ?? "NAME"} })`,
        );
    });
    spnAndEncryption(c, spns, report, where);

    // Unconstrained delegation lets the account act as any user that reaches it, anywhere.
    if (spec.trustedForDelegation === true && !spec.allowUnconstrainedDelegation)
      report(
        c.doc(),
        ["spec", "trustedForDelegation"],
        "unconstrained-delegation",
        "unconstrained delegation lets this account act as any user who reaches it, against any service; list the services in allowedToDelegateTo instead, or set allowUnconstrainedDelegation: true if it is truly needed",
      );

    const spnKeys = (spns: readonly string[]): string[] => spns.map((spn) => spn.toLowerCase());
    listedAndRemoved(
      c,
      report,
      "servicePrincipalNames",
      spnKeys(spec.servicePrincipalNames),
      "removeServicePrincipalNames",
      spnKeys(spec.removeServicePrincipalNames),
    );
    listedAndRemoved(
      c,
      report,
      "principalsAllowedToRetrieveManagedPassword",
      spec.principalsAllowedToRetrieveManagedPassword.map(refKey),
      "removePrincipals",
      spec.removePrincipals.map(refKey),
    );

    for (const list of ["principalsAllowedToRetrieveManagedPassword", "removePrincipals"] as const)
      listedTwice(c, report, list, spec[list].map(refKey));
    listedTwice(
      c,
      report,
      "principalsAllowedToDelegateToAccount",
      (spec.principalsAllowedToDelegateToAccount ?? []).map(refKey),
    );

    for (const list of ["principalsAllowedToRetrieveManagedPassword", "principalsAllowedToDelegateToAccount"] as const)
      (spec[list] ?? []).forEach((ref, index) => {
        if (ref.group !== undefined && !input.groups.has(ref.group) && dangling("ADGroup", ref.group))
          report(
            c.doc(),
            ["spec", list, index, "group"],
            "dangling-reference",
            missing("ADGroup", ref.group, input.groups.keys(), "externalGroup"),
          );
      });
  }

  for (const c of input.groups.values()) {
    const spec = c.resource.spec;
    listedAndRemoved(c, report, "members", spec.members.map(refKey), "removeMembers", spec.removeMembers.map(refKey));
    listedTwice(c, report, "members", spec.members.map(refKey));
    listedTwice(c, report, "removeMembers", spec.removeMembers.map(refKey));
    const refs: [PathSegment[], GroupMemberRef][] = spec.members.map((ref, index) => [["spec", "members", index], ref]);
    if (spec.managedBy) refs.push([["spec", "managedBy"], spec.managedBy]);
    for (const [path, ref] of refs)
      if (ref.group !== undefined && !input.groups.has(ref.group) && dangling("ADGroup", ref.group))
        report(
          c.doc(),
          [...path, "group"],
          "dangling-reference",
          missing("ADGroup", ref.group, input.groups.keys(), undefined),
        );
  }
  for (const cycle of groupCycles(input.groups)) {
    report(
      cycle.from.doc(),
      ["spec", "members", cycle.index, "group"],
      "group-cycle",
      `group nesting cycle ${cycle.names.join(" → ")}; a group cannot contain itself`,
    );
  }

  const retrievers = new Map<string, Retrievers>();
  for (const c of input.bindings.values()) {
    const spec = c.resource.spec;
    // The schema's list-map key compares paths exactly; NTFS does not.
    const folders = new Map<string, number>();
    spec.fileSystemAccess.forEach((a, index) => {
      const reserved = reservedNameProblem(a.path);
      if (reserved)
        report(c.doc(), ["spec", "fileSystemAccess", index, "path"], "invalid-format", `${quote(a.path)} ${reserved}`);
      const key = a.path.toLowerCase();
      const first = folders.get(key);
      if (first === undefined) folders.set(key, index);
      else
        report(
          c.doc(),
          ["spec", "fileSystemAccess", index, "path"],
          "duplicate-item",
          `${quote(a.path)} is the folder of fileSystemAccess[${first}] already (Windows compares paths without regard to case); list each folder once`,
        );
    });
    // An sMSA is installed on the one computer its msDS-HostServiceAccount link names
    // (Install-ADServiceAccount refuses any other: docs/active-directory.md).
    const smsa = input.smsas.get(spec.account);
    if (smsa) {
      const computer = smsa.resource.spec.computer;
      if (computer.toLowerCase() !== spec.host.toLowerCase())
        report(
          c.doc(),
          ["spec", "host"],
          "smsa-other-host",
          `ManagedServiceAccount "${spec.account}" (${where(smsa, ["metadata", "name"])}) is restricted to computer ${computer} (spec.computer, ${where(smsa, ["spec", "computer"])}); Windows installs a standalone account on that computer only, so bind it on host ${computer}, or use a GroupManagedServiceAccount to run the service on ${spec.host}`,
        );
      continue;
    }
    const account = input.gmsas.get(spec.account);
    if (!account) {
      if (dangling("GroupManagedServiceAccount", spec.account) && dangling("ManagedServiceAccount", spec.account))
        report(
          c.doc(),
          ["spec", "account"],
          "dangling-reference",
          missing(
            "GroupManagedServiceAccount or ManagedServiceAccount",
            spec.account,
            [...input.gmsas.keys(), ...input.smsas.keys()],
            undefined,
          ),
        );
      continue;
    }
    let allowed = retrievers.get(spec.account);
    if (!allowed) {
      allowed = whoCanRetrieve(account.resource.spec.principalsAllowedToRetrieveManagedPassword, input.groups);
      retrievers.set(spec.account, allowed);
    }
    if (allowed.unknown || allowed.computers.has(spec.host.toLowerCase())) continue;
    const groups = allowed.groups.slice(0, 3);
    const fix =
      groups.length > 0
        ? `add { computer: ${spec.host} } to the members of ${listOr(groups.map((g) => `ADGroup "${g}"`))}, or to its principalsAllowedToRetrieveManagedPassword`
        : `add { computer: ${spec.host} } to its principalsAllowedToRetrieveManagedPassword`;
    report(
      c.doc(),
      ["spec", "host"],
      "host-cannot-retrieve",
      `${spec.host} is not allowed to retrieve the password of GroupManagedServiceAccount "${spec.account}" (${where(account, ["metadata", "name"])}); ${fix}`,
    );
  }
}

type Report = (doc: YamlDocument, path: PathSegment[], code: ErrorCode, message: string) => void;

/**
 * SPNs unique across every account of the repository (gMSAs and sMSAs), compared without regard
 * to case as Kerberos does, and weak encryption types only with the account's opt-in.
 */
function spnAndEncryption(
  c: Checked<GmsaResource | SmsaResource>,
  spns: Map<string, { c: Checked<GmsaResource | SmsaResource>; index: number }>,
  report: Report,
  where: (c: Checked<unknown>, path: PathSegment[]) => string,
): void {
  const spec = c.resource.spec;
  spec.servicePrincipalNames.forEach((spn, index) => {
    const key = spn.toLowerCase();
    const first = spns.get(key);
    if (!first) return void spns.set(key, { c, index });
    // The same spelling twice in one account is already a duplicate-item error.
    if (first.c === c && spec.servicePrincipalNames[first.index] === spn) return;
    const at = ["spec", "servicePrincipalNames", first.index];
    const owner = first.c === c ? "this account" : `${first.c.resource.kind} "${first.c.resource.name}"`;
    report(
      c.doc(),
      ["spec", "servicePrincipalNames", index],
      "duplicate-spn",
      `SPN ${quote(spn)} is already registered by ${owner} (${where(first.c, at)}); Kerberos needs each SPN on one account only (SPNs compare case-insensitively)`,
    );
  });

  if (spec.kerberosEncryptionTypes.length === 0 && !spec.allowDefaultEncryptionTypes)
    report(
      c.doc(),
      ["spec", "kerberosEncryptionTypes"],
      "empty-encryption",
      "an empty list clears msDS-SupportedEncryptionTypes, and the DC then uses the domain's default (RC4 on many domains); list AES128 and AES256, or set allowDefaultEncryptionTypes: true if that is what you mean",
    );
  if (!spec.allowWeakEncryption) {
    spec.kerberosEncryptionTypes.forEach((type, index) => {
      if (WEAK.has(type))
        report(
          c.doc(),
          ["spec", "kerberosEncryptionTypes", index],
          "weak-encryption",
          `${type} is a weak encryption type; remove it, or set allowWeakEncryption: true if a legacy client needs it`,
        );
    });
  }
}

/**
 * How two references to the same principal compare: the kind of reference and the name, the
 * name without regard to case for AD objects (sAMAccountName), exactly for repository names.
 */
function refKey(ref: PrincipalRef | GroupMemberRef): string {
  const [kind, name] = Object.entries(ref)[0] as [string, string];
  return kind === "group" ? `group:${name}` : `${kind}:${name.toLowerCase()}`;
}

/**
 * An entry both listed and removed contradicts itself: apply would add it and take it away in
 * turn. Reported at the removal, with the listed entry's position.
 */
function listedAndRemoved(
  c: Checked<GmsaResource | GroupResource | SmsaResource>,
  report: (doc: YamlDocument, path: PathSegment[], code: ErrorCode, message: string) => void,
  listName: string,
  listed: readonly string[],
  removeName: string,
  removed: readonly string[],
): void {
  removed.forEach((key, index) => {
    const at = listed.indexOf(key);
    if (at < 0) return;
    report(
      c.doc(),
      ["spec", removeName, index],
      "listed-and-removed",
      `this entry is also listed in ${listName}[${at}] (AD compares account names and SPNs without regard to case); an entry is either wanted or removed, so drop one of the two`,
    );
  });
}

/**
 * The same principal twice in one list, under the same name or in another case: reported at the
 * second entry, with the first's index. (Under two spellings, a name and a SID, only AD can tell.)
 */
function listedTwice(
  c: Checked<GmsaResource | GroupResource>,
  report: (doc: YamlDocument, path: PathSegment[], code: ErrorCode, message: string) => void,
  listName: string,
  keys: readonly string[],
): void {
  const first = new Map<string, number>();
  keys.forEach((key, index) => {
    const at = first.get(key);
    if (at === undefined) return void first.set(key, index);
    report(
      c.doc(),
      ["spec", listName, index],
      "duplicate-item",
      `this entry names the same principal as ${listName}[${at}] (AD compares account names without regard to case); list it once`,
    );
  });
}

function missing(kind: string, name: string, names: Iterable<string>, alternative: string | undefined): string {
  const guess = suggest(name, names);
  let message = `no ${kind} named ${quote(name)} in the repository`;
  if (guess) message += `; did you mean "${guess}"?`;
  else if (alternative) message += `; for a group that exists only in AD use ${alternative}`;
  return message;
}

/** The computers (lower-case) that may retrieve a password, and the repo groups involved. */
interface Retrievers {
  computers: Set<string>;
  groups: string[];
  /** An external group (or an unreadable repo group) may allow more: only AD can answer. */
  unknown: boolean;
}

/** Breadth-first through repo groups; a visited set makes cycles harmless here. */
function whoCanRetrieve(
  principals: readonly PrincipalRef[],
  groups: ReadonlyMap<string, Checked<GroupResource>>,
): Retrievers {
  const out: Retrievers = { computers: new Set(), groups: [], unknown: false };
  const queue: string[] = [];
  const visit = (ref: PrincipalRef | GroupMemberRef): void => {
    if (ref.computer !== undefined) out.computers.add(ref.computer.toLowerCase());
    else if (ref.group !== undefined) queue.push(ref.group);
    else out.unknown = true; // externalGroup
  };
  principals.forEach(visit);
  const seen = new Set<string>();
  for (let i = 0; i < queue.length; i++) {
    const name = queue[i] as string;
    if (seen.has(name)) continue;
    seen.add(name);
    const group = groups.get(name);
    if (!group) {
      out.unknown = true; // dangling or invalid: reported on its own
      continue;
    }
    out.groups.push(name);
    group.resource.spec.members.forEach(visit);
  }
  return out;
}

interface Cycle {
  from: Checked<GroupResource>;
  index: number;
  names: string[];
}

/**
 * Every group nesting cycle, once each, found as the back edges of an iterative depth-first
 * walk (iterative: a long nesting chain must not overflow the stack).
 */
function groupCycles(groups: ReadonlyMap<string, Checked<GroupResource>>): Cycle[] {
  const state = new Map<string, "open" | "done">();
  const cycles: Cycle[] = [];
  for (const start of [...groups.keys()].sort()) {
    if (state.has(start)) continue;
    const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
    state.set(start, "open");
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { name: string; next: number };
      const group = groups.get(top.name) as Checked<GroupResource>;
      const members = group.resource.spec.members;
      if (top.next >= members.length) {
        state.set(top.name, "done");
        stack.pop();
        continue;
      }
      const index = top.next++;
      const target = members[index]?.group;
      if (target === undefined || !groups.has(target)) continue;
      const s = state.get(target);
      if (s === "open") {
        const from = stack.findIndex((f) => f.name === target);
        cycles.push({ from: group, index, names: [...stack.slice(from).map((f) => f.name), target] });
      } else if (s === undefined) {
        state.set(target, "open");
        stack.push({ name: target, next: 0 });
      }
    }
  }
  return cycles;
}
