import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const FEATURES = ['admin', 'attachments', 'identity', 'live', 'messages', 'moderation', 'presence', 'push', 'rooms', 'safety', 'webhooks'];

type Layer = 'contracts' | 'sdk' | 'feature' | 'transport' | 'infra' | 'root' | 'cli';
interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.tsx?$/.test(f) && !f.endsWith('.d.ts') && !f.includes('node_modules') && !f.startsWith('dist'))
    .map((f) => join(dir, f));
}

function layerOf(file: string): Layer {
  const [top, second] = file.split('/');
  if (top === 'contracts') return 'contracts';
  if (top === 'client-sdk') return 'sdk';
  if (top === 'migrations') return 'infra';
  if (second === 'transport') return 'transport';
  if (second === 'infra') return 'infra';
  if (second === 'cli') return 'cli';
  if (FEATURES.includes(second!)) return 'feature';
  return 'root';
}

/** Every import of the tree: relative ones resolved to files, packages by name. */
function imports(file: string): Edge[] {
  const text = readFileSync(join(root, file), 'utf8');
  const edges: Edge[] = [];
  for (const [, keyword, spec] of text.matchAll(/^(import type|import|export type|export)\b[^;]*?\bfrom ['"]([^'"]+)['"]/gm)) {
    const to = spec!.startsWith('.') ? relative(root, join(dirname(join(root, file)), spec!)) : spec!;
    edges.push({ from: file, to, typeOnly: keyword!.endsWith('type') });
  }
  for (const [, dynamic, bare] of text.matchAll(/\bimport\(['"]([^'"]+)['"]\)|^import ['"]([^'"]+)['"]/gm)) {
    const spec = dynamic ?? bare;
    if (spec!.startsWith('.')) edges.push({ from: file, to: relative(root, join(dirname(join(root, file)), spec!)), typeOnly: false });
  }
  return edges;
}

const files = [...sources('server'), ...sources('contracts'), ...sources('client-sdk')];
const edges = files.flatMap(imports);
const local = (e: Edge) => e.to.startsWith('server/') || e.to.startsWith('contracts/') || e.to.startsWith('client-sdk/') || e.to.startsWith('migrations/');
const show = (list: Edge[]) => list.map((e) => `${e.from} -> ${e.to}`);

describe('the layers of the server', () => {
  it('features never import transport, the composition root or the command line', () => {
    const wrong = edges.filter((e) => layerOf(e.from) === 'feature' && local(e) && ['transport', 'root', 'cli'].includes(layerOf(e.to)));
    expect(show(wrong)).toEqual([]);
  });

  it('infrastructure imports no feature, no transport and no composition root', () => {
    const wrong = edges.filter((e) => layerOf(e.from) === 'infra' && local(e) && ['feature', 'transport', 'root', 'cli'].includes(layerOf(e.to)));
    expect(show(wrong)).toEqual([]);
  });

  it('transport never touches the ORM, and knows the composition root only by its types', () => {
    const wrong = edges.filter(
      (e) =>
        layerOf(e.from) === 'transport' &&
        (e.to.startsWith('@mikro-orm/') || e.to.startsWith('server/infra/db/') || (local(e) && ['root', 'cli'].includes(layerOf(e.to)) && !e.typeOnly)),
    );
    expect(show(wrong)).toEqual([]);
  });

  it('contracts are leaves: they import only each other and zod', () => {
    const wrong = edges.filter((e) => layerOf(e.from) === 'contracts' && !e.to.startsWith('contracts/') && e.to !== 'zod');
    expect(show(wrong)).toEqual([]);
  });

  it('the SDK ships no server code: it names the router by type only', () => {
    const wrong = edges.filter((e) => layerOf(e.from) === 'sdk' && e.to.startsWith('server/') && !e.typeOnly);
    expect(show(wrong)).toEqual([]);
  });

  it('no two server modules import each other, however far round', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges) if (local(e)) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (node: string, path: string[]) => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('reads the tree it judges', () => {
    expect(files.length).toBeGreaterThan(80);
    expect(edges.filter((e) => layerOf(e.from) === 'feature' && e.to.startsWith('server/infra/')).length).toBeGreaterThan(0);
  });
});
