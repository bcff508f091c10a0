/**
 * What a heap snapshot holds, by constructor: the self size and count of every kind of object,
 * and the retained size (through the dominator tree, weak edges ignored) of the instances of a
 * few kinds. Two snapshots taken at N and 2N idle sockets differ by what N sockets hold.
 */
import { readFileSync } from 'node:fs';

export interface HeapSummary {
  total: number;
  /** Per kind (`Foo` for objects of constructor Foo, `closure foo`, `(string)`, …): bytes and count. */
  kinds: Map<string, { size: number; count: number }>;
  /** Closures, their contexts and suspended async frames, by the file their function is written in. */
  files: Map<string, number>;
  /** Per kind asked for: the summed retained size of its instances not dominated by another of the same kind. */
  retained: Map<string, { size: number; count: number }>;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]]; location_fields: string[] } };
  nodes: number[];
  edges: number[];
  strings: string[];
  locations: number[];
}

export function summarizeHeap(file: string, retainedKinds: string[] = []): HeapSummary {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { meta } = snap.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const [TYPE, NAME, SELF, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number];
  const [ETYPE, ETO] = ['type', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number];
  const types = meta.node_types[0];
  const weak = meta.edge_types[0].indexOf('weak');
  const { nodes, edges, strings } = snap;
  const n = nodes.length / nf;

  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) firstEdge[i + 1] = firstEdge[i]! + nodes[i * nf + EDGES]!;
  const [ENAME] = ['name_or_index'].map((f) => meta.edge_fields.indexOf(f)) as [number];
  const edgeTo = (i: number, name: string) => {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e++) if (strings[edges[e * ef + ENAME]!] === name) return edges[e * ef + ETO]! / nf;
    return -1;
  };
  // A closure is told by where its function is written: anonymous ones are most of them.
  const where = new Map<number, string>();
  const lf = meta.location_fields.length;
  const scripts = new Map<number, string>();
  for (let k = 0; k < (snap.locations?.length ?? 0); k += lf) {
    const node = snap.locations[k]! / nf;
    const scriptId = snap.locations[k + 1]!;
    let script = scripts.get(scriptId);
    if (script === undefined) {
      const shared = edgeTo(node, 'shared');
      const sc = shared >= 0 ? edgeTo(shared, 'script') : -1;
      const nm = sc >= 0 ? edgeTo(sc, 'name') : -1;
      script = nm >= 0 ? strings[nodes[nm * nf + NAME]!]!.replace(/^.*\/(node_modules\/)?/, '') : `script ${scriptId}`;
      scripts.set(scriptId, script);
    }
    where.set(node, `${script}:${snap.locations[k + 2]! + 1}`);
  }
  const kindOf = (i: number) => {
    const type = types[nodes[i * nf + TYPE]!]!;
    const name = strings[nodes[i * nf + NAME]!]!;
    if (type === 'object' || type === 'native') return name.length > 60 ? `${name.slice(0, 57)}…` : name;
    if (type === 'closure') return `closure ${name || '(anonymous)'} ${where.get(i) ?? ''}`.trim();
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'bigint' || type === 'symbol') return `(${type})`;
    if (type === 'array' || type === 'hidden' || type === 'code' || type === 'object shape') return `(${type}) ${name.replace(/\d+/g, '#').slice(0, 50)}`;
    return `(${type})`;
  };
  const kinds = new Map<string, { size: number; count: number }>();
  let total = 0;
  for (let i = 0; i < n; i++) {
    const size = nodes[i * nf + SELF]!;
    total += size;
    const k = kindOf(i);
    const entry = kinds.get(k) ?? { size: 0, count: 0 };
    entry.size += size;
    entry.count++;
    kinds.set(k, entry);
  }

  // A context, or an async function's suspended frame, is charged to the file of a function that holds it.
  const files = new Map<string, number>();
  const charged = new Uint8Array(n);
  const charge = (i: number, file: string) => {
    if (charged[i]) return;
    charged[i] = 1;
    files.set(file, (files.get(file) ?? 0) + nodes[i * nf + SELF]!);
  };
  for (const [node, loc] of where) {
    const file = loc.replace(/:\d+$/, '');
    charge(node, file);
    const context = edgeTo(node, 'context');
    if (context >= 0 && strings[nodes[context * nf + NAME]!] === 'system / Context') charge(context, file);
  }
  for (let i = 0; i < n; i++) {
    if (strings[nodes[i * nf + NAME]!] !== 'Generator' && strings[nodes[i * nf + NAME]!] !== 'AsyncGenerator') continue;
    const fn = edgeTo(i, 'function');
    const loc = fn >= 0 ? where.get(fn) : undefined;
    if (loc) {
      charge(i, loc.replace(/:\d+$/, ''));
      const ctx = edgeTo(i, 'context');
      if (ctx >= 0) charge(ctx, loc.replace(/:\d+$/, ''));
      const regs = edgeTo(i, 'parameters_and_registers');
      if (regs >= 0) charge(regs, loc.replace(/:\d+$/, ''));
    }
  }

  const retained = new Map<string, { size: number; count: number }>();
  if (retainedKinds.length) {
    // Dominators by the iterative algorithm of Cooper, Harvey and Kennedy over a post-order from the root.
    const order = new Int32Array(n).fill(-1);
    const post: number[] = [];
    const stack: Array<[number, number]> = [[0, firstEdge[0]!]];
    order[0] = -2;
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [v, e] = top;
      if (e < firstEdge[v + 1]!) {
        top[1] = e + 1;
        if (edges[e * ef + ETYPE] === weak) continue;
        const w = edges[e * ef + ETO]! / nf;
        if (order[w] === -1) {
          order[w] = -2;
          stack.push([w, firstEdge[w]!]);
        }
      } else {
        order[v] = post.length;
        post.push(v);
        stack.pop();
      }
    }
    const preds: number[][] = Array.from({ length: n }, () => []);
    for (let v = 0; v < n; v++) {
      if (order[v]! < 0) continue;
      for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e++) {
        if (edges[e * ef + ETYPE] === weak) continue;
        const w = edges[e * ef + ETO]! / nf;
        preds[w]!.push(v);
      }
    }
    const idom = new Int32Array(n).fill(-1);
    idom[0] = 0;
    const intersect = (a: number, b: number) => {
      while (a !== b) {
        while (order[a]! < order[b]!) a = idom[a]!;
        while (order[b]! < order[a]!) b = idom[b]!;
      }
      return a;
    };
    for (let changed = true; changed; ) {
      changed = false;
      for (let k = post.length - 2; k >= 0; k--) {
        const v = post[k]!;
        let d = -1;
        for (const p of preds[v]!) if (idom[p] !== -1) d = d === -1 ? p : intersect(p, d);
        if (d !== -1 && idom[v] !== d) {
          idom[v] = d;
          changed = true;
        }
      }
    }
    const size = new Float64Array(n);
    for (const v of post) size[v]! += nodes[v * nf + SELF]!;
    for (const v of post) if (v !== 0) size[idom[v]!]! += size[v]!;
    const wanted = new Set(retainedKinds);
    for (const v of post) {
      const k = kindOf(v);
      if (!wanted.has(k)) continue;
      let outer = false;
      for (let d = idom[v]!; d !== 0 && !outer; d = idom[d]!) outer = kindOf(d) === k;
      if (outer) continue;
      const entry = retained.get(k) ?? { size: 0, count: 0 };
      entry.size += size[v]!;
      entry.count++;
      retained.set(k, entry);
    }
  }
  return { total, kinds, files, retained };
}

/** Rows of `after - before` per kind, per `per` (sockets), largest first, to `limit` rows. */
export function heapDelta(before: HeapSummary, after: HeapSummary, per: number, limit = 40) {
  const keys = new Set([...before.kinds.keys(), ...after.kinds.keys()]);
  const rows = [...keys].map((k) => {
    const a = after.kinds.get(k) ?? { size: 0, count: 0 };
    const b = before.kinds.get(k) ?? { size: 0, count: 0 };
    return { kind: k, bytes: (a.size - b.size) / per, count: (a.count - b.count) / per };
  });
  rows.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
  const fileKeys = new Set([...before.files.keys(), ...after.files.keys()]);
  const files = [...fileKeys].map((f) => ({ file: f, bytes: ((after.files.get(f) ?? 0) - (before.files.get(f) ?? 0)) / per })).filter((f) => Math.abs(f.bytes) >= 8);
  files.sort((x, y) => y.bytes - x.bytes);
  // Bytecode and other code objects are compiled and flushed whenever V8 sees fit: no socket holds them.
  const code = rows.filter((r) => r.kind.startsWith('(code)')).reduce((sum, r) => sum + r.bytes, 0);
  return { total: (after.total - before.total) / per, code, rows: rows.slice(0, limit), files };
}
