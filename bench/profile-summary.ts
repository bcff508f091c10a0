/**
 * Prints the top self-time frames of a V8 .cpuprofile (from `node --cpu-prof`):
 * `node bench/profile-summary.ts [file.cpuprofile] [top=25]`; without a file, the newest in bench/results.
 * `node bench/profile-summary.ts --heap <file.heapprofile> [top=25]`: the bytes a sampling heap profile
 * (`live-ab --heap-profile`) saw allocated, by site and by project function.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BENCH_DIR } from './proc.ts';

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function topFrames(profile: Profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${relative(process.cwd(), f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  });
  // Inclusive time of the project's own functions: which stage of a request the time is spent under.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusiveUs = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      if (!/\/(server|contracts)\//.test(f.url) || f.url.includes('node_modules')) continue;
      const key = `${f.functionName || '(anonymous)'} ${relative(process.cwd(), f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusiveUs.set(key, (inclusiveUs.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
  });
  const stages = [...inclusiveUs].sort((a, b) => b[1] - a[1]).slice(0, top).map(([frame, us]) => ({ frame, ms: us / 1000 }));
  const idle = ['(idle)', '(program)', '(garbage collector)'];
  const busy = total - [...selfUs].filter(([k]) => idle.includes(k)).reduce((n, [, v]) => n + v, 0);
  const frames = [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, top).map(([frame, us]) => ({ frame, ms: us / 1000, pctOfTotal: (100 * us) / total }));
  return { totalMs: total / 1000, busyMs: busy / 1000, frames, stages };
}

export function newestProfile(dir = join(BENCH_DIR, 'results')): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f));
  return files.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

export function printSummary(file: string, top = 25) {
  const { totalMs, busyMs, frames, stages } = topFrames(JSON.parse(readFileSync(file, 'utf8')) as Profile, top);
  console.log(`\n${relative(process.cwd(), file)}: ${totalMs.toFixed(0)} ms sampled, ${busyMs.toFixed(0)} ms outside idle/program/GC\n`);
  console.log('| self ms | % | frame |\n|---:|---:|---|');
  for (const f of frames) console.log(`| ${f.ms.toFixed(1)} | ${f.pctOfTotal.toFixed(1)} | \`${f.frame}\` |`);
  console.log('\n| inclusive ms | project function (stage) |\n|---:|---|');
  for (const s of stages) console.log(`| ${s.ms.toFixed(1)} | \`${s.frame}\` |`);
}

interface HeapNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children: HeapNode[];
}

export function printHeapSummary(file: string, top = 25) {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const name = (n: HeapNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url ? `${relative(process.cwd(), n.callFrame.url.replace(/^file:\/\//, ''))}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
  const walk = (n: HeapNode, stack: Set<string>) => {
    const key = name(n);
    total += n.selfSize;
    self.set(key, (self.get(key) ?? 0) + n.selfSize);
    const here = new Set(stack).add(key);
    for (const k of here) if (/\/(server|contracts)\//.test(k) && !k.includes('node_modules')) inclusive.set(k, (inclusive.get(k) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c, here);
  };
  walk(head, new Set());
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(`\n${relative(process.cwd(), file)}: ${mib(total)} MiB allocated (sampled)\n`);
  console.log('| self MiB | % | site |\n|---:|---:|---|');
  for (const [k, b] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${mib(b)} | ${((100 * b) / total).toFixed(1)} | \`${k}\` |`);
  console.log('\n| inclusive MiB | project function (stage) |\n|---:|---|');
  for (const [k, b] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${mib(b)} | \`${k}\` |`);
}

if (import.meta.main && process.argv[2] === '--heap') {
  printHeapSummary(process.argv[3]!, Number(process.argv[4] ?? 25));
} else if (import.meta.main) {
  const file = process.argv[2] ?? newestProfile();
  if (!file) throw new Error('no .cpuprofile given or found in bench/results');
  printSummary(file, Number(process.argv[3] ?? 25));
}
