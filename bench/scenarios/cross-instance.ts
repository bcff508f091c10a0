/**
 * Scenario 5: several instances as one service. For each fan-out engine, two server processes on
 * the bench database: live delivery with senders on A and receivers on B, against senders and
 * receivers both on A, in the same run. Then send throughput of one process against
 * `WORKERS=<cores>` on one port, with the connections each worker ended up holding.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { seedPairs, type Pair } from '../db.ts';
import { BENCH_DIR, nextMessage, spawnNode } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { runWorker, startWorker } from '../workers.ts';
import type { DeliveryResult } from './live-delivery.ts';

const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Server {
  url: string;
  pid: number;
  workers?: number[];
  stop(): Promise<void>;
}

async function startServer(ctx: BenchContext, env: Record<string, string>, script = 'server-process.ts'): Promise<Server> {
  const child = spawnNode(join(BENCH_DIR, script), {
    nodeArgs: ['--max-semi-space-size=8'],
    env: { MAX_CONNECTIONS_PER_IP: '0', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: ctx.dbUrl, DB_POOL_MAX: String(ctx.poolMax), JWT_SECRET: ctx.secret, SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ...env },
  });
  const ready = await nextMessage<{ url: string; pid: number; workers?: number[] }>(child, (m) => m.type === 'ready', 60_000, script);
  return {
    ...ready,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    },
  };
}

async function redisReachable(): Promise<boolean> {
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

const line = (r: DeliveryResult) =>
  `p50 ${r.latency.p50.toFixed(2)} / p99 ${r.latency.p99.toFixed(2)} / max ${r.latency.max.toFixed(1)} ms; ${r.deliveredPerSec.toFixed(0)} delivered/s; lost ${r.lost}, dup ${r.duplicated}${r.shed ? `, shed ${r.shed}` : ''}`;

async function engineSection(ctx: BenchContext, engine: 'postgres' | 'redis', pairs: Pair[]): Promise<Row[]> {
  const env: Record<string, string> = engine === 'redis' ? { REDIS_URL } : { FANOUT: 'postgres' };
  const [a, b] = [await startServer(ctx, env), await startServer(ctx, env)];
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
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  return rows;
}

/** Sockets a process holds (TCP to clients and to the database alike), from /proc. */
function socketCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

async function throughputSection(ctx: BenchContext, pairs: Pair[]): Promise<Row[]> {
  const cores = availableParallelism();
  const loops = pairs.map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  const durationMs = ctx.quick ? 500 : 3000;
  const rows: Row[] = [];
  let single: number | undefined;
  for (const workers of [1, cores]) {
    const server = workers === 1 ? await startServer(ctx, {}) : await startServer(ctx, { WORKERS: String(workers) }, 'cluster-process.ts');
    try {
      const pids = server.workers ?? [server.pid];
      const idle = pids.map(socketCount);
      const load = await startWorker('sendLoad', { modes: ['trpc-ws'], loops, insertLoops: [], durationMs, baseUrl: server.url, secret: ctx.secret, dbUrl: ctx.dbUrl, poolMax: ctx.poolMax });
      // The most sockets each process held during the run, beyond what it held idle.
      const held = pids.map(() => 0);
      const sampler = setInterval(() => pids.forEach((pid, i) => (held[i] = Math.max(held[i]!, socketCount(pid) - idle[i]!))), 50);
      const [r] = await load.result<Array<{ msgsPerSec: number; errors: number; latency: { p50: number; p99: number } }>>(60_000).finally(() => clearInterval(sampler));
      single ??= r!.msgsPerSec;
      const mean = held.reduce((s, n) => s + n, 0) / held.length;
      rows.push({
        scenario: 'send throughput',
        surface: 'trpc-ws',
        params: `c=64, many rooms, ${workers === 1 ? 'one process' : `WORKERS=${workers}`}`,
        result: `${r!.msgsPerSec.toFixed(0)} msg/s, p50 ${r!.latency.p50.toFixed(2)} ms, p99 ${r!.latency.p99.toFixed(2)} ms; sockets gained per process (clients + DB pool growth) max ${Math.max(...held)} / mean ${mean.toFixed(1)}`,
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
  rows.push(...(await throughputSection(ctx, (await seedPairs(ctx.pool, 'wk', 64)))));
  return rows;
}
