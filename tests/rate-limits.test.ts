import { TRPCClientError } from '@trpc/client';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp } from './support/peer-app.ts';
import { openTrpcSocket } from './support/raw-trpc.ts';
import { hasRedisCluster, startTestRedisCluster, type TestRedisCluster } from './support/redis-cluster.ts';
import { hasRedisServer, startTestRedis, type TestRedis } from './support/redis-server.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import { appTest, startTestApp } from './support/test-app.ts';
import { within } from './support/within.ts';

// A slow refill, so a drained bucket stays drained for the length of a test.
const LIMITS = {
  SEND_RATE_PER_SEC: '0.05',
  SEND_BURST: '3',
  TYPING_RATE_PER_SEC: '0.05',
  TYPING_BURST: '2',
  MARK_READ_RATE_PER_SEC: '0.05',
  MARK_READ_BURST: '2',
  EDIT_RATE_PER_SEC: '0.05',
  EDIT_BURST: '2',
  DELETE_RATE_PER_SEC: '0.05',
  DELETE_BURST: '2',
};

async function trpcError(call: Promise<unknown>) {
  const err = await call.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TRPCClientError);
  return (err as TRPCClientError<never>).data as unknown as { code: string; httpStatus: number; parleyCode: string; details: { retryAfterSeconds?: number } };
}

