import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, vi } from 'vitest';
import WebSocket from 'ws';
import { createChatClient, type ChatClient } from '../client-sdk/index.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { range, record } from './support/subscription.ts';
import { appTest, type TestApp } from './support/test-app.ts';

// The smallest send queue the config allows, so a paused reader is "slow" quickly.
const it = appTest(import.meta.filename, { WS_SEND_QUEUE_MAX_BYTES: '1024' }).extend<{ $file: { alice: { client: ChatClient; roomId: string } } }>({
  alice: [
    async ({ t }, use) => {
      const client = await t.client('alice');
      await use({ client, roomId: (await client.rooms.open.mutate({ otherUserId: 'bob' })).id });
    },
    { scope: 'file' },
  ],
});

/** The server's side of every WebSocket open now. */
const serverSockets = (t: TestApp) => new Set(t.app.fastify.websocketServer.clients);

/**
 * Sends 4,000-character messages in waves until the server has closed the reader's socket
 * (`reader`: the server's side of it). A bounded queue closes it within a few waves; without a
 * bound it never closes, and the waves fill the loopback's socket buffers many times over.
 */
async function flood(alice: ChatClient, roomId: string, reader: WebSocket) {
  const content = 'x'.repeat(4000);
  for (const wave of range(1, 30)) {
    if (reader.readyState !== WebSocket.OPEN) return;
    await Promise.all(range(1, 100).map(() => alice.messages.send.mutate({ roomId, content })));
  }
}

/** The one socket the server accepted while `connect` ran. */
async function acceptedDuring<T>(t: TestApp, connect: () => Promise<T>): Promise<[T, WebSocket]> {
  const before = serverSockets(t);
  const value = await connect();
  const accepted = [...serverSockets(t)].filter((ws) => !before.has(ws));
  expect(accepted).toHaveLength(1);
  return [value, accepted[0] as WebSocket];
}

/** A raw WebSocket whose reader stops reading once `paused()` is called. */
function closeCodeAfterResume(ws: WebSocket) {
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  return {
    pause: () => (ws as unknown as { _socket: { pause(): void } })._socket.pause(),
    resumeAndWait: async () => {
      (ws as unknown as { _socket: { resume(): void } })._socket.resume();
      return closed;
    },
  };
}

describe('a reader that cannot keep up is closed with 4001 (SLOW_CONSUMER), not buffered without bound', () => {
  it('legacy ws/chat socket', async ({ t, alice: { client: alice, roomId } }) => {
    const token = await t.token('bob');
    const [bob, serverSide] = await acceptedDuring(t, () => openLegacySocket(t.url, 'bob', 'alice', token));
    const reader = closeCodeAfterResume(bob.ws);
    reader.pause();
    await flood(alice, roomId, serverSide);
    expect(await reader.resumeAndWait()).toBe(4001);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });

  it('tRPC subscription socket', async ({ t, alice: { client: alice, roomId } }) => {
    const token = await t.token('bob');
    const [ws, serverSide] = await acceptedDuring(t, async () => {
      const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/trpc?token=${token}`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      return ws;
    });
    const started = new Promise<void>((resolve) => ws.on('message', (d) => String(d).includes('"started"') && resolve()));
    ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
    await started;
    const reader = closeCodeAfterResume(ws);
    reader.pause();
    await flood(alice, roomId, serverSide);
    expect(await reader.resumeAndWait()).toBe(4001);
  });
});

// Each waits out a token of its own on a socket of its own, so they wait side by side.
describe.concurrent('a socket does not outlive its token', () => {
  it('legacy ws/chat closes with 4501 (TOKEN_EXPIRED) when the token expires', async ({ expect, t }) => {
    const socket = await openLegacySocket(t.url, 'bob', 'alice', await t.token('bob', '2s'));
    expect((await socket.closed).code).toBe(4501);
  });

  it('tRPC WebSocket closes with 4501 when the token it authenticated with expires', async ({ expect, t, alice: { roomId } }) => {
    const ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/trpc?token=${await t.token('bob', '2s')}`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
    expect(await closed).toBe(4501);
  });

  it('the SDK, given a token function, reconnects with a fresh token after 4501 and resumes without a gap', async ({ expect, t, alice: { client: alice, roomId } }) => {
    let issued = 0;
    const closes: Array<number | undefined> = [];
    const bob = createChatClient({
      url: t.url,
      token: () => (issued++, t.token('bob', '2s')),
      onClose: (cause) => closes.push(cause?.code),
    });
    // The room's newest seq (the first page of history would be the oldest 500 after the floods above).
    const sub = record(bob, roomId, String((await alice.rooms.open.mutate({ otherUserId: 'bob' })).last_seq));
    await sub.started;
    await vi.waitFor(() => expect(closes).toContain(4501), { timeout: 10_000 });
    await alice.messages.send.mutate({ roomId, content: 'after the refresh' });
    await sub.waitForMessages(1);
    // bob's SDK marks what it receives delivered, so a `delivered` event may follow the message.
    expect(sub.events.filter((e) => e.type === 'message').at(-1)).toMatchObject({ type: 'message', message: { content: 'after the refresh' } });
    expect(closes).toContain(4501);
    expect(issued).toBeGreaterThanOrEqual(2);
    sub.unsubscribe();
    await bob.close();
  });
});

describe('an open socket keeps nothing of its upgrade request', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // The request (headers, its HTTP response, Fastify's request and reply) outweighed an idle socket's own state.
  it.for(['legacy ws/chat', 'tRPC'] as const)('%s', async (surface, { expect, t, alice: { roomId } }) => {
    const requests: Array<WeakRef<object>> = [];
    const onConnection = (_socket: unknown, req: object) => void requests.push(new WeakRef(req));
    t.app.fastify.websocketServer.on('connection', onConnection);
    let ws: WebSocket;
    try {
      if (surface === 'legacy ws/chat') ws = (await openLegacySocket(t.url, 'bob', 'alice', await t.token('bob'))).ws;
      else {
        ws = new WebSocket(`${t.url.replace(/^http/, 'ws')}/trpc?token=${await t.token('bob')}`);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        const started = new Promise<void>((resolve) => ws.on('message', (d) => String(d).includes('"started"') && resolve()));
        ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
        await started;
      }
    } finally {
      t.app.fastify.websocketServer.off('connection', onConnection);
    }
    expect(requests).toHaveLength(1);
    // A WeakRef holds its target until the job that made or read it ends: collect in later ones.
    for (let i = 0; i < 5 && requests[0]!.deref(); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    expect(requests[0]!.deref()).toBeUndefined();
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});
