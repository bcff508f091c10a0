import { connect, Events, type NatsConnection, type Subscription } from 'nats';
import { keyOfChannel, subjectOf } from './bus-key.ts';
import type { EngineHandlers, FanoutEngine, RoomBatch } from './fanout-engine.ts';
import { batchParts } from './batch-parts.ts';
import { createOutgoingSender } from './outgoing-queue.ts';

const PREFIX = 'parley.';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Fan-out over core NATS: one subject per bus key (`parley.room.<id>`, `parley.user.<id>`,
 * `parley.presence` …), subscribed only while this instance has local listeners for it. Core
 * NATS is at-most-once and keeps nothing for a subscriber that was away; the feeds' gap repair,
 * the resync after each reconnect and the sweep make delivery exact.
 */
export function createNatsEngine({ servers, maxQueuedBatches = 10_000 }: { servers: string[]; maxQueuedBatches?: number }): FanoutEngine {
  let handlers!: EngineHandlers;
  let nc: NatsConnection | undefined;
  let up = false;
  /** Watched channels, with their subscription once there is a connection. */
  const subs = new Map<string, Subscription | undefined>();
  const subject = (channel: string) => PREFIX + subjectOf(keyOfChannel(channel));

  // Over the server's max_payload (1 MB by default) the client refuses to publish: a batch that big
  // goes in pieces, its messages read by the receivers from the database (see batchParts).
  const encode = (batch: RoomBatch, maxBytes: number) => batchParts(batch, maxBytes).map((part) => encoder.encode(part));

  // A PING/PONG per round paces the rounds by the server: what queues meanwhile waits here,
  // bounded, rather than in the client's buffer, which has no bound while it is reconnecting.
  const outgoing = createOutgoingSender({
    maxBatches: maxQueuedBatches,
    async send(batches) {
      const conn = nc;
      if (!conn || conn.isClosed()) return;
      for (const batch of batches) {
        try {
          for (const payload of encode(batch, conn.info?.max_payload ?? 1024 * 1024)) conn.publish(subject(batch.room), payload);
        } catch (err) {
          handlers.onError(err, 'nats publish');
        }
      }
      await conn.flush().catch((err: unknown) => handlers.onError(err, 'nats publish'));
    },
    onOverflow: (dropped) => handlers.onError(`${dropped} queued batches collapsed`, 'nats queue full'),
  });

  function subscribe(conn: NatsConnection, channel: string) {
    subs.set(
      channel,
      conn.subscribe(subject(channel), {
        callback(err, msg) {
          if (err) return handlers.onError(err, 'nats subscription');
          try {
            handlers.deliver(JSON.parse(decoder.decode(msg.data)));
          } catch (e) {
            handlers.onError(e, 'nats message');
          }
        },
      }),
    );
  }

  async function watchStatus(conn: NatsConnection) {
    for await (const status of conn.status()) {
      if (status.type === Events.Disconnect) up = false;
      if (status.type === Events.Reconnect) {
        // The client sent our SUBs again before this; once the server answers a PING after
        // them they are in effect, and anything published before that is read from the database.
        try {
          await conn.flush();
          up = true;
          handlers.resync();
        } catch (err) {
          handlers.onError(err, 'nats resubscribe');
        }
      }
      if (status.type === Events.Error) handlers.onError(status.data, 'nats connection');
    }
  }

  return {
    name: 'nats',
    async start(h) {
      handlers = h;
      const conn = await connect({
        servers,
        name: 'parley',
        // Our own batches come back to nobody: the bus drops its echo anyway, this spares the bytes.
        noEcho: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        reconnectJitter: 100,
        // A server that stops answering (frozen, cut off) is given up within seconds, not minutes.
        pingInterval: 5_000,
        maxPingOut: 2,
      });
      nc = conn;
      void watchStatus(conn);
      void conn.closed().then((err) => {
        up = false;
        if (err) handlers.onError(err, 'nats connection');
      });
      for (const channel of subs.keys()) subscribe(conn, channel);
      await conn.flush();
      up = true;
      handlers.resync();
    },
    publish: outgoing.publish,
    watch(channel) {
      if (subs.has(channel)) return;
      const conn = nc;
      if (!conn) return void subs.set(channel, undefined);
      subscribe(conn, channel);
      if (!up) return;
      conn.flush().then(
        () => handlers.resync(channel),
        (err: unknown) => handlers.onError(err, 'nats subscribe'),
      );
    },
    unwatch(channel) {
      const sub = subs.get(channel);
      subs.delete(channel);
      sub?.unsubscribe();
    },
    isUp: () => up && !!nc && !nc.isClosed(),
    async close() {
      outgoing.close();
      up = false;
      await nc?.close().catch(() => {});
    },
  };
}