async function restSend(app: { url: string }, token: string, roomId: string, user: string) {
  return fetch(`${app.url}/${roomId}/messages/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content: 'hello', chat_room: roomId, sender: user }),
  });
}

const oneIt = appTest(`${import.meta.filename}-one`, LIMITS);
const roomsIt = appTest(`${import.meta.filename}-rooms`, { ROOM_OPEN_RATE_PER_SEC: '0.05', ROOM_OPEN_BURST: '4', ROOMS_OPEN_PER_DAY: '4' });
const connectionIt = appTest(`${import.meta.filename}-connection`, { WS_MAX_INFLIGHT: '2', WS_MAX_SUBSCRIPTIONS: '2', HTTP_HEADERS_TIMEOUT_MS: '500' }).extend<{ $file: { roomId: string } }>({
  roomId: [async ({ t }, use) => use((await (await t.client('alice')).rooms.open.mutate({ otherUserId: 'bob' })).id), { scope: 'file' }],
});

/** A Redis server for one describe's tests. */
const redisTest = () =>
  test.extend<{ $file: { redis: TestRedis } }>({
    redis: [
      async ({}, use) => {
        await using redis = await startTestRedis();
        await use(redis);
      },
      { scope: 'file' },
    ],
  });
const sharedIt = redisTest();
const clusterIt = test.extend<{ $file: { cluster: TestRedisCluster } }>({
  cluster: [
    async ({}, use) => {
      await using cluster = await startTestRedisCluster({ replicas: false });
      await use(cluster);
    },
    { scope: 'file' },
  ],
});
const stallIt = redisTest();
if (!hasRedisServer) console.warn('SKIPPED the shared-limit and stalled-Redis cases: no redis-server binary on PATH (CI has one)');

describe('one instance', () => {
  oneIt('one bucket per user across surfaces: tRPC TOO_MANY_REQUESTS, REST 429 with Retry-After and {detail}, ws/chat an error frame on an open socket', async ({ t: app }) => {
    const alice = await app.client('alice');
    const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
    for (let i = 0; i < 3; i++) await alice.messages.send.mutate({ roomId: room.id, content: `m${i}` });
    const data = await trpcError(alice.messages.send.mutate({ roomId: room.id, content: 'one too many' }));
    expect(data).toMatchObject({ code: 'TOO_MANY_REQUESTS', httpStatus: 429, parleyCode: 'RATE_LIMITED' });
    expect(data.details.retryAfterSeconds).toBeGreaterThanOrEqual(1);

    const res = await restSend(app, await app.token('alice'), room.id, 'alice');
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toEqual({ detail: expect.stringMatching(/throttled/) });

    const socket = await openLegacySocket(app.url, 'alice', 'bob', await app.token('alice'));
    socket.send({ action: 'new_message', message: 'over the limit', sender: 'alice', chat_room: room.id, other_user: 'bob' });
    expect(await socket.waitFor((f) => f.action === 'error')).toMatchObject({ action: 'error', code: 'RATE_LIMITED' });
    // Typing has a bucket of its own, and the socket is still open to carry it.
    socket.send({ action: 'typing', chat_room: room.id, other_user: 'bob' });
    expect(await socket.waitFor((f) => f.action === 'typing')).toMatchObject({ user: 'alice' });
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    socket.close();

    expect(await app.sql('select count(*)::int as n from messages where chat_room_id = $1', [room.id])).toEqual([{ n: 3 }]);
    // Another user's bucket is untouched.
    const bob = await app.client('bob');
    await expect(bob.messages.send.mutate({ roomId: room.id, content: 'from bob' })).resolves.toMatchObject({ seq: 4 });
  });

  oneIt('typing is limited per user too', async ({ t: app }) => {
    const carol = await app.client('carol');
    const room = await carol.rooms.open.mutate({ otherUserId: 'dave' });
    await carol.messages.typing.mutate({ roomId: room.id });
    await carol.messages.typing.mutate({ roomId: room.id });
    expect(await trpcError(carol.messages.typing.mutate({ roomId: room.id }))).toMatchObject({ code: 'TOO_MANY_REQUESTS', parleyCode: 'RATE_LIMITED' });
  });

  oneIt('markRead, edit and delete each have a per-user bucket of their own, apart from sends', async ({ t: app }) => {
    const gus = await app.client('gus');
    const room = await gus.rooms.open.mutate({ otherUserId: 'hal' });
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await gus.messages.send.mutate({ roomId: room.id, content: `m${i}` }));
    const [m0, m1, m2] = sent as [(typeof sent)[number], (typeof sent)[number], (typeof sent)[number]];
    const limited = { code: 'TOO_MANY_REQUESTS', httpStatus: 429, parleyCode: 'RATE_LIMITED', details: { retryAfterSeconds: expect.any(Number) } };

    await gus.messages.markRead.mutate({ roomId: room.id, seq: 1 });
    await gus.messages.markRead.mutate({ roomId: room.id, seq: 2 });
    expect(await trpcError(gus.messages.markRead.mutate({ roomId: room.id, seq: 3 }))).toMatchObject(limited);

    await gus.messages.edit.mutate({ roomId: room.id, messageId: m0.id, content: 'e1' });
    await gus.messages.edit.mutate({ roomId: room.id, messageId: m0.id, content: 'e2' });
    expect(await trpcError(gus.messages.edit.mutate({ roomId: room.id, messageId: m1.id, content: 'e3' }))).toMatchObject(limited);

    await gus.messages.delete.mutate({ roomId: room.id, messageId: m1.id });
    await gus.messages.delete.mutate({ roomId: room.id, messageId: m2.id });
    expect(await trpcError(gus.messages.delete.mutate({ roomId: room.id, messageId: m0.id }))).toMatchObject(limited);

    // The refused calls changed nothing; the marker and the messages are where the allowed ones left them.
    expect(await app.sql('select seq::int from read_markers where chat_room_id = $1', [room.id])).toEqual([{ seq: 2 }]);
    expect(await app.sql('select content, deleted_at is not null as deleted from messages where chat_room_id = $1 order by seq', [room.id])).toEqual([
      { content: 'e2', deleted: false },
      { content: '', deleted: true },
      { content: '', deleted: true },
    ]);
    // Another user's buckets are untouched.
    const hal = await app.client('hal');
    await expect(hal.messages.markRead.mutate({ roomId: room.id, seq: 3 })).resolves.toEqual({ seq: 3 });
  });
});

describe('rooms.open', () => {
  roomsIt('is rate-limited per user, on tRPC and REST alike', async ({ t: app }) => {
    const ivan = await app.client('ivan');
    for (const other of ['o1', 'o2', 'o3', 'o4']) await ivan.rooms.open.mutate({ otherUserId: other });
    expect(await trpcError(ivan.rooms.open.mutate({ otherUserId: 'o1' }))).toMatchObject({ code: 'TOO_MANY_REQUESTS', parleyCode: 'RATE_LIMITED', details: { retryAfterSeconds: expect.any(Number) } });
    const res = await fetch(`${app.url}/rooms/`, { method: 'POST', headers: { authorization: `Bearer ${await app.token('ivan')}`, 'content-type': 'application/json' }, body: JSON.stringify({ other_user: 'o5' }) });
    expect(res.status).toBe(429);
    expect(await app.sql(`select count(*)::int as n from chat_rooms where participant1_id = 'ivan'`)).toEqual([{ n: 4 }]);
    // Another user's bucket is untouched.
    await expect((await app.client('judy')).rooms.open.mutate({ otherUserId: 'o1' })).resolves.toMatchObject({ participant1: 'judy' });
  });

  roomsIt('new rooms are capped per day, counted in the database (rooms made elsewhere count, a day-old one does not); reopening an existing room is still allowed', async ({ t: app }) => {
    await app.sql(`insert into users (id) values ('kurt'), ('q1'), ('q2'), ('q3'), ('q9')`);
    // Two made today on another instance, one made two days ago.
    await app.sql(`insert into chat_rooms (id, participant1_id, participant2_id, created_at) values
      (gen_random_uuid(), 'kurt', 'q1', now()), (gen_random_uuid(), 'kurt', 'q2', now() - interval '23 hours'), (gen_random_uuid(), 'kurt', 'q9', now() - interval '2 days')`);
    const kurt = await app.client('kurt');
    await kurt.rooms.open.mutate({ otherUserId: 'q3' });
    await kurt.rooms.open.mutate({ otherUserId: 'q4' });
    const refused = await trpcError(kurt.rooms.open.mutate({ otherUserId: 'q5' }));
    // Free again once the oldest of today's rooms is a day old: in about an hour.
    expect(refused).toMatchObject({ code: 'TOO_MANY_REQUESTS', parleyCode: 'RATE_LIMITED' });
    expect(refused.details.retryAfterSeconds).toBeGreaterThan(3_000);
    expect(refused.details.retryAfterSeconds).toBeLessThanOrEqual(3_600);
    await expect(kurt.rooms.open.mutate({ otherUserId: 'q1' })).resolves.toMatchObject({ participant2: 'q1' });
    expect(await app.sql(`select count(*)::int as n from users where id = 'q5'`)).toEqual([{ n: 0 }]);
  });
});

describe('two instances', () => {
  async function pair(tag: string, env: Record<string, string>) {
    const a = await startTestApp(`${import.meta.filename}-${tag}`, { ...LIMITS, ...env });
    const b = await startPeerApp(a, { ...LIMITS, ...env });
    const token = await a.token('erin');
    const room = await (await a.client('erin')).rooms.open.mutate({ otherUserId: 'frank' });
    const sendsBefore429 = async () => {
      let ok = 0;
      for (const target of [a, b, a, b, a, b]) {
        const res = await restSend(target, token, room.id, 'erin');
        if (res.status !== 201) return ok;
        ok++;
      }
      return ok;
    };
    // `await using`: the peer closes before the app whose database it shares.
    return { a, b, sendsBefore429, [Symbol.asyncDispose]: async () => { await b.close(); await a.close(); } };
  }

  // The shared cases wait for Redis however long it takes: past REDIS_COMMAND_TIMEOUT_MS (50 ms) a
  // call falls back to the instance's own bucket, which on a busy machine, a cluster just started,
  // let one send more through than the shared burst. The fallback has its own tests below.
  const PATIENT = { REDIS_COMMAND_TIMEOUT_MS: '30000' };

  sharedIt.skipIf(!hasRedisServer)('with Redis the limit holds across instances: the burst is shared', async ({ redis }) => {
    await using instances = await pair('redis', { REDIS_URL: redis.url, ...PATIENT });
    expect(instances.a.app.services.limiter.scope).toBe('redis');
    expect(await instances.sendsBefore429()).toBe(3);
  });

  // Starting the cluster counts toward the test's time: a machine busy with other work needs more than the default minute.
  clusterIt.skipIf(!hasRedisCluster)('with a Redis Cluster the limit holds across instances too: each bucket is one hash-tagged key, in one slot', { timeout: 120_000 }, async ({ cluster }) => {
    await using instances = await pair('cluster', { FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.nodes, ...PATIENT });
    expect(instances.a.app.services.limiter.scope).toBe('redis');
    expect(await instances.sendsBefore429()).toBe(3);
    const node = new Redis({ port: await cluster.masterOf('parley:limit:{send:erin}') });
    try {
      expect(await node.exists('parley:limit:{send:erin}')).toBe(1);
    } finally {
      node.disconnect();
    }
  });

  sharedIt('with PostgreSQL only each instance counts on its own: a user gets up to the burst on each', async () => {
    await using instances = await pair('pg', {});
    expect(instances.a.app.services.limiter.scope).toBe('memory');
    expect(await instances.sendsBefore429()).toBe(6);
  });
});

describe('a stalled Redis', () => {
  stallIt.skipIf(!hasRedisServer)('a Redis whose every reply comes later than REDIS_COMMAND_TIMEOUT_MS, from the first on: the instance starts all the same, and its calls go on on per-instance buckets', async ({ redis }) => {
    // The deadline is the rate-limit call's, not the connection's: the connection's own handshake
    // (HELLO, CLIENT SETNAME) is as slow, and the start must not fail on it.
    const proxy = await startTcpProxy(redis.url, { replyDelayMs: 200 });
    try {
      await using app = await within(20_000, 'start', startTestApp(`${import.meta.filename}-slow`, { FANOUT: 'postgres', REDIS_URL: `redis://127.0.0.1:${new URL(proxy.url).port}`, REDIS_COMMAND_TIMEOUT_MS: '50', SEND_RATE_PER_SEC: '0.01', SEND_BURST: '1000' }));
      expect(app.app.services.limiter.scope).toBe('redis');
      const alice = await app.client('alice');
      const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
      await within(2_000, 'send', alice.messages.send.mutate({ roomId: room.id, content: 'late replies' }));
    } finally {
      await proxy.close();
    }
  });

  stallIt.skipIf(!hasRedisServer)('while Redis is frozen (SIGSTOP, connection open) limited calls go on without waiting for it, on per-instance buckets; once it answers again the limits are shared there again', async ({ redis }) => {
    // Buckets large enough that nothing here is refused: the case is about waiting, not counting.
    const roomy = { SEND_RATE_PER_SEC: '0.01', SEND_BURST: '1000', TYPING_RATE_PER_SEC: '0.01', TYPING_BURST: '1000', MARK_READ_RATE_PER_SEC: '0.01', MARK_READ_BURST: '1000' };
    // A deadline long enough that calls each waiting for it would add up to more than the bound below.
    await using app = await startTestApp(`${import.meta.filename}-stall`, { ...roomy, REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '250' });
    // Sends publish to the frozen Redis too (the fan-out engine), which must hold none of them either.
    expect(app.app.services.fanout.name).toBe('redis');
    const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await probe.connect();
    const alice = await app.client('alice');
    const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
    await alice.messages.send.mutate({ roomId: room.id, content: 'before' });
    expect(await probe.exists('parley:limit:send:alice')).toBe(1);
    probe.disconnect();

    redis.pause();
    try {
      const sequential = (async () => {
        for (let i = 0; i < 10; i++) await within(1_000, `tRPC send ${i}`, alice.messages.send.mutate({ roomId: room.id, content: `frozen ${i}` }));
      })();
      // Not one timeout per call: after the first, the instance stops asking the frozen Redis for a while.
      await within(2_000, '10 sends one after another', sequential);
      await within(1_000, 'typing', alice.messages.typing.mutate({ roomId: room.id }));
      await within(1_000, 'markRead', alice.messages.markRead.mutate({ roomId: room.id, seq: 2 }));
      const rest = await within(1_000, 'REST send', restSend(app, await app.token('alice'), room.id, 'alice'));
      expect(rest.status).toBe(201);
      // Many at once: none waits for the ones before it to time out.
      await within(1_000, '20 concurrent sends', Promise.all(Array.from({ length: 20 }, (_, i) => alice.messages.send.mutate({ roomId: room.id, content: `together ${i}` }))));
    } finally {
      redis.resume();
    }
    expect(await app.sql('select count(*)::int as n from messages where chat_room_id = $1', [room.id])).toEqual([{ n: 32 }]);

    // Bob never sent before, so a bucket of his in Redis can only come from a call made after the thaw.
    const bob = await app.client('bob');
    const again = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await again.connect();
    await vi.waitFor(
      async () => {
        await bob.messages.send.mutate({ roomId: room.id, content: 'after' });
        expect(await again.exists('parley:limit:send:bob')).toBe(1);
      },
      { timeout: 10_000, interval: 100 },
    );
    again.disconnect();
  });
});

