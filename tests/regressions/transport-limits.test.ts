import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ChatClient } from '../../client-sdk/index.ts';
import { openTrpcSocket } from '../support/raw-trpc.ts';
import { record } from '../support/subscription.ts';
import { startTestApp, type TestApp } from '../support/test-app.ts';

let t: TestApp;
let alice: ChatClient;
let roomId: string;

beforeAll(async () => {
  t = await startTestApp(import.meta.filename, { WS_MAX_INFLIGHT: '2', WS_MAX_SUBSCRIPTIONS: '2', HTTP_HEADERS_TIMEOUT_MS: '500' });
  alice = await t.client('alice');
  roomId = (await alice.rooms.open.mutate({ otherUserId: 'bob' })).id;
  for (let i = 1; i <= 5; i++) await alice.messages.send.mutate({ roomId, content: `m${i}` });
});
afterAll(() => t?.close());

const storedCount = async () => (await t.sql<{ n: number }>('select count(*)::int as n from messages'))[0]!.n;

/** A raw tRPC WebSocket for alice; `answers` is every message it received. */
async function trpcSocket() {
  const socket = await openTrpcSocket(t.url, await t.token('alice'));
  return { ws: socket.ws, answers: socket.received, until: socket.until };
}

describe('subscriptions live on the WebSocket only', () => {
  it('messages.onEvent over HTTP (Server-Sent Events) is refused with 405 METHOD_NOT_ALLOWED, not streamed', async () => {
    const input = encodeURIComponent(JSON.stringify({ roomId }));
    const res = await fetch(`${t.url}/trpc/messages.onEvent?input=${input}`, { headers: { authorization: `Bearer ${await t.token('alice')}`, accept: 'text/event-stream' } });
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toMatch(/json/);
    expect(await res.json()).toMatchObject({ error: { data: { parleyCode: 'METHOD_NOT_ALLOWED', path: 'messages.onEvent' } } });
  });
});

describe('tRPC over HTTP challenges like REST', () => {
  it.each([{}, { 'trpc-accept': 'application/json' }])('a call without a Bearer token is a 401 with WWW-Authenticate: Bearer (%j)', async (extra) => {
    const res = await fetch(`${t.url}/trpc/rooms.list`, { headers: { authorization: 'Basic YWxpY2U6cHc=', ...extra } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });
});

describe('HTTP batches hold at most 10 calls', () => {
  it('an HTTP batch of 11 sends is refused whole with 400 and stores nothing', async () => {
    const before = await storedCount();
    const paths = Array(11).fill('messages.send').join(',');
    const body = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i, { roomId, content: 'batched' }]));
    const res = await fetch(`${t.url}/trpc/${paths}?batch=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await t.token('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(await storedCount()).toBe(before);
  });
});

describe('a tRPC WebSocket holds a bounded number of calls', () => {
  it('calls past twice WS_MAX_INFLIGHT in one read are answered RATE_LIMITED; the socket stays usable', async () => {
    const socket = await trpcSocket();
    socket.ws.send(JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ id: i + 1, method: 'query', params: { path: 'messages.list', input: { roomId } } }))));
    await socket.until(() => socket.answers.length >= 10);
    const limited = socket.answers.filter((a) => a.error?.data.parleyCode === 'RATE_LIMITED');
    expect(socket.answers.filter((a) => a.result?.type === 'data')).toHaveLength(4);
    expect(limited).toHaveLength(6);
    socket.ws.send(JSON.stringify({ id: 99, method: 'query', params: { path: 'messages.list', input: { roomId } } }));
    await socket.until(() => socket.answers.some((a) => a.id === 99));
    expect(socket.answers.find((a) => a.id === 99)!.result?.type).toBe('data');
    socket.ws.close();
  });

  it('subscriptions past WS_MAX_SUBSCRIPTIONS are answered RATE_LIMITED', async () => {
    const socket = await trpcSocket();
    for (const id of [1, 2, 3]) socket.ws.send(JSON.stringify({ id, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
    await socket.until(() => socket.answers.filter((a) => a.result?.type === 'started').length === 2 && socket.answers.some((a) => a.id === 3));
    expect(socket.answers.find((a) => a.id === 3)).toMatchObject({ error: { data: { parleyCode: 'RATE_LIMITED' } } });
    socket.ws.close();
  });
});

describe('resume points', () => {
  it('a lastEventId past the room’s last seq is refused with INVALID_INPUT, not left silent', async () => {
    const sub = record(alice, roomId, '1000');
    await expect.poll(() => sub.errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect((sub.errors[0] as { data?: { parleyCode?: string } }).data?.parleyCode).toBe('INVALID_INPUT');
    sub.unsubscribe();
  });

  it('a lastEventId of 10,000 digits is a BAD_REQUEST, not a 500', async () => {
    const socket = await trpcSocket();
    socket.ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId, lastEventId: '9'.repeat(10_000) } } }));
    await socket.until(() => socket.answers.some((a) => a.error));
    expect(socket.answers.find((a) => a.error)).toMatchObject({ error: { data: { code: 'BAD_REQUEST', parleyCode: 'INVALID_INPUT' } } });
    socket.ws.close();
  });
});

describe('HTTP connections', () => {
  it('a client that sends its headers a byte at a time is cut off after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const port = Number(new URL(t.url).port);
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {}); // the server hangs up mid-drip: an EPIPE here is the point
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => socket.writable && socket.write('X'), 100);
    await closed;
    clearInterval(drip);
  });

  it('one address holds at most MAX_CONNECTIONS_PER_IP connections; the next is answered 429', async () => {
    await using capped = await startTestApp('connection-cap', { MAX_CONNECTIONS_PER_IP: '3' });
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
