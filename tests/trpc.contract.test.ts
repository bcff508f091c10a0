import { TRPCClientError } from '@trpc/client';
import { SignJWT } from 'jose';
import { describe, expect, vi } from 'vitest';
import { createChatClient, type ChatClient } from '../client-sdk/index.ts';
import { openTrpcSocket } from './support/raw-trpc.ts';
import { rejection } from './support/rejection.ts';
import { roomPairs, sendMany } from './support/room-pair.ts';
import { range, record } from './support/subscription.ts';
import { appTest, TEST_SECRET, type TestApp } from './support/test-app.ts';

const it = appTest(import.meta.filename).extend<{ $file: { alice: ChatClient; bob: ChatClient; mallory: ChatClient; freshRoom: ReturnType<typeof roomPairs> } }>({
  alice: [async ({ t }, use) => use(await t.client('alice')), { scope: 'file' }],
  bob: [async ({ t }, use) => use(await t.client('bob')), { scope: 'file' }],
  mallory: [async ({ t }, use) => use(await t.client('mallory')), { scope: 'file' }],
  // A fresh room between two fresh users, so tests do not share seqs.
  freshRoom: [async ({ t }, use) => use(roomPairs(t, '')), { scope: 'file' }],
});

describe('rooms', () => {
  it('concurrent rooms.open from both users yields one room', async ({ t }) => {
    const [c, d] = await Promise.all([t.client('carol'), t.client('dave')]);
    const rooms = await Promise.all(range(1, 10).map((i) => (i % 2 ? c : d).rooms.open.mutate({ otherUserId: i % 2 ? 'dave' : 'carol' })));
    expect(new Set(rooms.map((r) => r.id)).size).toBe(1);
    expect(await t.sql("select id from chat_rooms where 'carol' in (participant1_id, participant2_id)")).toHaveLength(1);
  });

  it('rooms.list shows the caller’s rooms, newest activity first, with the last message', async ({ alice }) => {
    const r1 = await alice.rooms.open.mutate({ otherUserId: 'erin', name: 'first' });
    const r2 = await alice.rooms.open.mutate({ otherUserId: 'frank' });
    await alice.messages.send.mutate({ roomId: r1.id, content: 'latest' });
    const list = (await alice.rooms.list.query()).items;
    expect(list.map((r) => r.id).slice(0, 2)).toEqual([r1.id, r2.id]);
    expect(list[0]).toMatchObject({ name: 'first', last_seq: 1, last_message: { content: 'latest', sender: 'alice', seq: 1 } });
    expect(list[1]).toMatchObject({ last_seq: 0, last_message: null });
  });

  it('a room with yourself is refused with a field error', async ({ alice }) => {
    expect(await rejection(alice.rooms.open.mutate({ otherUserId: 'alice' }))).toMatchObject({ code: 'BAD_REQUEST', parleyCode: 'INVALID_INPUT' });
  });
});

