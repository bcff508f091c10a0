import { Cluster, Redis } from 'ioredis';
import { connect } from 'nats';
import pg from 'pg';
import { describe, expect, vi } from 'vitest';
import type { InboxEvent, RoomEvent } from '../client-sdk/index.ts';
import { NOTIFY_CHANNEL } from '../server/live/pg-notify-engine.ts';
import { engineTests } from './support/engine-cases.ts';
import { openTrpcSocket } from './support/raw-trpc.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

const OFFLINE_DELAY_MS = 800;
const ROOMS = 200;
/** Past the offline delay, with room for a loaded machine. */
const WAIT = { timeout: 5_000 };

/** Counts what crosses the engine between instances: batches carrying `user`'s presence. */
async function wireTap(engine: 'postgres' | 'redis' | 'redis-cluster' | 'nats', app: TestApp, env: Record<string, string>) {
  const batches: Array<{ room: string; events: Array<{ type: string; user?: string }> }> = [];
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: app.databaseUrl });
    await client.connect();
    client.on('notification', ({ payload }) => batches.push(...JSON.parse(payload!)));
    await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    return { presenceOf: (user: string) => batches.filter((b) => b.events.some((e) => e.type === 'presence' && e.user === user)).length, close: () => client.end() };
  }
  if (engine === 'nats') {
    const nc = await connect({ servers: env.NATS_URL! });
    nc.subscribe('parley.>', { callback: (_err, msg) => batches.push(msg.json()) });
    await nc.flush();
    return { presenceOf: (user: string) => batches.filter((b) => b.events.some((e) => e.type === 'presence' && e.user === user)).length, close: () => nc.close() };
  }
  if (engine === 'redis-cluster') {
    // Sharded pub/sub has no patterns; presence has a channel of its own.
    const nodes = env.REDIS_CLUSTER_NODES!.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }));
    const cluster = new Cluster(nodes, { shardedSubscribers: true });
    cluster.on('smessage', (_ch: string, payload: string) => batches.push(JSON.parse(payload)));
    await cluster.ssubscribe('parley:room:presence');
    return { presenceOf: (user: string) => batches.filter((b) => b.events.some((e) => e.type === 'presence' && e.user === user)).length, close: async () => void cluster.disconnect() };
  }
  const sub = new Redis(env.REDIS_URL!);
  sub.on('pmessage', (_p, _ch, payload) => batches.push(JSON.parse(payload)));
  await sub.psubscribe('parley:room:*');
  return { presenceOf: (user: string) => batches.filter((b) => b.events.some((e) => e.type === 'presence' && e.user === user)).length, close: async () => void sub.disconnect() };
}

/** Each engine's app, and a tap on what crosses the engine. */
const engines = engineTests().map(({ engine, skip, it }) => ({
  engine,
  skip,
  it: it.extend<{ $file: { app: TestApp; tap: Awaited<ReturnType<typeof wireTap>> } }>({
    app: [
      async ({ engineEnv }, use) => {
        await using app = await startTestApp(`${import.meta.filename}-${engine}`, { ...engineEnv, PRESENCE_OFFLINE_DELAY_MS: String(OFFLINE_DELAY_MS) });
        await use(app);
      },
      { scope: 'file' },
    ],
    tap: [
      async ({ app, engineEnv }, use) => {
        const tap = await wireTap(engine, app, engineEnv);
        try {
          await use(tap);
        } finally {
          await tap.close();
        }
      },
      { scope: 'file' },
    ],
  }),
}));

