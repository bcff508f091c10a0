import { afterAll, beforeAll, test } from 'vitest';
import { hasNatsServer, startTestNats, type TestNats } from './nats-server.ts';
import { hasRedisCluster, startTestRedisCluster, type TestRedisCluster } from './redis-cluster.ts';
import { hasRedisServer, startTestRedis, type TestRedis } from './redis-server.ts';

export interface EngineCase {
  engine: 'postgres' | 'redis' | 'redis-cluster' | 'nats';
  /** The environment that selects the engine (valid once the file's hooks ran). */
  env(): Record<string, string>;
  /** No redis-server to run this case on. */
  skip: boolean;
}

const warnNoCluster = () => console.warn('SKIPPED the Redis Cluster engine cases: no redis-server 7+ and redis-cli on PATH (CI has them)');
const warnNoNats = () => console.warn('SKIPPED the NATS engine cases: no nats-server binary on PATH (CI has one)');

/**
 * The cross-instance engines as test cases, for `describe.each` or `it.for`. Call at the top
 * of a test file: the Redis case runs on a server of the file's own, started and stopped by its hooks.
 */
export function engineCases(only?: ReadonlyArray<EngineCase['engine']>): EngineCase[] {
  const wanted = (engine: EngineCase['engine']) => !only || only.includes(engine);
  let redis: TestRedis | undefined;
  let nats: TestNats | undefined;
  let cluster: TestRedisCluster | undefined;
  beforeAll(async () => {
    if (wanted('redis-cluster')) {
      if (hasRedisCluster) cluster = await startTestRedisCluster({ replicas: false });
      else warnNoCluster();
    }
    if (wanted('redis')) {
      if (hasRedisServer) redis = await startTestRedis();
      else console.warn('SKIPPED the Redis engine cases: no redis-server binary on PATH (CI has one)');
    }
    if (wanted('nats')) {
      if (hasNatsServer) nats = await startTestNats();
      else warnNoNats();
    }
  });
  afterAll(async () => {
    await redis?.stop();
    await nats?.stop();
    await cluster?.stop();
  });
  const cases: EngineCase[] = [
    { engine: 'postgres', env: () => ({ FANOUT: 'postgres' }), skip: false },
    { engine: 'redis', env: () => ({ REDIS_URL: redis!.url }), skip: !hasRedisServer },
    { engine: 'redis-cluster', env: () => ({ FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster!.nodes }), skip: !hasRedisCluster },
    { engine: 'nats', env: () => ({ FANOUT: 'nats', NATS_URL: nats!.url }), skip: !hasNatsServer },
  ];
  return cases.filter((c) => wanted(c.engine));
}

type EngineEnv = Record<string, string>;
const withEngineEnv = (engineEnv: (context: object, use: (env: EngineEnv) => Promise<void>) => Promise<void>) =>
  test.extend<{ $file: { engineEnv: EngineEnv } }>({ engineEnv: [engineEnv, { scope: 'file' }] });

/**
 * The cross-instance engines, each with its own `it` whose file fixture `engineEnv` is the
 * environment that selects it; the Redis case starts a server of the file's own, stopped after the
 * fixtures that use it. Call at the top level of a test file, where file fixtures are defined.
 */
export function engineTests() {
  if (!hasRedisServer) console.warn('SKIPPED the Redis engine cases: no redis-server binary on PATH (CI has one)');
  if (!hasNatsServer) warnNoNats();
  if (!hasRedisCluster) warnNoCluster();
  return [
    { engine: 'postgres' as const, skip: false, it: withEngineEnv(async ({}, use) => use({ FANOUT: 'postgres' })) },
    {
      engine: 'redis' as const,
      skip: !hasRedisServer,
      it: withEngineEnv(async ({}, use) => {
        await using redis = await startTestRedis();
        await use({ REDIS_URL: redis.url });
      }),
    },
    {
      engine: 'redis-cluster' as const,
      skip: !hasRedisCluster,
      it: withEngineEnv(async ({}, use) => {
        await using cluster = await startTestRedisCluster({ replicas: false });
        await use({ FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.nodes });
      }),
    },
    {
      engine: 'nats' as const,
      skip: !hasNatsServer,
      it: withEngineEnv(async ({}, use) => {
        await using nats = await startTestNats();
        await use({ FANOUT: 'nats', NATS_URL: nats.url });
      }),
    },
  ];
}
