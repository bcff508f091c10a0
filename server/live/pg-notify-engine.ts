import pg from 'pg';
import type { EngineHandlers, FanoutEngine, RoomBatch } from './fanout-engine.ts';
import { createOutgoingSender } from './outgoing-queue.ts';
import { packNotifyPayloads } from './notify-payload.ts';

export const NOTIFY_CHANNEL = 'parley_events';
/** The LISTEN session's application_name, so operators (and tests) can find it in pg_stat_activity. */
export const LISTEN_APPLICATION_NAME = 'parley-listen';

/**
 * Fan-out over PostgreSQL LISTEN/NOTIFY on one channel for every room: a per-room channel would
 * cost one LISTEN per watched room, and PostgreSQL matches each notification against a session's
 * channels one by one.
 *
 * NOTIFY never runs inside a send's transaction: a transaction that notifies takes a
 * database-wide lock until its commit is flushed (PreCommit_Notify in async.c). It runs after the
 * commit, on a connection of its own, one statement at a time; what queued meanwhile goes in the
 * next statement, so under load one NOTIFY statement carries many group commits.
 *
 * `windowMs` holds each statement that long before sending it, so that what follows within it
 * goes in the same one. Without it, at a few hundred sends a second every group commit was
 * a NOTIFY statement of its own, and writing those to PostgreSQL (and reading their echo on the
 * LISTEN session) cost the server about 15 % of a core at 500 msg/s on this machine.
 */
export function createPgNotifyEngine({
  databaseUrl,
  reconnectMaxMs = 2_000,
  windowMs = 0,
  maxQueuedBatches = 10_000,
}: {
  databaseUrl: string;
  reconnectMaxMs?: number;
  windowMs?: number;
  /** Batches waiting for the NOTIFY connection before the queue collapses (see outgoing-queue.ts). */
  maxQueuedBatches?: number;
}): FanoutEngine {
  let handlers!: EngineHandlers;
  let listener: pg.Client | undefined;
  let up = false;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  // Not the ORM's pool: a NOTIFY stuck behind a full queue must not hold a connection sends need.
  const notifier = new pg.Pool({ connectionString: databaseUrl, max: 1, application_name: 'parley-notify', connectionTimeoutMillis: 5_000, statement_timeout: 5_000 });
  notifier.on('error', (err) => handlers?.onError(err, 'notify connection'));
  // One statement at a time; what arrives within the window goes in the same one: at most one per window.
  const outgoing = createOutgoingSender({
    maxBatches: maxQueuedBatches,
    windowMs,
    send: async (batches) => {
      try {
        // The payloads as one JSON text, not a text[]: pg builds an array literal in JavaScript,
        // escaping every quote of every payload, which allocated more than the rest of the engine.
        await notifier.query('select pg_notify($1, p) from json_array_elements_text($2::json) as p', [NOTIFY_CHANNEL, JSON.stringify(packNotifyPayloads(batches))]);
      } catch (err) {
        // The messages are committed; receivers miss them live until their next event or resync.
        handlers.onError(err, 'notify');
      }
    },
    onOverflow: (dropped) => handlers.onError(`${dropped} queued batches collapsed`, 'notify queue full'),
  });

  async function connect() {
    // Its own session, never from a pool: LISTEN lives and dies with the session.
    const client = new pg.Client({ connectionString: databaseUrl, application_name: LISTEN_APPLICATION_NAME, keepAlive: true });
    client.on('notification', ({ payload }) => {
      if (!payload) return;
      try {
        for (const batch of JSON.parse(payload) as RoomBatch[]) handlers.deliver(batch);
      } catch (err) {
        handlers.onError(err, 'notification');
      }
    });
    const lost = (err?: unknown) => {
      if (listener !== client) return;
      listener = undefined;
      up = false;
      if (err) handlers.onError(err, 'listen connection');
      void client.end().catch(() => {});
      if (!closed) scheduleReconnect(50);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      void client.end().catch(() => {});
      // Dropped while connecting: `lost` has already scheduled the next attempt, and a second
      // one here would leave two LISTEN sessions (each delivering every event) once both succeed.
      if (listener !== client) return;
      listener = undefined;
      throw err;
    }
    if (listener !== client) return void client.end().catch(() => {});
    up = true;
    // Whatever was notified while we were not listening is gone: every feed re-reads.
    handlers.resync();
  }

  function scheduleReconnect(delayMs: number) {
    retryTimer = setTimeout(() => {
      connect().catch((err: unknown) => {
        handlers.onError(err, 'listen reconnect');
        if (!closed) scheduleReconnect(Math.min(delayMs * 2, reconnectMaxMs));
      });
    }, delayMs);
  }

  return {
    name: 'postgres',
    async start(h) {
      handlers = h;
      await connect();
    },
    publish: outgoing.publish,
    watch() {},
    unwatch() {},
    isUp: () => up,
    async close() {
      closed = true;
      outgoing.close();
      up = false;
      clearTimeout(retryTimer);
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => {});
      await notifier.end().catch(() => {});
    },
  };
}