describe.each(engines)('presence over $engine fan-out', ({ skip, it }) => {
  /** A socket of `user` that counts toward their presence (its first call authenticated it). */
  async function connect(app: TestApp, user: string) {
    const socket = await openTrpcSocket(app.url, await app.token(user));
    await socket.call('query', 'rooms.list', { limit: 1 });
    return { close: async () => (socket.ws.close(), await socket.closed) };
  }

  /** `user`'s inbox stream; the returned function lists another user's presence heard on it (and when each arrived). */
  async function watchInbox(app: TestApp, user: string) {
    const events: Array<InboxEvent & { at: number }> = [];
    (await app.client(user)).rooms.onEvent.subscribe(undefined, { onData: (e) => events.push({ ...e, at: Date.now() }) });
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'ready', at: expect.any(Number) }), WAIT);
    const presence = (of: string) => events.filter((e) => e.type === 'presence' && e.user === of) as Array<{ online: boolean; at: number }>;
    return Object.assign((of: string) => presence(of).map((e) => e.online), { arrivals: (of: string) => presence(of).map((e) => e.at) });
  }

  it.skipIf(skip)(`a change of a user with ${ROOMS} rooms is one batch between instances, and room and inbox streams still hear it`, async ({ app, tap }) => {
    await app.sql(`insert into users (id) select 'fan-' || g from generate_series(1, $1::int) g union all select 'zed'`, [ROOMS]);
    await app.sql(`insert into chat_rooms (id, participant1_id, participant2_id, accepted_at) select gen_random_uuid(), 'zed', 'fan-' || g, now() from generate_series(1, $1::int) g`, [ROOMS]);
    const inbox = await watchInbox(app, 'fan-7');
    const fan = await app.client('fan-9');
    const [{ room }] = (await app.sql<{ room: string }>(`select id as room from chat_rooms where participant2_id = 'fan-9'`)) as [{ room: string }];
    const roomEvents: RoomEvent[] = [];
    await new Promise<void>((started) => fan.messages.onEvent.subscribe({ roomId: room }, { onStarted: () => started(), onData: (e) => roomEvents.push(e.data) }));
    await vi.waitFor(() => expect(inbox('zed')).toEqual([]), WAIT);

    const zed = await connect(app, 'zed');
    await vi.waitFor(() => expect(inbox('zed')).toEqual([true]), WAIT);
    await vi.waitFor(() => expect(roomEvents.filter((e) => e.type === 'presence' && e.user === 'zed').map((e) => e.type === 'presence' && e.online)).toEqual([true]), WAIT);
    await zed.close();
    await vi.waitFor(() => expect(inbox('zed')).toEqual([true, false]), WAIT);
    await vi.waitFor(() => expect(tap.presenceOf('zed')).toBe(2), WAIT);
    // rooms.list still knows who is online.
    const list = await (await app.client('fan-7')).rooms.list.query({ limit: 10 });
    expect(list.items[0]!.other).toMatchObject({ user: 'zed', online: false });
  });

  it.skipIf(skip)('offline is announced only once it has lasted the delay; reconnects within it announce nothing; one user’s changes are a delay apart', async ({ app }) => {
    await app.sql(`insert into users (id) values ('yan'), ('xia')`);
    await app.sql(`insert into chat_rooms (id, participant1_id, participant2_id) values (gen_random_uuid(), 'yan', 'xia')`);
    const inbox = await watchInbox(app, 'xia');
    let yan = await connect(app, 'yan');
    await vi.waitFor(() => expect(inbox('yan')).toEqual([true]), WAIT);
    const onlineAt = Date.now();
    for (let i = 0; i < 5; i++) {
      await yan.close();
      yan = await connect(app, 'yan');
    }
    // Taken before the close starts: the server cannot have seen it any earlier.
    const closedAt = Date.now();
    await yan.close();
    await vi.waitFor(() => expect(inbox('yan')).toEqual([true, false]), WAIT);
    const offlineAt = inbox.arrivals('yan')[1]!;
    expect(offlineAt - closedAt).toBeGreaterThanOrEqual(OFFLINE_DELAY_MS);
    expect(offlineAt - onlineAt).toBeGreaterThanOrEqual(OFFLINE_DELAY_MS);
    // Back at once after the offline went out: its online waits out the delay too (half of it
    // here leaves room for delivery jitter; without the spacing it came within milliseconds).
    yan = await connect(app, 'yan');
    await vi.waitFor(() => expect(inbox('yan')).toEqual([true, false, true]), WAIT);
    expect(inbox.arrivals('yan')[2]! - offlineAt).toBeGreaterThanOrEqual(OFFLINE_DELAY_MS / 2);
    await yan.close();
  });
});
