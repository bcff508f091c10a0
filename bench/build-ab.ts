/**
 * Live delivery against servers from several builds, in alternating rounds: every build's server
 * runs at once (each on a database of its own, its schema its own), and for each round, rate and
 * variant every build takes its turn, the order turning each round. On this shared machine one
 * run's p99 can be 2-3x another's, so builds are compared within a round, neighbours in time.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { createBenchDb, seedPairs, type Pair } from './db.ts';
import { BENCH_DIR, nextMessage, spawnNode } from './proc.ts';
import { RESULTS_DIR } from './report.ts';
import type { DeliveryResult, Variant } from './scenarios/live-delivery.ts';
import { runWorker } from './workers.ts';
import { formatServerWindow, PROBE_ARG, serverWindow, type ServerWindow } from './server-window.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';
import { summarize } from './stats.ts';

export interface Build {
  label: string;
  /** The checkout whose server runs; this one when undefined. */
  dir?: string;
  env?: Record<string, string>;
}

export interface AbRun {
  build: string;
  round: number;
  /** `receivers/senders` when the senders use another surface. */
  variant: string;
  rate: number;
  result: DeliveryResult;
  server: ServerWindow;
  /** The slowest 1 % of messages against the server's GC pauses (see tailAgainstGc). */
  tail?: TailGc;
}

export interface TailGc {
  /** Share of them during whose flight the server paused for GC at least once. */
  withGc: number;
  /** Median over them of the GC time inside their flight, ms, and of their latency. */
  gcMs: number;
  latencyMs: number;
}

/** How much of the slowest messages' time the server spent in GC pauses while they were in flight. */
export function tailAgainstGc(slowest: Array<[number, number]>, pauses: Array<[number, number]>): TailGc | undefined {
  if (!slowest.length) return undefined;
  const inFlight = slowest.map(([at, latency]) => pauses.reduce((ms, [start, length]) => ms + Math.max(0, Math.min(at + latency, start + length) - Math.max(at, start)), 0));
  return { withGc: inFlight.filter((ms) => ms > 0).length / slowest.length, gcMs: summarize(inFlight).p50, latencyMs: summarize(slowest.map(([, l]) => l)).p50 };
}

interface Running {
  build: Build;
  child: ChildProcess;
  url: string;
  metricsUrl: string;
  pid: number;
  pairs: Pair[];
  dropDb(): Promise<unknown>;
}

export interface AbOptions {
  adminUrl: string;
  builds: Build[];
  rates: number[];
  variants: string[];
  rounds: number;
  ms: number;
  pairs: number;
  profile?: boolean;
  /** Each measured run writes the server's allocations by site (garbage included) to bench/results/partial/. */
  heapProfile?: boolean;
  /** Each run as it ends. */
  onRun?(run: AbRun): void;
  onFailure?(what: string): void;
}