describe('messages', () => {
  it('two users: open a room, subscribe, send, both receive', async ({ freshRoom }) => {
    const { a, b, room, aId, bId } = await freshRoom();
    const subA = record(a, room.id, '0');
    const subB = record(b, room.id, '0');
    const sent = await a.messages.send.mutate({ roomId: room.id, content: 'hello bob' });
    expect(sent).toMatchObject({ chat_room: room.id, sender: aId, content: 'hello bob', seq: 1 });
    await b.messages.send.mutate({ roomId: room.id, content: 'hi' });
    await Promise.all([subA.waitForMessages(2), subB.waitForMessages(2)]);
    for (const sub of [subA, subB]) {
      // Each side's socket also brought the other's presence onto its stream (chat-features tests those).
      expect(sub.events.filter((e) => e.type !== 'presence')).toEqual([
        { type: 'message', message: sent },
        { type: 'message', message: expect.objectContaining({ sender: bId, content: 'hi', seq: 2 }) },
      ]);
      sub.unsubscribe();
    }
  });

  it('history pagination over 260 messages returns each exactly once, in order', async ({ freshRoom }) => {
    const { a, room } = await freshRoom();
    for (let i = 1; i <= 260; i += 20) {
      await Promise.all(range(i, i + 19).map((n) => a.messages.send.mutate({ roomId: room.id, content: `m${n}`, clientId: `c${n}` })));
    }
    const seen: number[] = [];
    let cursor: number | undefined;
    do {
      const page = await a.messages.list.query({ roomId: room.id, limit: 37, ...(cursor !== undefined ? { cursor } : {}) });
      seen.push(...page.items.map((m) => m.seq));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    expect(seen).toEqual(range(1, 260));
  });

  it('a retried send with the same clientId stores one message', async ({ t, freshRoom }) => {
    const { a, room } = await freshRoom();
    const sends = await Promise.all(range(1, 5).map(() => a.messages.send.mutate({ roomId: room.id, content: 'once', clientId: 'retry-1' })));
    expect(new Set(sends.map((m) => m.id)).size).toBe(1);
    expect(await t.sql('select count(*)::int as n from messages where chat_room_id = $1', [room.id])).toEqual([{ n: 1 }]);
  });

  it('concurrent sends across many rooms, retries of one clientId among them: each room dense 1..n, one message per clientId', async ({ freshRoom }) => {
    const pairs = await Promise.all(range(1, 8).map(() => freshRoom()));
    const sends = pairs.flatMap(({ a, room }) => [
      ...range(1, 30).map((n) => a.messages.send.mutate({ roomId: room.id, content: `m${n}` })),
      ...range(1, 3).map(() => a.messages.send.mutate({ roomId: room.id, content: 'retried', clientId: 'same' })),
    ]);
    await Promise.all(sends);
    for (const { a, room } of pairs) {
      const { items } = await a.messages.list.query({ roomId: room.id, limit: 500 });
      expect(items.map((m) => m.seq)).toEqual(range(1, 31));
      expect(items.filter((m) => m.content === 'retried')).toHaveLength(1);
    }
  });

  it('content must be non-blank and within the configured length', async ({ t, freshRoom }) => {
    const { a, room } = await freshRoom();
    for (const content of ['', '   \n ', 'x'.repeat(4001)]) {
      expect(await rejection(a.messages.send.mutate({ roomId: room.id, content }))).toMatchObject({ code: 'BAD_REQUEST', parleyCode: 'INVALID_INPUT' });
    }
    await a.messages.send.mutate({ roomId: room.id, content: 'x'.repeat(4000) });
    expect(await t.sql('select seq from messages where chat_room_id = $1', [room.id])).toEqual([{ seq: '1' }]);
  });

  it('a request over the body limit is refused with PAYLOAD_TOO_LARGE in tRPC’s own error shape', async ({ freshRoom }) => {
    const { a, room } = await freshRoom();
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'x'.repeat(700_000) }))).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      parleyCode: 'PAYLOAD_TOO_LARGE',
    });
    expect((await a.messages.list.query({ roomId: room.id })).items).toEqual([]);
  });

  it('typing reaches the other participant, is throttled, and is never stored', async ({ t, freshRoom }) => {
    const { a, b, room, aId } = await freshRoom();
    const subB = record(b, room.id, '0');
    await subB.started;
    await a.messages.send.mutate({ roomId: room.id, content: 'before typing' });
    await subB.waitForMessages(1);
    expect(await a.messages.typing.mutate({ roomId: room.id })).toEqual({ delivered: true });
    expect(await a.messages.typing.mutate({ roomId: room.id })).toEqual({ delivered: false });
    await vi.waitFor(() => expect(subB.events.at(-1)).toEqual({ type: 'typing', chat_room: room.id, user: aId }));
    // A typing event carries the last message's id, so a resume from it loses nothing.
    expect(subB.lastId).toBe('1');
    subB.unsubscribe();
    expect(await t.sql('select count(*)::int as n from messages where chat_room_id = $1', [room.id])).toEqual([{ n: 1 }]);
  });
});

