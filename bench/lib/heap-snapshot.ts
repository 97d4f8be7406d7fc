// A V8 heap snapshot (.heapsnapshot, as written by --heapsnapshot-signal or v8.writeHeapSnapshot)
// summed up in a few lines: self size and count by constructor, and the objects that retain the
// most (retained size from the dominator tree, computed here: an object's retained size is what
// would be freed with it). Usage: node bench/lib/heap-snapshot.ts FILE [TOP [CONSTRUCTOR...]]
// (each CONSTRUCTOR named, e.g. Controller, is expanded into what its fields retain)
import { readFileSync } from "node:fs";

interface RawSnapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: readonly string[];
      readonly node_types: readonly [readonly string[], ...unknown[]];
      readonly edge_fields: readonly string[];
      readonly edge_types: readonly [readonly string[], ...unknown[]];
    };
  };
  readonly nodes: readonly number[];
  readonly edges: readonly number[];
  readonly strings: readonly string[];
}

/** One line of a summary: what, how many, self bytes, retained bytes (retainers only). */
export interface HeapLine {
  readonly name: string;
  readonly count: number;
  readonly selfBytes: number;
  readonly retainedBytes: number;
}

export interface HeapSummary {
  readonly totalBytes: number;
  readonly nodes: number;
  /** By constructor (objects) or node type (strings, code, arrays, ...), largest self size first. */
  readonly byConstructor: readonly HeapLine[];
  /** Single objects by retained size, largest first, each named by its retaining path's last edges. */
  readonly retainers: readonly HeapLine[];
  /**
   * The dominator tree under the objects named in `expand` (e.g. "Controller"): what each of their
   * fields holds on its own, indented by depth, down to `minBytes`.
   */
  readonly tree: readonly HeapLine[];
}

/** What to expand into a tree of what it retains, and down to what size. */
export interface TreeOptions {
  readonly expand: readonly string[];
  readonly minBytes: number;
  readonly depth: number;
}