async function startBuild(build: Build, i: number, secret: string, o: AbOptions): Promise<Running> {
  const db = await createBenchDb(o.adminUrl, `parley_ab_${process.pid}_${i}`);
  const child = spawnNode(join(build.dir ? join(build.dir, 'bench') : BENCH_DIR, 'server-process.ts'), {
    nodeArgs: ['--max-semi-space-size=8', PROBE_ARG, ...(o.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'partial')}`, `--cpu-prof-name=${build.label.replace(/\W+/g, '_')}-${process.pid}.cpuprofile`] : []),],
    env: {
      ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: db.url, DB_POOL_MAX: '10', JWT_SECRET: secret,
      SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0', DATA_DIR: join(tmpdir(), `parley-ab-${process.pid}-${i}`), ...build.env,
    },
  });
  const srv = await nextMessage<{ url: string; metricsUrl?: string; pid: number }>(child, (m) => m.type === 'ready', 90_000, `${build.label} server`);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  const pairs = await seedPairs(pool, 'live', o.pairs).finally(() => pool.end());
  // A build without the metrics listener serves /metrics on the API port (or not at all).
  return { build, child, url: srv.url, metricsUrl: srv.metricsUrl ?? `${srv.url}/metrics`, pid: srv.pid, pairs, dropDb: () => db.drop() };
}

export async function runBuilds(o: AbOptions): Promise<AbRun[]> {
  const secret = randomBytes(32).toString('base64url');
  const servers: Running[] = [];
  const runs: AbRun[] = [];
  try {
    for (const [i, build] of o.builds.entries()) servers.push(await startBuild(build, i, secret, o));
    // Unrecorded first load on every server: its code compiled and its heap grown before any round,
    // so no build's first measured run pays for its start.
    for (const s of servers)
      for (const name of o.variants) {
        const [variant, senderSurface] = name.split('/') as [Variant, 'trpc-ws' | 'legacy-ws' | undefined];
        await runWorker<DeliveryResult>('deliveryLoad', { variant, senderSurface, rate: o.rates[0]!, durationMs: 1_000, pairs: s.pairs, baseUrl: s.url, relayUrl: '', secret, serverPid: s.pid }, 120_000);
      }
    for (let round = 0; round < o.rounds; round++)
      for (const rate of o.rates)
        for (const name of o.variants) {
          const [variant, senderSurface] = name.split('/') as [Variant, 'trpc-ws' | 'legacy-ws' | undefined];
          for (let k = 0; k < servers.length; k++) {
            const s = servers[(k + round) % servers.length]!;
            const allocations = o.heapProfile ? join(RESULTS_DIR, 'partial', `${s.build.label.replace(/\W+/g, '_')}-${name.replace(/\W+/g, '_')}-${rate}-${round}.heapprofile`) : undefined;
            if (allocations) mkdirSync(join(RESULTS_DIR, 'partial'), { recursive: true });
            const window = await serverWindow(s.child, s.metricsUrl, allocations);
            const load = await runWorker<DeliveryResult>('deliveryLoad', { variant, senderSurface, rate, durationMs: o.ms, pairs: s.pairs, baseUrl: s.url, relayUrl: '', secret, serverPid: s.pid, keepTail: true }, 120_000).catch((err: unknown) => err as Error);
            const server = await window.end();
            // One failed run (a warm-up that timed out on a machine busy with other work) costs its round, not the comparison.
            if (load instanceof Error) {
              o.onFailure?.(`${s.build.label} ${name} ${rate} msg/s, round ${round + 1}: ${load.message.split('\n')[0]}`);
              continue;
            }
            const { slowest, ...result } = load;
            const tail = slowest && server.probe && tailAgainstGc(slowest, server.probe.pauses);
            const run: AbRun = { build: s.build.label, round, variant: name, rate, result, server, ...(tail && { tail }) };
            runs.push(run);
            o.onRun?.(run);
          }
        }
  } finally {
    await Promise.all(
      servers.map(async (s) => {
        const stopped = new Promise((r) => s.child.once('exit', r));
        s.child.send({ type: 'stop' });
        await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000))]);
        await s.dropDb().catch(() => {});
      }),
    );
  }
  return runs;
}

export function formatRun(r: AbRun): string {
  const l = r.result.latency;
  const s = r.result.fromStored;
  return (
    `${r.build.padEnd(12)} ${r.variant.padEnd(16)} ${String(r.rate).padStart(5)} msg/s  p50 ${l.p50.toFixed(2)} / p90 ${l.p90.toFixed(2)} / p99 ${l.p99.toFixed(2)} ms` +
    `${s ? ` (stored → arrival p99 ${s.p99.toFixed(1)})` : ''}; ${formatServerWindow(r.server)}` +
    `${r.tail ? `; slowest 1 %: ${(r.tail.withGc * 100).toFixed(0)} % met a GC pause, median ${r.tail.gcMs.toFixed(1)} ms of GC in ${r.tail.latencyMs.toFixed(1)} ms` : ''}` +
    `; lost ${r.result.lost} dup ${r.result.duplicated} shed ${r.result.shed}; CPU: generator ${(r.result.cpu.generator * 100).toFixed(0)} %, server ${(r.result.cpu.server * 100).toFixed(0)} %` +
    `${perMessage(r) ? `; per message: server CPU ${perMessage(r)!.cpuUs.toFixed(0)} µs, GC ${perMessage(r)!.gcUs.toFixed(0)} µs, ${perMessage(r)!.pausesPer1k.toFixed(1)} pauses per 1,000` : ''}`
  );
}

const median = (xs: number[]) => summarize(xs).p50;

/** What one message cost the server: CPU and GC time, which the machine's other load changes far less than latency. */
export function perMessage(r: AbRun): { cpuUs: number; gcUs: number; pausesPer1k: number } | undefined {
  const n = r.result.received;
  if (!n || r.result.serverCpuMs === undefined || !r.server.probe) return undefined;
  return { cpuUs: (r.result.serverCpuMs * 1000) / n, gcUs: (r.server.probe.gc.totalMs * 1000) / n, pausesPer1k: (r.server.probe.gc.count * 1000) / n };
}

export interface AbSummary {
  rate: number;
  variant: string;
  /** Per build: its p99 in each round, and the medians over rounds of the run's p99, statement p99, event-loop p99 and GC total. */
  builds: Array<{ label: string; p99s: number[]; p99: number; statementP99?: number; loopP99?: number; gcMs?: number; cpuUsPerMessage?: number }>;
  /** Median over rounds of the first build's p99 over each other build's. */
  ratios: number[];
}

export function summarizeRuns(runs: AbRun[], labels: string[]): AbSummary[] {
  const out: AbSummary[] = [];
  const keys = [...new Set(runs.map((r) => `${r.rate}|${r.variant}`))];
  for (const key of keys) {
    const [rate, variant] = [Number(key.split('|')[0]), key.split('|')[1]!];
    const of = (label: string) => runs.filter((r) => r.rate === rate && r.variant === variant && r.build === label).sort((a, b) => a.round - b.round);
    const builds = labels.map((label) => {
      const rs = of(label);
      const defined = (xs: Array<number | undefined>) => xs.filter((x): x is number => x !== undefined);
      const statements = defined(rs.map((r) => r.server.statement?.p99));
      const loops = defined(rs.map((r) => r.server.probe?.loop.p99));
      const gcs = defined(rs.map((r) => r.server.probe?.gc.totalMs));
      const cpus = defined(rs.map((r) => perMessage(r)?.cpuUs));
      return {
        label,
        p99s: rs.map((r) => r.result.latency.p99),
        p99: median(rs.map((r) => r.result.latency.p99)),
        ...(statements.length && { statementP99: median(statements) }),
        ...(loops.length && { loopP99: median(loops) }),
        ...(gcs.length && { gcMs: median(gcs) }),
        ...(cpus.length && { cpuUsPerMessage: median(cpus) }),
      };
    });
    const first = of(labels[0]!);
    const ratios = labels.slice(1).map((label) => {
      const other = of(label);
      return median(first.map((r) => r.result.latency.p99 / (other.find((o) => o.round === r.round)?.result.latency.p99 ?? NaN)).filter(Number.isFinite));
    });
    out.push({ rate, variant, builds, ratios });
  }
  return out;
}

export function formatSummary(s: AbSummary): string[] {
  const lines = [`${s.variant} at ${s.rate} msg/s:`];
  for (const b of s.builds) {
    lines.push(
      `  ${b.label.padEnd(12)} p99 median ${b.p99.toFixed(1)} ms (rounds: ${b.p99s.map((x) => x.toFixed(1)).join(', ')})` +
        `${b.statementP99 !== undefined ? `; statement p99 ≤ ${b.statementP99} ms` : ''}${b.loopP99 !== undefined ? `; event-loop p99 ${b.loopP99.toFixed(1)} ms` : ''}${b.gcMs !== undefined ? `; GC ${b.gcMs.toFixed(0)} ms` : ''}${b.cpuUsPerMessage !== undefined ? `; server CPU ${b.cpuUsPerMessage.toFixed(0)} µs/msg` : ''}`,
    );
  }
  s.ratios.forEach((r, i) => lines.push(`  ${s.builds[0]!.label} / ${s.builds[i + 1]!.label} p99, median of rounds: ${r.toFixed(2)}×`));
  return lines;
}