describe('resumable subscriptions', () => {
  it('a subscriber that misses 20 messages and resumes with its last event id receives exactly those 20, in order', async ({ freshRoom }) => {
    const { a, b, room } = await freshRoom();
    const first = record(b, room.id, '0');
    for (const n of range(1, 5)) await a.messages.send.mutate({ roomId: room.id, content: `m${n}` });
    await first.waitForMessages(5);
    first.unsubscribe();
    for (const n of range(6, 25)) await a.messages.send.mutate({ roomId: room.id, content: `m${n}` });
    const resumed = record(b, room.id, first.lastId);
    await resumed.waitForMessages(20);
    // A marker sent afterwards arrives after any duplicate could have: then the record is complete.
    await a.messages.send.mutate({ roomId: room.id, content: 'marker' });
    await resumed.waitForMessages(21);
    expect(resumed.seqs()).toEqual(range(6, 26));
    resumed.unsubscribe();
  });

  it('subscribers of six rooms resuming at once (their catch-up read together) each receive exactly what they missed in their own room, in order', async ({ freshRoom }) => {
    const rooms = await Promise.all(range(1, 6).map(() => freshRoom()));
    const firsts = rooms.map(({ b, room }) => record(b, room.id, '0'));
    await Promise.all(rooms.map(({ a, room }, i) => sendMany(a, room.id, 1, i + 1)));
    await Promise.all(firsts.map((f, i) => f.waitForMessages(i + 1)));
    for (const f of firsts) f.unsubscribe();
    // Room i misses 3·i messages: six ranges of six sizes, none empty.
    await Promise.all(rooms.map(({ a, room }, i) => sendMany(a, room.id, i + 2, i + 1 + 3 * (i + 1))));
    const resumed = rooms.map(({ b, room }, i) => record(b, room.id, firsts[i]!.lastId));
    await Promise.all(resumed.map((r, i) => r.waitForMessages(3 * (i + 1))));
    await Promise.all(rooms.map(({ a, room }) => a.messages.send.mutate({ roomId: room.id, content: 'marker' })));
    await Promise.all(resumed.map((r, i) => r.waitForMessages(3 * (i + 1) + 1)));
    resumed.forEach((r, i) => expect(r.seqs()).toEqual(range(i + 2, i + 2 + 3 * (i + 1))));
    for (const r of resumed) r.unsubscribe();
  });

  it('200 concurrent sends by both users over several connections, subscriber resuming twice: seq 1..200 exactly once, history agrees', async ({ t, freshRoom }) => {
    const { room, aId, bId } = await freshRoom();
    const senders = await Promise.all(range(1, 6).map((i) => t.client(i % 2 ? aId : bId)));
    const watcher = await t.client(aId);
    const seen: number[] = [];
    let sub = record(watcher, room.id, '0');
    // Ten waves of 20 concurrent sends, so the two disconnects land while sends are in flight.
    const sends = (async () => {
      for (let wave = 0; wave < 10; wave++) {
        await Promise.all(range(wave * 20 + 1, wave * 20 + 20).map((n) => senders[n % senders.length]!.messages.send.mutate({ roomId: room.id, content: `m${n}` })));
      }
    })();
    for (const at of [40, 120]) {
      await vi.waitFor(() => expect(seen.length + sub.seqs().length).toBeGreaterThanOrEqual(at), { timeout: 20_000 });
      sub.unsubscribe();
      seen.push(...sub.seqs());
      sub = record(watcher, room.id, sub.lastId);
    }
    await sends;
    await vi.waitFor(() => expect(seen.length + sub.seqs().length).toBeGreaterThanOrEqual(200), { timeout: 20_000 });
    await watcher.messages.send.mutate({ roomId: room.id, content: 'marker' });
    await vi.waitFor(() => expect(sub.seqs()).toContain(201), { timeout: 20_000 });
    seen.push(...sub.seqs());
    sub.unsubscribe();
    expect(seen).toEqual(range(1, 201));
    const history = await watcher.messages.list.query({ roomId: room.id, limit: 500 });
    expect(history.items.map((m) => m.seq)).toEqual(range(1, 201));
    expect(history.nextCursor).toBeNull();
  });

  it('the SDK reconnects by itself after the server drops its socket and resumes without gap or duplicate', async ({ t, freshRoom }) => {
    const { a, b, room } = await freshRoom();
    const sub = record(b, room.id, '0');
    for (const n of range(1, 60)) {
      await a.messages.send.mutate({ roomId: room.id, content: `m${n}` });
      if (n === 20 || n === 40) for (const socket of t.app.fastify.websocketServer.clients) socket.terminate();
    }
    await sub.waitForMessages(60);
    await a.messages.send.mutate({ roomId: room.id, content: 'marker' });
    await sub.waitForMessages(61);
    expect(sub.seqs()).toEqual(range(1, 61));
    sub.unsubscribe();
  });
});

