import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { BENCH_DIR } from './proc.ts';
import type { ServerWindow } from './server-window.ts';

/** What every scenario gets from the runner. */
export interface BenchContext {
  quick: boolean;
  baseUrl: string;
  /** The server's `/metrics`, on its own listener. */
  metricsUrl: string;
  secret: string;
  dbUrl: string;
  /** Straight to the bench database, for seeding. */
  pool: pg.Pool;
  /** The server's DB pool size: the raw-pg baseline uses as many connections. */
  poolMax: number;
  serverPid: number;
  relayUrl: string;
  relayPid: number;
  /** Opens a window on the server's send statements, event-loop delay and GC pauses (server-window.ts). */
  serverWindow(): Promise<{ end(): Promise<ServerWindow> }>;
  /** Collects garbage in the server (or relay) and returns its live listener count. */
  gc(target: 'server' | 'relay'): Promise<number>;
  /** `--surface=a,b`: limit the send matrix to these surfaces (e.g. to profile one). */
  surfaces: string[] | undefined;
  /** Notable but not fatal (errors during load, missed targets). */
  problems: string[];
  /** Lost or duplicated messages, failed probes: the run exits non-zero. */
  failures: string[];
}

/** One line of the results table; `data` carries the full figures into the JSON. */
export interface Row {
  scenario: string;
  surface: string;
  params: string;
  result: string;
  baseline: string;
  ratio: number;
  data: Record<string, unknown>;
}

export interface Target {
  target: string;
  measured: string;
  met: boolean | null;
}

export function markdown(rows: Row[], targets: Target[], facts: Record<string, unknown>): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const lines = [
    `Machine: ${facts.cores} cores, Node ${facts.node}, ${String(facts.postgres).split(' on ')[0]}, ${facts.mode} run, ${facts.date}, commit ${facts.commit}${(facts.uncommittedServerChanges as string[] | undefined)?.length ? ' + uncommitted server changes' : ''}.`,
    '',
    '| Scenario | Surface | Parameters | Result | Baseline | Ratio |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.surface} | ${esc(r.params)} | ${esc(r.result)} | ${esc(r.baseline)} | ${Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '—'} |`),
    '',
    '| Target | Measured | Met |',
    '|---|---|---|',
    ...targets.map((t) => `| ${esc(t.target)} | ${esc(t.measured)} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`),
    '',
  ];
  return lines.join('\n');
}

export const RESULTS_DIR = join(BENCH_DIR, 'results');

/**
 * Full runs of a section write its committed results file (`results/<section>.json`, one per
 * section, replaced by the next full run of it) and the chart; quick, filtered-by-surface or
 * profiled runs write under `results/partial/` (git-ignored), so a CI smoke or a profiling
 * session never overwrites the committed figures.
 */
export function writeResults(json: object, md: string, svg: string | undefined, full: boolean, sections: Array<{ section: string } & Record<string, unknown>>) {
  const dir = full ? RESULTS_DIR : join(RESULTS_DIR, 'partial');
  mkdirSync(dir, { recursive: true });
  if (full) {
    for (const s of sections) {
      removeOlderResults(dir, s.section);
      writeFileSync(join(dir, `${s.section}.json`), `${JSON.stringify(s, null, 2)}\n`);
    }
  } else {
    writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
    writeFileSync(join(dir, 'latest.md'), md);
  }
  if (svg) writeFileSync(join(dir, 'latency.svg'), svg);
}

/**
 * The page shows every section file it finds, so a file of the same section under another name
 * (a timestamped run, a renamed section's old file) would list the section twice, with stale
 * figures: the run that writes a section removes them.
 */
function removeOlderResults(dir: string, section: string) {
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json') || file === `${section}.json`) continue;
    let other: unknown;
    try {
      other = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch {
      continue;
    }
    if ((other as { section?: unknown }).section === section) rmSync(join(dir, file));
  }
}
