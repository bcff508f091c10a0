/**
 * The fan-out engines side by side: 2 and 4 instances on the bench database, each engine in turn,
 * pair i sending through instance i mod n and receiving on the next one (every message crosses
 * instances). Rates rise until one misses (p99 ≥ 100 ms, under 95 % delivered, or anything lost or
 * duplicated); the row gives the highest rate that held and the instances' CPU per delivered
 * message there. On a 2-core machine the generator and every instance share the cores, so the
 * rows compare engines within one run, not ceilings.
 */
import { startTestRedisCluster, hasRedisCluster, type TestRedisCluster } from '../../tests/support/redis-cluster.ts';
import { seedPairs, type Pair } from '../db.ts';
import { startInstance, type Instance } from '../instance-process.ts';
import { cpuMs } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { runWorker } from '../workers.ts';
import { natsReachable, NATS_URL, redisReachable, REDIS_URL } from './cross-instance.ts';
import type { DeliveryResult } from './live-delivery.ts';

type Engine = 'postgres' | 'redis' | 'redis-cluster' | 'nats';
const P99_BOUND_MS = 100;
const RATES = [250, 500, 1_000, 2_000, 4_000, 8_000];

interface Step {
  rate: number;
  result: DeliveryResult;
  cpuUsPerMessage: number;
  holds: boolean;
}

async function ramp(ctx: BenchContext, instances: Instance[], pairs: Pair[], rates: number[], durationMs: number): Promise<Step[]> {
  const steps: Step[] = [];
  for (const rate of rates) {
    const before = instances.map((i) => cpuMs(i.pid));
    const result = await runWorker<DeliveryResult>('deliveryLoad', { variant: 'trpc-wire', rate, durationMs, pairs, relayUrl: ctx.relayUrl, secret: ctx.secret, baseUrl: instances[0]!.url, mesh: instances.map((i) => i.url) }, 120_000);
    const cpu = instances.reduce((sum, i, k) => sum + cpuMs(i.pid) - before[k]!, 0);
    const holds = result.lost === 0 && result.duplicated === 0 && !result.shed && result.latency.p99 < P99_BOUND_MS && result.deliveredPerSec >= 0.95 * rate;
    steps.push({ rate, result, cpuUsPerMessage: result.received ? (cpu * 1000) / result.received : NaN, holds });
    if (result.lost || result.duplicated) ctx.failures.push(`engines: ${instances.length} instances @${rate}/s: ${result.lost} lost, ${result.duplicated} duplicated`);
    if (!holds) break;
  }
  return steps;
}

export async function runEngines(ctx: BenchContext): Promise<Row[]> {
  const pairs = await seedPairs(ctx.pool, 'eng', 100);
  let cluster: TestRedisCluster | undefined;
  const available: Engine[] = ['postgres'];
  if (await redisReachable()) available.push('redis');
  else ctx.problems.push(`engines: redis skipped: no Redis at ${REDIS_URL}`);
  if (hasRedisCluster) available.push('redis-cluster');
  else ctx.problems.push('engines: redis-cluster skipped: no redis-server 7+ and redis-cli on PATH');
  if (await natsReachable()) available.push('nats');
  else ctx.problems.push(`engines: nats skipped: no NATS at ${NATS_URL}`);
  const env: Record<Engine, () => Record<string, string>> = {
    postgres: () => ({ FANOUT: 'postgres' }),
    redis: () => ({ REDIS_URL }),
    'redis-cluster': () => ({ FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster!.nodes }),
    nats: () => ({ FANOUT: 'nats', NATS_URL }),
  };
  const rows: Row[] = [];
  try {
    for (const n of ctx.quick ? [2] : [2, 4]) {
      let reference: number | undefined;
      for (const engine of available) {
        // A cluster of its own for each run, started just before: it idles through no other engine's load.
        if (engine === 'redis-cluster') cluster = await startTestRedisCluster({ replicas: false });
        const instances = await Promise.all(Array.from({ length: n }, () => startInstance(ctx, env[engine]())));
        try {
          const steps = await ramp(ctx, instances, pairs, ctx.quick ? [1_000] : RATES, ctx.quick ? 600 : 3_000);
          const held = steps.filter((s) => s.holds).at(-1);
          const missed = steps.find((s) => !s.holds);
          if (engine === 'postgres') reference = held?.rate;
          const at = (s: Step) => `p99 ${s.result.latency.p99.toFixed(1)} ms, ${s.result.deliveredPerSec.toFixed(0)} delivered/s, ${s.cpuUsPerMessage.toFixed(0)} µs instance CPU per message`;
          rows.push({
            scenario: 'engines: cross-instance rate',
            surface: `trpc (wire client), ${engine}`,
            params: `${n} instances, 100 pairs, every message crossing instances; rates ${(ctx.quick ? [1_000] : RATES).join(', ')} msg/s for ${ctx.quick ? 0.6 : 3} s each until one misses (p99 < ${P99_BOUND_MS} ms, ≥ 95 % delivered, nothing lost)`,
            result: `${held ? `held ${held.rate} msg/s (${at(held)})` : `none held`}${missed ? `; at ${missed.rate} msg/s: ${at(missed)}` : ''}`,
            baseline: engine === 'postgres' || reference === undefined ? '—' : `postgres held ${reference} msg/s`,
            ratio: engine === 'postgres' || !reference || !held ? NaN : held.rate / reference,
            data: { engine, instances: n, steps: steps.map((s) => ({ ...s.result, holds: s.holds, cpuUsPerMessage: s.cpuUsPerMessage })) },
          });
        } finally {
          await Promise.all(instances.map((i) => i.stop()));
          if (engine === 'redis-cluster') await cluster?.stop();
          cluster = undefined;
        }
      }
    }
  } finally {
    await cluster?.stop();
  }
  return rows;
}