describe('authorization', () => {
  it('a third user gets NOT_FOUND on every procedure for the room, like for a room that does not exist', async ({ t, alice, mallory }) => {
    const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
    for (const roomId of [room.id, crypto.randomUUID()]) {
      const calls = [
        () => mallory.messages.list.query({ roomId }),
        () => mallory.messages.send.mutate({ roomId, content: 'let me in' }),
        () => mallory.messages.typing.mutate({ roomId }),
      ];
      for (const call of calls) expect(await rejection(call())).toMatchObject({ code: 'NOT_FOUND', parleyCode: 'ROOM_NOT_FOUND' });
      const sub = record(mallory, roomId, '0');
      await vi.waitFor(() => expect(sub.errors).toHaveLength(1));
      const err = sub.errors[0] as TRPCClientError<never>;
      expect(err.data).toMatchObject({ code: 'NOT_FOUND', parleyCode: 'ROOM_NOT_FOUND' });
      sub.unsubscribe();
    }
    expect(await t.sql("select count(*)::int as n from messages where sender_id = 'mallory'")).toEqual([{ n: 0 }]);
  });

  const key = new TextEncoder().encode(TEST_SECRET);
  const now = Math.floor(Date.now() / 1000);
  const badTokens: Record<string, () => Promise<string>> = {
    missing: async () => '',
    malformed: async () => 'not-a-jwt',
    expired: () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime(now - 60).sign(key),
    'not yet valid': () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setNotBefore(now + 3600).setExpirationTime('2h').sign(key),
    'wrong signature': () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(48))),
    'alg none': async () => {
      const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: 'alice', exp: now + 3600 })}.`;
    },
    'no subject': () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key),
  };

  it.for(Object.keys(badTokens))('a %s token is rejected with UNAUTHORIZED over HTTP and WebSocket', async (kind, { t }) => {
    const client = createChatClient({ url: t.url, token: await badTokens[kind]!() });
    try {
      expect((await rejection(client.rooms.list.query())).code).toBe('UNAUTHORIZED');
      expect((await rejection(client.rooms.open.mutate({ otherUserId: 'bob' }))).code).toBe('UNAUTHORIZED');
      const sub = record(client, crypto.randomUUID(), '0');
      await vi.waitFor(() => expect(sub.errors).toHaveLength(1));
      expect((sub.errors[0] as TRPCClientError<never>).data).toMatchObject({ code: 'UNAUTHORIZED' });
      sub.unsubscribe();
    } finally {
      await client.close();
    }
  });
});

describe('subscriptions live on the WebSocket only', () => {
  it('messages.onEvent over HTTP (Server-Sent Events) is refused with 405 METHOD_NOT_ALLOWED, not streamed', async ({ t, freshRoom }) => {
    const { room, aId } = await freshRoom();
    const input = encodeURIComponent(JSON.stringify({ roomId: room.id }));
    const res = await fetch(`${t.url}/trpc/messages.onEvent?input=${input}`, { headers: { authorization: `Bearer ${await t.token(aId)}`, accept: 'text/event-stream' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toMatch(/json/);
    expect(await res.json()).toMatchObject({ error: { data: { parleyCode: 'METHOD_NOT_ALLOWED', path: 'messages.onEvent' } } });
  });
});

describe('tRPC over HTTP challenges like REST', () => {
  it.for([{}, { 'trpc-accept': 'application/json' }])('a call without a Bearer token is a 401 with WWW-Authenticate: Bearer (%j)', async (extra, { t }) => {
    const res = await fetch(`${t.url}/trpc/rooms.list`, { headers: { authorization: 'Basic YWxpY2U6cHc=', ...extra } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it('an OPTIONS request without CORS_ORIGINS is a 400 in tRPC’s shape, not a 500', async ({ t }) => {
    const res = await fetch(`${t.url}/trpc/rooms.list`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await res.json()) as { error: { data: { parleyCode: string } } }).error.data.parleyCode).toBe('INVALID_INPUT');
  });
});

describe('HTTP batches hold at most 10 calls', () => {
  it('an HTTP batch of 11 sends is refused whole with 400 and stores nothing', async ({ t, freshRoom }) => {
    const { room, aId } = await freshRoom();
    const stored = async () => (await t.sql<{ n: number }>('select count(*)::int as n from messages where chat_room_id = $1', [room.id]))[0]!.n;
    const paths = Array(11).fill('messages.send').join(',');
    const body = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i, { roomId: room.id, content: 'batched' }]));
    const res = await fetch(`${t.url}/trpc/${paths}?batch=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await t.token(aId)}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(await stored()).toBe(0);
  });

  it('under /trpc, a batch past the limit whose path no route takes gets one 404 error, not one per call', async ({ t }) => {
    // Thousands of one-letter calls: the URL is longer than any route's path parameter.
    const res = await fetch(`${t.url}/trpc/${Array(7_000).fill('a').join(',')}?batch=1`, { method: 'POST' });
    const body = await res.text();
    expect(res.status).toBe(404);
    expect(JSON.parse(body)).toEqual({ error: expect.objectContaining({ data: expect.objectContaining({ code: 'NOT_FOUND', parleyCode: 'NOT_FOUND', path: '' }) }) });
    expect(body.length).toBeLessThan(1_000);
  });
});

