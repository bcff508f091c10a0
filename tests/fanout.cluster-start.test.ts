import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasRedisCluster, startTestRedisCluster, type TestRedisCluster } from './support/redis-cluster.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';
import { within } from './support/within.ts';

if (!hasRedisCluster) console.warn('SKIPPED the Redis Cluster start cases: no redis-server 7+ and redis-cli on PATH (CI has them)');

// Three masters without replicas: a master killed leaves the cluster down until it is started again.
describe.skipIf(!hasRedisCluster)('an instance started while a master of its Redis Cluster is down', { timeout: 120_000 }, () => {
  let cluster: TestRedisCluster;
  beforeAll(async () => {
    cluster = await startTestRedisCluster({ replicas: false });
  });
  afterAll(() => cluster?.stop());

  it('with the rate limits there (PostgreSQL fan-out): it starts at once, each instance limiting on its own until the cluster is whole', async () => {
    const master = await cluster.masterOf('parley:limit:{send:alice}');
    await cluster.downMaster(master);
    try {
      await using app = await within(20_000, 'start', startTestApp(`${import.meta.filename}-limits`, { FANOUT: 'postgres', REDIS_CLUSTER_NODES: cluster.nodes }));
      expect(app.app.services.limiter.scope).toBe('redis');
      expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    } finally {
      await cluster.restart(master);
    }
  });

  it('with its fan-out there: it waits for the cluster, and starts once the master is back', async () => {
    const master = await cluster.masterOf('parley:room:x');
    await cluster.downMaster(master);
    let started: TestApp | undefined;
    const starting = startTestApp(`${import.meta.filename}-fanout`, { FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.nodes }).then((app) => (started = app));
    try {
      // Long enough for its first ready check to have failed on the cluster's state.
      await new Promise((r) => setTimeout(r, 3_000));
      await cluster.restart(master);
      const app = await within(20_000, 'start after the master came back', starting);
      expect(app.app.services.fanout.name).toBe('redis-cluster');
      expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    } finally {
      await started?.close();
    }
  });
});
