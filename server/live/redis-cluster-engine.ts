import { Cluster } from 'ioredis';
import { connectCluster } from '../infra/redis/connect-cluster.ts';
import type { EngineHandlers, FanoutEngine } from './fanout-engine.ts';
import { createOutgoingSender } from './outgoing-queue.ts';

const PREFIX = 'parley:room:';

/** `host:port` pairs as REDIS_CLUSTER_NODES lists them. */
export const clusterStartupNodes = (nodes: readonly string[]) =>
  nodes.map((node) => {
    const at = node.lastIndexOf(':');
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
  });

/**
 * Fan-out over Redis Cluster's sharded pub/sub (Redis ≥ 7): a room's channel lives on the shard
 * owning its slot, so each message crosses one shard, not the whole cluster bus as classic
 * PUBLISH does, and pub/sub grows with the shards. ioredis keeps one subscriber connection per
 * master and moves the subscriptions after a failover; anything published while they moved is
 * brought by the resync that follows, and the sweep covers the moments before it.
 */
export function createRedisClusterEngine({ nodes, maxQueuedBatches = 10_000 }: { nodes: readonly string[]; maxQueuedBatches?: number }): FanoutEngine {
  let handlers!: EngineHandlers;
  const channel = (busChannel: string) => PREFIX + busChannel;
  const cluster = new Cluster(clusterStartupNodes(nodes), {
    shardedSubscribers: true,
    lazyConnect: true,
    // A publish during a failover waits for the promoted replica (retried on CLUSTERDOWN and
    // moved slots) rather than failing at once; the outgoing queue bounds what waits behind it.
    retryDelayOnClusterDown: 100,
    retryDelayOnFailover: 100,
    clusterRetryStrategy: (n) => Math.min(n * 50, 1_000),
    redisOptions: { connectionName: 'parley-fanout' },
  });
  const outgoing = createOutgoingSender({
    maxBatches: maxQueuedBatches,
    send: (batches) =>
      Promise.all(batches.map((batch) => cluster.spublish(channel(batch.room), JSON.stringify(batch)).catch((err: unknown) => handlers.onError(err, 'redis-cluster publish')))),
    onOverflow: (dropped) => handlers.onError(`${dropped} queued batches collapsed`, 'redis-cluster queue full'),
  });
  const watched = new Set<string>();
  /** False from a subscriber lost until every watched channel is subscribed again. */
  let subscribersUp = false;

  const ssubscribe = (busChannel: string) =>
    cluster.ssubscribe(channel(busChannel)).then(
      () => handlers.resync(busChannel),
      (err: unknown) => handlers.onError(err, 'redis-cluster subscribe'),
    );

  /**
   * ioredis moves the subscriptions to new subscriber connections and says `subscribersReady`
   * without waiting for the SSUBSCRIBEs it sent: a resync then could read the database before
   * the subscription takes effect and miss what falls between. So each channel is subscribed
   * again here, and re-read once that is acknowledged (on the same connection, so after ioredis'
   * own). ioredis lists a channel once more per such round until it is unwatched; harmless, and
   * one entry per failover.
   */
  async function resubscribe() {
    await Promise.all([...watched].map(ssubscribe));
    subscribersUp = true;
  }

  return {
    name: 'redis-cluster',
    async start(h) {
      handlers = h;
      cluster.on('error', (err) => handlers.onError(err, 'redis-cluster connection'));
      cluster.on('smessage', (ch: string, payload: string) => {
        if (!ch.startsWith(PREFIX)) return;
        try {
          handlers.deliver(JSON.parse(payload));
        } catch (err) {
          handlers.onError(err, 'redis-cluster message');
        }
      });
      cluster.on('-subscriber', () => (subscribersUp = false));
      const ready = new Promise<void>((resolve) => cluster.once('subscribersReady', resolve));
      await connectCluster(cluster);
      await ready;
      subscribersUp = true;
      cluster.on('subscribersReady', () => void resubscribe());
    },
    publish: outgoing.publish,
    watch(busChannel) {
      watched.add(busChannel);
      // Whatever was published before the subscription took effect is read from the database.
      void ssubscribe(busChannel);
    },
    unwatch(busChannel) {
      watched.delete(busChannel);
      cluster.sunsubscribe(channel(busChannel)).catch((err: unknown) => handlers.onError(err, 'redis-cluster unsubscribe'));
    },
    isUp: () => subscribersUp && cluster.status === 'ready',
    async close() {
      outgoing.close();
      subscribersUp = false;
      cluster.disconnect();
    },
  };
}