describe('resume points', () => {
  it('a lastEventId past the room’s last seq is refused with INVALID_INPUT, not left silent', async ({ freshRoom }) => {
    const { a, room } = await freshRoom();
    await a.messages.send.mutate({ roomId: room.id, content: 'one' });
    const sub = record(a, room.id, '1000');
    await expect.poll(() => sub.errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect((sub.errors[0] as { data?: { parleyCode?: string } }).data?.parleyCode).toBe('INVALID_INPUT');
    sub.unsubscribe();
  });

  it('a lastEventId of 10,000 digits is a BAD_REQUEST, not a 500', async ({ t, freshRoom }) => {
    const { room, aId } = await freshRoom();
    const socket = await openTrpcSocket(t.url, await t.token(aId));
    socket.ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId: room.id, lastEventId: '9'.repeat(10_000) } } }));
    await socket.until(() => socket.received.some((a) => a.error));
    expect(socket.received.find((a) => a.error)).toMatchObject({ error: { data: { code: 'BAD_REQUEST', parleyCode: 'INVALID_INPUT' } } });
    socket.close();
  });
});

describe('tRPC over HTTP answers the same with or without the trpc-accept header (which hands the call to tRPC’s own handler)', () => {
  const NO_ROOM = '00000000-0000-4000-8000-000000000000';
  const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
  const withoutVolatile = (body: unknown) => JSON.parse(JSON.stringify(body).replace(/"(id|created_at)":"[^"]+"/g, '"$1":"…"').replace(/"seq":\d+/g, '"seq":0'));

  async function both(t: TestApp, path: string, init: RequestInit = {}) {
    const headers = { authorization: `Bearer ${await t.token('alice')}`, 'content-type': 'application/json' };
    const call = async (extra: Record<string, string>) => {
      const res = await fetch(`${t.url}/trpc/${path}`, { ...init, headers: { ...headers, ...extra } });
      return { status: res.status, body: (await res.json()) as unknown };
    };
    return { direct: await call({}), trpc: await call({ 'trpc-accept': 'application/json' }) };
  }

  const cases: Record<string, (roomId: string) => [string, RequestInit]> = {
    'a query': (roomId) => [`messages.list?input=${q({ roomId })}`, {}],
    'a batch of queries': (roomId) => [`messages.list,rooms.list?batch=1&input=${q({ 0: { roomId } })}`, {}],
    'a query with invalid input': () => [`messages.list?input=${q({ roomId: 'nope' })}`, {}],
    'a batch where one call fails (207)': (roomId) => [`messages.list,messages.list?batch=1&input=${q({ 0: { roomId }, 1: { roomId: NO_ROOM } })}`, {}],
    'a mutation': () => ['rooms.open', { method: 'POST', body: JSON.stringify({ otherUserId: 'bob' }) }],
    'a batched mutation with a domain error': () => ['messages.send?batch=1', { method: 'POST', body: JSON.stringify({ 0: { roomId: NO_ROOM, content: 'x' } }) }],
  };

  it.for(Object.keys(cases))('%s: the same status and body', async (name, { t, alice }) => {
    const roomId = (await alice.rooms.open.mutate({ otherUserId: 'bob' })).id;
    const [path, init] = cases[name]!(roomId);
    const { direct, trpc } = await both(t, path, init);
    expect(direct.status).toBe(trpc.status);
    expect(withoutVolatile(direct.body)).toEqual(withoutVolatile(trpc.body));
  });

  it('a send either way is stored once and answered in the same shape', async ({ t, alice }) => {
    const roomId = (await alice.rooms.open.mutate({ otherUserId: 'bob' })).id;
    const { direct, trpc } = await both(t, 'messages.send?batch=1', { method: 'POST', body: JSON.stringify({ 0: { roomId, content: 'via both' } }) });
    expect(direct.status).toBe(200);
    expect(withoutVolatile(direct.body)).toEqual(withoutVolatile(trpc.body));
    expect(await t.sql("select seq from messages where content = 'via both' order by seq")).toHaveLength(2);
  });
});