describe('one connection’s share of the server', () => {
  connectionIt('calls past twice WS_MAX_INFLIGHT in one read of a tRPC WebSocket are answered RATE_LIMITED; the socket stays usable', async ({ t: app, roomId }) => {
    const socket = await openTrpcSocket(app.url, await app.token('alice'));
    socket.ws.send(JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ id: i + 1, method: 'query', params: { path: 'messages.list', input: { roomId } } }))));
    await socket.until(() => socket.received.length >= 10);
    const limited = socket.received.filter((a) => a.error?.data.parleyCode === 'RATE_LIMITED');
    expect(socket.received.filter((a) => a.result?.type === 'data')).toHaveLength(4);
    expect(limited).toHaveLength(6);
    socket.ws.send(JSON.stringify({ id: 99, method: 'query', params: { path: 'messages.list', input: { roomId } } }));
    await socket.until(() => socket.received.some((a) => a.id === 99));
    expect(socket.received.find((a) => a.id === 99)!.result?.type).toBe('data');
    socket.close();
  });

  connectionIt('subscriptions past WS_MAX_SUBSCRIPTIONS on a tRPC WebSocket are answered RATE_LIMITED', async ({ t: app, roomId }) => {
    const socket = await openTrpcSocket(app.url, await app.token('alice'));
    for (const id of [1, 2, 3]) socket.ws.send(JSON.stringify({ id, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
    await socket.until(() => socket.received.filter((a) => a.result?.type === 'started').length === 2 && socket.received.some((a) => a.id === 3));
    expect(socket.received.find((a) => a.id === 3)).toMatchObject({ error: { data: { parleyCode: 'RATE_LIMITED' } } });
    socket.close();
  });

  test('a subscription whose stream ends by itself (here: fails) frees its place on the socket and its user’s, the socket still open', async () => {
    await using app = await startTestApp(`${import.meta.filename}-stream-ends`, { WS_MAX_SUBSCRIPTIONS: '2', WS_MAX_SUBSCRIPTIONS_PER_USER: '3' });
    const alice = await app.client('alice');
    const { id: roomId } = await alice.rooms.open.mutate({ otherUserId: 'bob' });
    await alice.messages.send.mutate({ roomId, content: 'to replay' });
    const [a, b] = await Promise.all([openTrpcSocket(app.url, await app.token('alice')), openTrpcSocket(app.url, await app.token('alice'))]);
    const stoppedOn = (socket: typeof a) => socket.received.filter((m) => m.result?.type === 'stopped').length;
    // A stream resuming before the room's newest message reads it once it has started: without
    // the table that read fails, and the stream ends with an error while its socket stays open.
    await app.sql('alter table messages rename to messages_away');
    try {
      for (const [socket, n] of [[a, 1], [a, 2], [b, 1]] as const) {
        const answer = await socket.call('subscription', 'messages.onEvent', { roomId, lastEventId: '0' });
        expect(answer.error?.data.parleyCode).toBe('INTERNAL');
        await socket.until(() => stoppedOn(socket) === n);
      }
    } finally {
      await app.sql('alter table messages_away rename to messages');
    }
    expect(a.received.filter((m) => m.result?.type === 'started')).toHaveLength(2);
    // Two places on `a` (WS_MAX_SUBSCRIPTIONS), three for alice (WS_MAX_SUBSCRIPTIONS_PER_USER): all free again.
    const started = async (socket: typeof a) => {
      const id = `after-${socket.received.length}`;
      socket.ws.send(JSON.stringify({ id, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
      await socket.until(() => socket.received.some((m) => m.id === id));
      const answer = socket.received.find((m) => m.id === id)!;
      return answer.result?.type ?? answer.error?.data.parleyCode;
    };
    expect([await started(a), await started(a), await started(b)]).toEqual(['started', 'started', 'started']);
    expect(await started(b)).toBe('RATE_LIMITED');
    a.close();
    b.close();
  });

  connectionIt('a client that sends its headers a byte at a time is cut off after HTTP_HEADERS_TIMEOUT_MS', async ({ t: app }) => {
    const socket = connect(Number(new URL(app.url).port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {}); // the server hangs up mid-drip: an EPIPE here is the point
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => socket.writable && socket.write('X'), 100);
    await closed;
    clearInterval(drip);
  });

  connectionIt('one address holds at most MAX_CONNECTIONS_PER_IP connections; the next is answered 429', async () => {
    await using capped = await startTestApp(`${import.meta.filename}-per-ip`, { MAX_CONNECTIONS_PER_IP: '3' });
    const wsUrl = `${capped.url.replace(/^http/, 'ws')}/trpc?token=${await capped.token('alice')}`;
    const sockets = await Promise.all([1, 2, 3].map(() => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(wsUrl);
      ws.once('open', () => resolve(ws)).once('error', reject);
    })));
    const refused = await fetch(`${capped.url}/healthz`);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ detail: 'Too many connections from your address.' });
    const closing = new Promise((resolve) => sockets[0]!.once('close', resolve));
    sockets[0]!.close();
    await closing;
    await expect.poll(async () => (await fetch(`${capped.url}/healthz`, { headers: { connection: 'close' } })).status).toBe(200);
    for (const ws of sockets) ws.close();
  });
});