/** Reads a snapshot file and sums it up; `top` lines of each list. */
export function summarizeHeapSnapshot(
  file: string,
  top = 15,
  tree: TreeOptions = { expand: [], minBytes: 0, depth: 0 },
): HeapSummary {
  const raw = JSON.parse(readFileSync(file, "utf8")) as RawSnapshot;
  const { meta } = raw.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const fType = meta.node_fields.indexOf("type");
  const fName = meta.node_fields.indexOf("name");
  const fSelf = meta.node_fields.indexOf("self_size");
  const fEdges = meta.node_fields.indexOf("edge_count");
  const eType = meta.edge_fields.indexOf("type");
  const eName = meta.edge_fields.indexOf("name_or_index");
  const eTo = meta.edge_fields.indexOf("to_node");
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const weak = edgeTypes.indexOf("weak");
  const stringOrNumberEdge = new Set(["element", "hidden"].map((t) => edgeTypes.indexOf(t)));
  const { nodes, edges, strings } = raw;
  const n = nodes.length / nf;

  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) firstEdge[i + 1] = firstEdge[i]! + nodes[i * nf + fEdges]! * ef;
  const self = (i: number): number => nodes[i * nf + fSelf]!;
  const typeOf = (i: number): string => nodeTypes[nodes[i * nf + fType]!] ?? "?";
  const nameOf = (i: number): string => {
    const type = typeOf(i);
    const name = strings[nodes[i * nf + fName]!] ?? "?";
    return type === "object" || type === "native" ? name : `(${type})`;
  };

  // Depth-first postorder from the root (node 0) over strong edges, iteratively.
  const order = new Int32Array(n).fill(-1);
  const post: number[] = [];
  const stack: number[] = [0];
  const cursor = new Uint32Array(n);
  order[0] = -2;
  for (let i = 0; i < n; i++) cursor[i] = firstEdge[i]!;
  while (stack.length > 0) {
    const v = stack[stack.length - 1]!;
    if (cursor[v]! < firstEdge[v + 1]!) {
      const e = cursor[v]!;
      cursor[v] = e + ef;
      if (edges[e + eType] === weak) continue;
      const w = edges[e + eTo]! / nf;
      if (order[w] !== -1) continue;
      order[w] = -2;
      stack.push(w);
    } else {
      stack.pop();
      order[v] = post.length;
      post.push(v);
    }
  }
  // Predecessors over strong edges among reachable nodes (compressed rows).
  const predCount = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (order[v]! < 0) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef)
      if (edges[e + eType] !== weak) predCount[edges[e + eTo]! / nf + 1]!++;
  }
  for (let i = 0; i < n; i++) predCount[i + 1]! += predCount[i]!;
  const preds = new Uint32Array(predCount[n]!);
  const fill = predCount.slice(0, n);
  for (let v = 0; v < n; v++) {
    if (order[v]! < 0) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += ef)
      if (edges[e + eType] !== weak) preds[fill[edges[e + eTo]! / nf]!++] = v;
  }
  // Dominators (Cooper, Harvey and Kennedy's iterative algorithm), in postorder numbers.
  const root = order[0];
  const idom = new Int32Array(post.length).fill(-1);
  idom[root] = root;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (a < b) a = idom[a]!;
      while (b < a) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let p = post.length - 1; p >= 0; p--) {
      if (p === root) continue;
      const v = post[p]!;
      let d = -1;
      for (let k = predCount[v]!; k < predCount[v + 1]!; k++) {
        const q = order[preds[k]!]!;
        if (q < 0 || idom[q] === -1) continue;
        d = d === -1 ? q : intersect(q, d);
      }
      if (d !== -1 && idom[p] !== d) {
        idom[p] = d;
        changed = true;
      }
    }
  }
  // Retained size: postorder visits every node before its dominator.
  const retained = new Float64Array(post.length);
  for (let p = 0; p < post.length; p++) {
    retained[p]! += self(post[p]!);
    if (p !== root) retained[idom[p]!]! += retained[p]!;
  }

  const byName = new Map<string, { count: number; selfBytes: number }>();
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += self(i);
    const line = byName.get(nameOf(i)) ?? { count: 0, selfBytes: 0 };
    line.count++;
    line.selfBytes += self(i);
    byName.set(nameOf(i), line);
  }
  const label = (e: number): string =>
    stringOrNumberEdge.has(edges[e + eType]!) ? `[${edges[e + eName]}]` : (strings[edges[e + eName]!] ?? "?");
  /** The edge holding v: from its dominator when direct, else from its first non-synthetic retainer. */
  const edgeInto = (p: number): string => {
    const v = post[p]!;
    const d = post[idom[p]!]!;
    for (let e = firstEdge[d]!; e < firstEdge[d + 1]!; e += ef)
      if (edges[e + eTo]! / nf === v) return `${nameOf(d)}.${label(e)}`;
    for (let k = predCount[v]!; k < predCount[v + 1]!; k++) {
      const u = preds[k]!;
      if (nameOf(u).startsWith("(")) continue;
      for (let e = firstEdge[u]!; e < firstEdge[u + 1]!; e += ef)
        if (edges[e + eTo]! / nf === v && edges[e + eType] !== weak) return `${nameOf(u)}.${label(e)}`;
    }
    return `${nameOf(d)} → …`;
  };
  const synthetic = new Set(["(synthetic)", "(hidden)"]);
  const candidates = [...post.keys()]
    .filter((p) => p !== root && !synthetic.has(nameOf(post[p]!)))
    .sort((a, b) => retained[b]! - retained[a]!)
    .slice(0, top);
  // Children in the dominator tree, for the expanded objects.
  const lines: HeapLine[] = [];
  if (tree.expand.length > 0) {
    const children = new Map<number, number[]>();
    for (let p = 0; p < post.length; p++) {
      if (p === root || retained[p]! < tree.minBytes) continue;
      const list = children.get(idom[p]!) ?? [];
      list.push(p);
      children.set(idom[p]!, list);
    }
    const walk = (p: number, depth: number): void => {
      lines.push({
        name: `${"  ".repeat(depth)}${nameOf(post[p]!)} (${edgeInto(p)})`,
        count: 1,
        selfBytes: self(post[p]!),
        retainedBytes: retained[p]!,
      });
      const big = (children.get(p) ?? []).sort((a, b) => retained[b]! - retained[a]!);
      if (depth < tree.depth && big.length > 0) {
        for (const c of big) walk(c, depth + 1);
        return;
      }
      // A leaf of the printed tree: what it is made of, by constructor or type.
      const made = new Map<string, number>();
      const stack = [p];
      while (stack.length > 0) {
        const q = stack.pop()!;
        made.set(nameOf(post[q]!), (made.get(nameOf(post[q]!)) ?? 0) + self(post[q]!));
        for (const c of allChildren.get(q) ?? []) stack.push(c);
      }
      const parts = [...made].sort((a, b) => b[1] - a[1]).slice(0, 6);
      lines.push({
        name: `${"  ".repeat(depth + 1)}made of ${parts.map(([k, v]) => `${k} ${(v / 1024 / 1024).toFixed(1)}`).join(", ")} (MiB)`,
        count: 0,
        selfBytes: 0,
        retainedBytes: retained[p]!,
      });
    };
    const allChildren = new Map<number, number[]>();
    for (let p = 0; p < post.length; p++) {
      if (p === root) continue;
      const list = allChildren.get(idom[p]!) ?? [];
      list.push(p);
      allChildren.set(idom[p]!, list);
    }
    const roots = [...post.keys()].filter(
      (p) => tree.expand.includes(nameOf(post[p]!)) && retained[p]! >= tree.minBytes,
    );
    for (const p of roots) walk(p, 0);
  }
  return {
    tree: lines,
    totalBytes: total,
    nodes: n,
    byConstructor: [...byName]
      .map(([name, v]) => ({ name, count: v.count, selfBytes: v.selfBytes, retainedBytes: 0 }))
      .sort((a, b) => b.selfBytes - a.selfBytes)
      .slice(0, top),
    retainers: candidates.map((p) => ({
      name: `${nameOf(post[p]!)} (${edgeInto(p)})`,
      count: 1,
      selfBytes: self(post[p]!),
      retainedBytes: retained[p]!,
    })),
  };
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1).padStart(6)} MiB`;

/** The summary as text lines. */
export function formatHeapSummary(s: HeapSummary): string[] {
  return [
    `${mb(s.totalBytes).trim()} in ${s.nodes} heap objects; by constructor or type, self size:`,
    ...s.byConstructor.map((l) => `  ${mb(l.selfBytes)}  ${String(l.count).padStart(8)} × ${l.name}`),
    "largest retainers (retained size, self size, object and the edge holding it):",
    ...s.retainers.map((l) => `  ${mb(l.retainedBytes)}  ${mb(l.selfBytes)}  ${l.name}`),
    ...(s.tree.length > 0 ? ["what the expanded objects hold (dominator tree, retained size):"] : []),
    ...s.tree.map((l) => `  ${mb(l.retainedBytes)}  ${l.name}`),
  ];
}

if (import.meta.main) {
  const [file, top, ...expand] = process.argv.slice(2);
  if (file === undefined) throw new Error("usage: node bench/lib/heap-snapshot.ts FILE [TOP [CONSTRUCTOR...]]");
  const tree = { expand, minBytes: 256 * 1024, depth: 4 };
  for (const line of formatHeapSummary(summarizeHeapSnapshot(file, Number(top ?? 15), tree)))
    process.stdout.write(`${line}\n`);
}
