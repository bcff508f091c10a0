import { Redis } from 'ioredis';
import type { EngineHandlers, FanoutEngine } from './fanout-engine.ts';
import { createOutgoingSender } from './outgoing-queue.ts';

const PREFIX = 'parley:room:';

/**
 * Fan-out over Redis pub/sub, one channel per bus channel (room, user, presence), subscribed only
 * while this instance has local listeners for it. Subscriptions are restored by us, not by the client's autoResubscribe:
 * only after SUBSCRIBE is acknowledged can the feeds re-read without missing anything.
 */
export function createRedisEngine({ url, maxQueuedBatches = 10_000 }: { url: string; maxQueuedBatches?: number }): FanoutEngine {
  let handlers!: EngineHandlers;
  // One round of publishes in flight at a time; what queues meanwhile waits here, bounded, instead
  // of in the client's command queue, which grows without limit while Redis is slow.
  const outgoing = createOutgoingSender({
    maxBatches: maxQueuedBatches,
    send: (batches) => Promise.all(batches.map((batch) => pub.publish(channel(batch.room), JSON.stringify(batch)).catch((err: unknown) => handlers.onError(err, 'redis publish')))),
    onOverflow: (dropped) => handlers.onError(`${dropped} queued batches collapsed`, 'redis queue full'),
  });
  const watched = new Set<string>();
  let subscribed = false;
  const common = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n: number) => Math.min(n * 50, 1_000) };
  const sub = new Redis(url, { ...common, connectionName: 'parley-sub', autoResubscribe: false, autoResendUnfulfilledCommands: false });
  // Every publish of one tick goes out in one write.
  const pub = new Redis(url, { ...common, connectionName: 'parley-pub', enableAutoPipelining: true });

  // Users' and presence channels carry the room prefix too: it is what instances of other versions listen to.
  const channel = (busChannel: string) => PREFIX + busChannel;

  async function resubscribe() {
    try {
      const done = new Set<string>();
      // Rooms watched while SUBSCRIBE is in flight are taken by the next round.
      for (let todo = [...watched]; todo.length; todo = [...watched].filter((r) => !done.has(r))) {
        await sub.subscribe(...todo.map(channel));
        for (const r of todo) done.add(r);
      }
      subscribed = true;
      handlers.resync();
    } catch (err) {
      handlers.onError(err, 'redis resubscribe');
      // The connection broke again; its next 'ready' tries again.
    }
  }

  return {
    name: 'redis',
    async start(h) {
      handlers = h;
      for (const client of [sub, pub]) client.on('error', (err) => handlers.onError(err, 'redis connection'));
      sub.on('close', () => (subscribed = false));
      sub.on('message', (ch: string, payload: string) => {
        if (!ch.startsWith(PREFIX)) return;
        try {
          handlers.deliver(JSON.parse(payload));
        } catch (err) {
          handlers.onError(err, 'redis message');
        }
      });
      await Promise.all([sub.connect(), pub.connect()]);
      await resubscribe();
      sub.on('ready', () => void resubscribe());
    },
    publish: outgoing.publish,
    watch(busChannel) {
      watched.add(busChannel);
      if (!subscribed) return;
      // Whatever was published before the subscription took effect is read from the database.
      sub.subscribe(channel(busChannel)).then(
        () => handlers.resync(busChannel),
        (err: unknown) => handlers.onError(err, 'redis subscribe'),
      );
    },
    unwatch(busChannel) {
      watched.delete(busChannel);
      if (subscribed) sub.unsubscribe(channel(busChannel)).catch((err: unknown) => handlers.onError(err, 'redis unsubscribe'));
    },
    isUp: () => subscribed && pub.status === 'ready',
    async close() {
      outgoing.close();
      subscribed = false;
      sub.disconnect();
      pub.disconnect();
    },
  };
}
