/**
 * The directory read of a cycle, begun while the source syncs. A new revision costs a fetch, the
 * reading and the parsing of the files that changed; reading AD costs round trips to the DC (and,
 * on Samba, a uSNChanged range search after any write). Done one after the other they add up in
 * commit → applied; done together, the cycle waits for the longer of the two.
 *
 * The read is made for the revision in force when the cycle starts. It is the very read the new
 * revision needs when both reference the same objects: what an observe reads depends on the
 * desired state only through the names it references (observe.ts, `referencedNames`). When they
 * differ, the pass reads again for the new revision (the incremental observer then reads in full,
 * as it always did when the references change). The observation is older by at most the fetch,
 * which changes nothing a level-based loop relies on: what changes in AD after the watermark was
 * read is above it, and read by the next cycle.
 */
import type { DesiredState } from "../manifests/index.ts";
import type { IncrementalObserver } from "./incremental.ts";
import type { ObservedDirectory } from "./model.ts";
import { referencedNames } from "./observe.ts";
import type { DirectorySession, OpenDirectory } from "./pass.ts";
import { scopeOf } from "./pass.ts";

type Scope = { baseDn: string; configDn: string };
type Observe = (desired: DesiredState, session: DirectorySession, scope: Scope) => Promise<ObservedDirectory>;

/** What a cycle's pass uses instead of opening and observing itself. */
export interface EarlyRead {
  /** The pass's opener: the session the read used (once), answering the rootDSE the read got. */
  readonly open: OpenDirectory;
  /** The pass's observe: the read's picture when `desired` references what it was read for; else a read now. */
  readonly observe: Observe;
  /** The cycle ends before its pass (the controller stops): the session is closed once the read settles. */
  discard(): void;
}

/** What {@link beginRead} reads with. */
export interface EarlyReadInput {
  readonly open: OpenDirectory;
  /** The revision in force when the cycle starts. */
  readonly desired: DesiredState;
  /** The domain's base DN; default: the rootDSE's defaultNamingContext. */
  readonly baseDn: string | undefined;
  readonly observe: Observe;
  /** The loop's incremental observer, whose references of a revision are computed once. */
  readonly observer: IncrementalObserver | undefined;
}

/** The names `desired` references in `scope`, as one string: equal strings, the same reads. */
const referencesOf = (observer: IncrementalObserver | undefined, desired: DesiredState, scope: Scope): string =>
  observer?.references(desired, scope) ?? JSON.stringify([scope, referencedNames(desired)]);

/** Opens a session and observes AD for the revision in force, at once. */
export function beginRead(input: EarlyReadInput, signal?: AbortSignal): EarlyRead {
  const { open, desired, baseDn, observe, observer } = input;
  const session = open(signal);
  const read = session.then(async (s) => {
    const dse = await s.rootDse();
    const scope = scopeOf(dse, baseDn);
    const observed = await observe(desired, s, scope);
    // Taken now, while the observer holds this revision's references: asking for them after the
    // new revision's would make its one-entry cache walk both revisions again.
    return { dse, observed, references: referencesOf(observer, desired, scope) };
  });
  // The pass awaits it and reports its failure; until then it must not count as unhandled.
  read.catch(() => undefined);
  let opened = false;
  let observed = false;
  return {
    open: async (s) => {
      if (opened) return open(s);
      opened = true;
      const early = await session;
      return { ...early, rootDse: async () => (await read).dse };
    },
    observe: async (d, s, scope) => {
      if (!observed) {
        observed = true;
        const early = await read;
        if (d === desired || referencesOf(observer, d, scope) === early.references) return early.observed;
      }
      return observe(d, s, scope);
    },
    discard: () => {
      if (opened) return;
      opened = true;
      void session
        .then((s) =>
          read.then(
            () => s.close(),
            () => s.close(),
          ),
        )
        .catch(() => undefined);
    },
  };
}

/** Awaits `step` (the source's sync); when it fails, the read's session is released. */
export async function whileReading<T>(early: EarlyRead | undefined, step: Promise<T>): Promise<T> {
  try {
    return await step;
  } catch (error) {
    early?.discard();
    throw error;
  }
}
