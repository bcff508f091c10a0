/**
 * Scenario 5: several instances as one service. For each fan-out engine, two server processes on
 * the bench database: live delivery with senders on A and receivers on B, against senders and
 * receivers both on A, in the same run; then A→B at rising rates past 5,000 msg/s, to find where
 * the engine stops keeping up. Then send throughput of one process against `WORKERS=<cores>` on
 * one port, with the client connections each process held.
 */
import { availableParallelism } from 'node:os';
import { Cluster, Redis } from 'ioredis';
import { connect as natsConnect } from 'nats';
import { clientConnections } from '../client-connections.ts';
import { seedPairs, type Pair } from '../db.ts';
import { startInstance } from '../instance-process.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { runWorker, startWorker } from '../workers.ts';
import type { DeliveryResult } from './live-delivery.ts';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function redisReachable(): Promise<boolean> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
/** A Redis Cluster to run the sharded engine on (`host:port,...`); none by default. */
const REDIS_CLUSTER_NODES = process.env.BENCH_REDIS_CLUSTER_NODES;

export async function natsReachable(): Promise<boolean> {
  try {
    const nc = await natsConnect({ servers: NATS_URL, timeout: 1_000, reconnect: false });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

async function clusterReachable(nodes: string): Promise<boolean> {
  const c = new Cluster(nodes.split(',').map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })), {
    lazyConnect: true,
    clusterRetryStrategy: () => null,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

type Engine = 'postgres' | 'redis' | 'redis-cluster' | 'nats';
const ENGINE_ENV: Record<Engine, () => Record<string, string>> = {
  postgres: () => ({ FANOUT: 'postgres' }),
  redis: () => ({ REDIS_URL }),
  'redis-cluster': () => ({ FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: REDIS_CLUSTER_NODES! }),
  nats: () => ({ FANOUT: 'nats', NATS_URL }),
};

const line = (r: DeliveryResult) =>
  `p50 ${r.latency.p50.toFixed(2)} / p99 ${r.latency.p99.toFixed(2)} / max ${r.latency.max.toFixed(1)} ms; ${r.deliveredPerSec.toFixed(0)} delivered/s; lost ${r.lost}, dup ${r.duplicated}${r.shed ? `, shed ${r.shed}` : ''}`;

async function engineSection(ctx: BenchContext, engine: Engine, pairs: Pair[]): Promise<Row[]> {
  const env = ENGINE_ENV[engine]();
  const [a, b] = [await startInstance(ctx, env), await startInstance(ctx, env)];
  const rows: Row[] = [];
  try {
    // Quick (CI's smoke run) keeps one rate: the section must fit its time limit beside the others.
    for (const rate of ctx.quick ? [2000] : [500, 2000, 5000]) {
      const durationMs = ctx.quick ? 600 : 3000;
      const params = { variant: 'trpc', rate, durationMs, pairs, relayUrl: ctx.relayUrl, secret: ctx.secret };
      const same = await runWorker<DeliveryResult>('deliveryLoad', { ...params, baseUrl: a.url }, 90_000);
      const cross = await runWorker<DeliveryResult>('deliveryLoad', { ...params, baseUrl: b.url, senderUrl: a.url }, 90_000);
      for (const [where, r] of [['A→A', same], ['A→B', cross]] as const) {
        if (r.lost || r.duplicated) ctx.failures.push(`cross-instance ${engine} ${where} @${rate}/s: ${r.lost} lost, ${r.duplicated} duplicated`);
        if (r.sendErrors) ctx.problems.push(`cross-instance ${engine} ${where} @${rate}/s: ${r.sendErrors} send errors (${r.firstError})`);
        rows.push({
          scenario: 'cross-instance delivery',
          surface: `trpc, ${engine}`,
          params: `${rate} msg/s, 100 pairs, ${where === 'A→A' ? 'one instance (A→A)' : 'two instances (A→B)'}`,
          result: line(r),
          baseline: where === 'A→A' ? '—' : `A→A p99 ${same.latency.p99.toFixed(2)} ms`,
          ratio: where === 'A→A' ? NaN : ratio(r.latency.p99, same.latency.p99),
          data: { engine, where, ...r },
        });
      }
    }
    if (!ctx.quick) rows.push(...(await pastTarget(ctx, engine, { a: a.url, b: b.url }, pairs, rows)));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  return rows;
}

/** Rates past the 5,000 msg/s target, A→B only, each in its own load process. */
const STEPS = [7_500, 10_000, 15_000];

/**
 * How far past 5,000 msg/s the engine goes before it loses latency: a step holds when it delivered
 * at least 95% of the offered rate and its p99 stayed within 2× of A→B's at 2,000 msg/s. The
 * steps stop at the first that does not hold (after 7,500 msg/s, which always runs): past that
 * point more load only lengthens the queue. Steps are shorter than the target cells and wait
 * longer for stragglers: past saturation the queue the load built must drain before anything may
 * be counted lost.
 */
async function pastTarget(ctx: BenchContext, engine: string, urls: { a: string; b: string }, pairs: Pair[], earlier: Row[]): Promise<Row[]> {
  const at = (rate: number) => earlier.map((r) => r.data as unknown as DeliveryResult & { where?: string }).find((d) => d.where === 'A→B' && d.rate === rate);
  const reference = at(2000)?.latency.p99 ?? NaN;
  const holds = (r: DeliveryResult) => r.deliveredPerSec >= 0.95 * r.rate && !r.shed && r.latency.p99 <= 2 * reference;
  const rows: Row[] = [];
  const results = [at(5000)].filter((r): r is DeliveryResult => r !== undefined);
  for (const rate of STEPS) {
    if (rate > STEPS[0]! && !holds(results.at(-1)!)) break;
    const r = await runWorker<DeliveryResult>('deliveryLoad', { variant: 'trpc', rate, durationMs: 2000, drainMs: 15_000, pairs, relayUrl: ctx.relayUrl, secret: ctx.secret, baseUrl: urls.b, senderUrl: urls.a }, 120_000);
    results.push(r);
    if (r.lost || r.duplicated) ctx.failures.push(`cross-instance ${engine} A→B @${rate}/s: ${r.lost} lost, ${r.duplicated} duplicated`);
    if (r.sendErrors) ctx.problems.push(`cross-instance ${engine} A→B @${rate}/s: ${r.sendErrors} send errors (${r.firstError})`);
    rows.push({
      scenario: 'cross-instance delivery',
      surface: `trpc, ${engine}`,
      params: `${rate} msg/s offered for 2 s, 100 pairs, two instances (A→B)`,
      result: line(r),
      baseline: `A→B p99 at 2,000 msg/s ${reference.toFixed(2)} ms`,
      ratio: ratio(r.latency.p99, reference),
      data: { engine, where: 'A→B', step: true, holds: holds(r), ...r },
    });
  }
  const firstLost = results.findIndex((r) => !holds(r));
  const held = (firstLost === -1 ? results : results.slice(0, firstLost)).map((r) => r.rate);
  const lost = results[firstLost];
  rows.push({
    scenario: 'cross-instance delivery',
    surface: `trpc, ${engine}`,
    params: 'highest rate from 5,000 msg/s up that kept latency (≥ 95% delivered, p99 ≤ 2× A→B p99 at 2,000 msg/s)',
    result: `${held.length ? `${Math.max(...held)} msg/s` : 'none from 5,000 msg/s up'}${lost ? `; at ${lost.rate} msg/s: ${lost.deliveredPerSec.toFixed(0)} delivered/s, p99 ${lost.latency.p99.toFixed(0)} ms` : ''}`,
    baseline: '—',
    ratio: NaN,
    data: { engine, held, firstLost: lost?.rate },
  });
  return rows;
}

async function throughputSection(ctx: BenchContext, pairs: Pair[]): Promise<Row[]> {
  const cores = availableParallelism();
  const loops = pairs.map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  const durationMs = ctx.quick ? 500 : 3000;
  const rows: Row[] = [];
  let single: number | undefined;
  for (const workers of [1, cores]) {
    const server = workers === 1 ? await startInstance(ctx, {}) : await startInstance(ctx, { WORKERS: String(workers) }, 'cluster-process.ts');
    try {
      const pids = server.workers ?? [server.pid];
      const port = Number(new URL(server.url).port);
      const load = await startWorker('sendLoad', { modes: ['trpc-ws'], loops, insertLoops: [], durationMs, baseUrl: server.url, secret: ctx.secret, dbUrl: ctx.dbUrl, poolMax: ctx.poolMax });
      // Each process's client connections at the moment the most were open.
      let held = pids.map(() => 0);
      const sampler = setInterval(() => {
        const now = clientConnections(pids, port);
        if (now.reduce((s, n) => s + n, 0) > held.reduce((s, n) => s + n, 0)) held = now;
      }, 50);
      const [r] = await load.result<Array<{ msgsPerSec: number; errors: number; latency: { p50: number; p99: number } }>>(60_000).finally(() => clearInterval(sampler));
      single ??= r!.msgsPerSec;
      const mean = held.reduce((s, n) => s + n, 0) / held.length;
      rows.push({
        scenario: 'send throughput',
        surface: 'trpc-ws',
        params: `c=64, many rooms, ${workers === 1 ? 'one process' : `WORKERS=${workers}`}`,
        result: `${r!.msgsPerSec.toFixed(0)} msg/s, p50 ${r!.latency.p50.toFixed(2)} ms, p99 ${r!.latency.p99.toFixed(2)} ms; client connections per process max ${Math.max(...held)} / mean ${mean.toFixed(1)} (${held.join(' + ')})`,
        baseline: workers === 1 ? '—' : `one process ${single.toFixed(0)} msg/s`,
        ratio: workers === 1 ? NaN : ratio(r!.msgsPerSec, single),
        data: { workers, held, ...r },
      });
    } finally {
      await server.stop();
    }
  }
  return rows;
}

export async function runCrossInstance(ctx: BenchContext): Promise<Row[]> {
  const pairs = await seedPairs(ctx.pool, 'xi', 100);
  const rows = await engineSection(ctx, 'postgres', pairs);
  if (await redisReachable()) rows.push(...(await engineSection(ctx, 'redis', pairs)));
  else ctx.problems.push(`cross-instance redis: skipped: no Redis at ${REDIS_URL} (set BENCH_REDIS_URL)`);
  if (REDIS_CLUSTER_NODES && (await clusterReachable(REDIS_CLUSTER_NODES))) rows.push(...(await engineSection(ctx, 'redis-cluster', pairs)));
  else ctx.problems.push(`cross-instance redis-cluster: skipped: no Redis Cluster at BENCH_REDIS_CLUSTER_NODES (${REDIS_CLUSTER_NODES ?? 'unset'})`);
  if (await natsReachable()) rows.push(...(await engineSection(ctx, 'nats', pairs)));
  else ctx.problems.push(`cross-instance nats: skipped: no NATS at ${NATS_URL} (set BENCH_NATS_URL)`);
  rows.push(...(await throughputSection(ctx, (await seedPairs(ctx.pool, 'wk', 64)))));
  return rows;
}
