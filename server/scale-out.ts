import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './infra/config/config.ts';
import type { Orm } from './infra/db/orm.ts';
import { prepared, runPrepared } from './infra/db/prepared.ts';
import { createRoomBus, type RoomBus } from './live/room-bus.ts';
import { createFanoutBus } from './live/fanout-bus.ts';
import type { FanoutEngine } from './live/fanout-engine.ts';
import { createPgNotifyEngine } from './live/pg-notify-engine.ts';
import { createRateLimiter, createMemoryTokens, type RateLimiter } from './infra/limits/rate-limiter.ts';
import { createMetrics, type Metrics } from './infra/metrics/metrics.ts';

/**
 * The watched rooms of a JSON object (room id → the newest seq heard) that have newer messages,
 * with their newest. Each room by its key: joined, the planner hashed the keys against every room,
 * a scan of the whole table per chunk of the sweep, on every instance, every interval.
 */
export const WATCHED_LAST_SEQS_SQL = `select r.id, r.last_seq from json_each_text(?::json) h
  cross join lateral (select id, last_seq from chat_rooms where id = h.key::uuid limit 1) r where r.last_seq > h.value::bigint`;
const WATCHED_LAST_SEQS = prepared(WATCHED_LAST_SEQS_SQL);

/** What lets several instances act as one service: the room bus across them, shared limits, metrics. */
export interface ScaleOut {
  bus: RoomBus;
  fanout: { readonly name: 'local' | FanoutEngine['name']; isUp(): boolean };
  metrics: Metrics;
  limiter: RateLimiter;
  close(): Promise<void>;
}

export async function createScaleOut({ config, orm, log }: { config: Config; orm: Orm; log: FastifyBaseLogger }): Promise<ScaleOut> {
  const metrics = createMetrics();
  const onListenerError = (err: unknown) => log.error({ err }, 'room event listener failed');
  const lastLogged = new Map<string, number>();
  let engine: FanoutEngine | undefined;
  if (config.fanout === 'postgres') engine = createPgNotifyEngine({ databaseUrl: config.databaseDirectUrl!, windowMs: config.fanoutNotifyWindowMs });
  // Each client library loads only where its engine is chosen: together they are a fifth of a start's imports.
  if (config.fanout === 'redis') engine = (await import('./live/redis-engine.ts')).createRedisEngine({ url: config.redisUrl! });
  if (config.fanout === 'redis-cluster') engine = (await import('./live/redis-cluster-engine.ts')).createRedisClusterEngine({ nodes: config.redisClusterNodes! });
  if (config.fanout === 'nats') engine = (await import('./live/nats-engine.ts')).createNatsEngine({ servers: [...config.natsServers!] });
  const fanoutBus = engine
    ? await createFanoutBus({
        engine,
        onListenerError,
        onEngineError: (err, what) => {
          metrics.fanoutError(what);
          // An outage fails every publish; one line a second per kind says as much.
          const now = Date.now();
          if (now - (lastLogged.get(what) ?? 0) < 1_000) return;
          lastLogged.set(what, now);
          log.warn({ err, what }, 'fan-out engine failure');
        },
        observer: metrics,
        sweepMs: config.fanoutSweepMs,
        async readLastSeqs(heard) {
          const rows = await runPrepared<{ id: string; last_seq: number }>(orm.em.getConnection(), WATCHED_LAST_SEQS, [JSON.stringify(Object.fromEntries(heard))]);
          return new Map(rows.map((r) => [r.id, Number(r.last_seq)]));
        },
      })
    : undefined;
  const bus = fanoutBus ?? createRoomBus(onListenerError);
  const fanout = engine ?? { name: 'local' as const, isUp: () => true };

  const memory = createMemoryTokens();
  const shared = config.redisUrl || config.redisClusterNodes
    ? await (await import('./infra/limits/redis-tokens.ts')).createRedisTokens({
        url: config.redisUrl,
        cluster: config.redisUrl ? undefined : (await import('./live/redis-cluster-engine.ts')).clusterStartupNodes(config.redisClusterNodes!),
        commandTimeoutMs: config.redisCommandTimeoutMs,
        fallback: memory,
        onRedisError: (err) => log.warn({ err }, 'rate limits: Redis failed or timed out; limiting per instance for a second'),
      })
    : undefined;
  const limiter = createRateLimiter({ rules: config.rateLimits, tokens: shared?.take ?? memory, scope: shared ? 'redis' : 'memory', close: shared?.close });

  metrics.watch({
    pool: async () => await orm.em.getConnection().getNativeClient(),
    engine: () => ({ name: fanout.name, up: fanout.isUp() }),
    notifyQueueUsage: async () => {
      if (!config.databaseUrl) return null;
      const [row] = await orm.em.getConnection().execute<{ usage: number }[]>('select pg_notification_queue_usage() as usage');
      return Number(row?.usage ?? 0);
    },
  });

  return {
    bus,
    fanout,
    metrics,
    limiter,
    async close() {
      fanoutBus?.close();
      await engine?.close();
      await limiter.close();
    },
  };
}
