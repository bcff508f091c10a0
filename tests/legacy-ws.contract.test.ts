import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { describe, expect, vi } from 'vitest';
import type { ChatClient, LegacyServerFrame } from '../client-sdk/index.ts';
import { openLegacySocket, upgradeStatus, type LegacySocket } from './support/legacy-socket.ts';
import { range, record } from './support/subscription.ts';
import { appTest, TEST_SECRET, type TestApp } from './support/test-app.ts';

// A short heartbeat so the dead-socket test does not wait 30 s.
const it = appTest(import.meta.filename, { WS_PING_MS: '300' }).extend<{ $file: { aliceSdk: ChatClient; roomId: string; alice: LegacySocket; bob: LegacySocket } }>({
  aliceSdk: [async ({ t }, use) => use(await t.client('alice')), { scope: 'file' }],
  roomId: [async ({ aliceSdk }, use) => use((await aliceSdk.rooms.open.mutate({ otherUserId: 'bob' })).id), { scope: 'file' }],
  alice: [
    async ({ t }, use) => {
      const socket = await openLegacySocket(t.url, 'alice', 'bob', await t.token('alice'));
      await use(socket);
      socket.close();
    },
    { scope: 'file' },
  ],
  bob: [
    async ({ t }, use) => {
      const socket = await openLegacySocket(t.url, 'bob', 'alice', await t.token('bob'));
      await use(socket);
      socket.close();
    },
    { scope: 'file' },
  ],
});

const isMessage = (content: string) => (f: LegacyServerFrame) => f.action === 'new_message' && f.message.content === content;
const messageCount = async (t: TestApp) => ((await t.sql<{ n: number }>('select count(*)::int as n from messages'))[0]!.n);
/** One masked client text frame, built by hand so many can leave in a single TCP write. */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : payload.length < 65_536 ? Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]) : undefined;
  if (!length) throw new Error('frame too long for this helper');
  const mask = randomBytes(4);
  return Buffer.concat([Buffer.from([0x81]), length, mask, payload.map((byte, i) => byte ^ mask[i % 4]!)]);
}
const newMessage = (roomId: string, overrides: Record<string, unknown> = {}) => ({ action: 'new_message', message: 'hi', sender: 'bob', chat_room: roomId, other_user: 'alice', ...overrides });

describe('chatting', () => {
  it('new_message is stored and reaches both participants’ sockets, REST GET and messages.list', async ({ t, aliceSdk, roomId, alice, bob }) => {
    bob.send(newMessage(roomId, { message: 'hello from legacy' }));
    const [toAlice, toBob] = await Promise.all([alice.waitFor(isMessage('hello from legacy')), bob.waitFor(isMessage('hello from legacy'))]);
    expect(toAlice).toEqual(toBob);
    expect(toAlice).toEqual({
      action: 'new_message',
      message: { id: expect.any(String), chat_room: roomId, sender: 'bob', content: 'hello from legacy', created_at: expect.any(String) },
    });
    const rest = await fetch(`${t.url}/${roomId}/messages/`, { headers: { authorization: `Bearer ${await t.token('alice')}` } });
    expect(await rest.json()).toContainEqual((toAlice as Extract<LegacyServerFrame, { action: 'new_message' }>).message);
    const page = await aliceSdk.messages.list.query({ roomId });
    expect(page.items.map((m) => m.content)).toContain('hello from legacy');
  });

  it('typing is broadcast to the other participant and never stored', async ({ t, roomId, alice, bob }) => {
    const before = await messageCount(t);
    const from = alice.frames.length;
    bob.send({ action: 'typing', chat_room: roomId, other_user: 'alice' });
    expect(await alice.waitFor((f) => f.action === 'typing', from)).toEqual({ action: 'typing', chat_room: roomId, user: 'bob' });
    expect(await messageCount(t)).toBe(before);
  });

  it('a message sent through tRPC reaches legacy sockets, and a legacy message reaches tRPC subscribers', async ({ aliceSdk, roomId, bob }) => {
    const sub = record(aliceSdk, roomId, String((await aliceSdk.messages.list.query({ roomId, limit: 500 })).items.length));
    await aliceSdk.messages.send.mutate({ roomId, content: 'from trpc' });
    await bob.waitFor(isMessage('from trpc'));
    bob.send(newMessage(roomId, { message: 'from legacy' }));
    await sub.waitForMessages(2);
    expect(sub.events.map((e) => e.type === 'message' && e.message.content)).toEqual(['from trpc', 'from legacy']);
    sub.unsubscribe();
  });

  it.for([100, 1_000])('%i new_message frames in one TCP write are all stored, in order, each echoed, none refused', async (count, { t }) => {
    const sender = `burst${count}`;
    const socket = await openLegacySocket(t.url, sender, 'alice', await t.token(sender));
    const room = (await (await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${await t.token(sender)}` } })).json()) as Array<{ id: string }>;
    const burstRoom = room[0]!.id;
    const contents = Array.from({ length: count }, (_, i) => `burst ${i}`);
    const frames = contents.map((message) => clientTextFrame(JSON.stringify({ action: 'new_message', message, sender, chat_room: burstRoom, other_user: 'alice' })));
    (socket.ws as unknown as { _socket: Socket })._socket.write(Buffer.concat(frames));
    // Every frame is answered, with its echo or (what must not happen) an error frame.
    const answered = () => socket.frames.filter((f) => f.action === 'error' || (f.action === 'new_message' && f.message.sender === sender));
    await vi.waitFor(() => expect(answered().length).toBeGreaterThanOrEqual(count), { timeout: 30_000, interval: 50 });
    expect(socket.frames.filter((f) => f.action === 'error')).toEqual([]);
    const stored = await t.sql<{ content: string }>('select content from messages where chat_room_id = $1 order by seq', [burstRoom]);
    expect(stored.map((r) => r.content)).toEqual(contents);
    socket.close();
  });

  it('a burst of frames on one socket is stored and delivered to the other participant in the order sent, many to a statement', async ({ t }) => {
    const room = (await (await t.client('burst-a')).rooms.open.mutate({ otherUserId: 'burst-b' })).id;
    const [a, b] = await Promise.all([openLegacySocket(t.url, 'burst-a', 'burst-b', await t.token('burst-a')), openLegacySocket(t.url, 'burst-b', 'burst-a', await t.token('burst-b'))]);
    const statements = async () => Number(/^parley_group_commit_batch_size_count (\d+)$/m.exec(await (await fetch(t.metricsUrl)).text())![1]);
    const before = await statements();
    const burst = range(1, 50).map((i) => `burst ${i}`);
    for (const message of burst) b.send({ action: 'new_message', message, sender: 'burst-b', chat_room: room, other_user: 'burst-a' });
    await a.waitFor(isMessage('burst 50'));
    expect(a.frames.flatMap((f) => (f.action === 'new_message' ? [f.message.content] : []))).toEqual(burst);
    const stored = await t.sql<{ content: string }>('select content from messages where chat_room_id = $1 order by seq', [room]);
    expect(stored.map((r) => r.content)).toEqual(burst);
    // Reading a socket's next frame only once the last one was stored took a statement per frame.
    expect((await statements()) - before).toBeLessThan(burst.length / 2);
    a.close();
    b.close();
  });

  it('connecting to a new pair creates their room', async ({ t }) => {
    const carol = await openLegacySocket(t.url, 'carol', 'dave', await t.token('carol'));
    const rooms = await (await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${await t.token('dave')}` } })).json();
    expect(rooms).toEqual([{ id: expect.any(String), participant1: 'carol', participant2: 'dave', name: null }]);
    carol.close();
  });
});

describe('the upgrade is refused with an HTTP status', () => {
  const key = new TextEncoder().encode(TEST_SECRET);
  it.for([
    ['no token', async (): Promise<string> => '/ws/chat/alice/bob/', 401],
    ['an expired token', async (): Promise<string> => `/ws/chat/alice/bob/?token=${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(key)}`, 401],
    ['a forged token', async (): Promise<string> => `/ws/chat/alice/bob/?token=${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(new TextEncoder().encode('f'.repeat(40)))}`, 401],
    ['another user’s userId', async (t: TestApp): Promise<string> => `/ws/chat/bob/alice/?token=${await t.token('alice')}`, 403],
  ] as const)('%s', async ([_name, path, status], { t }) => {
    expect(await upgradeStatus(t.url, await path(t))).toBe(status);
  });

  it('a Bearer header works as well as ?token=', async ({ t }) => {
    expect(await upgradeStatus(t.url, '/ws/chat/alice/bob/', { authorization: `Bearer ${await t.token('alice')}` })).toBe(101);
  });
});

describe('bad frames get an error frame, the socket stays open, nothing is stored', () => {
  // Frames are built when the test runs, once the room exists.
  const cases: Array<[string, (roomId: string) => unknown, string]> = [
    ['not JSON', () => '{"action": "new_message",', 'INVALID_INPUT'],
    ['unknown action', () => ({ action: 'dance', chat_room: 'x' }), 'INVALID_INPUT'],
    ['missing field', () => ({ action: 'new_message', sender: 'bob', chat_room: 'x', other_user: 'alice' }), 'INVALID_INPUT'],
    ['invalid chat_room', (roomId) => newMessage(roomId, { chat_room: 'not-a-uuid' }), 'INVALID_INPUT'],
    ['wrong room', (roomId) => newMessage(roomId, { chat_room: crypto.randomUUID() }), 'INVALID_INPUT'],
    ['spoofed sender', (roomId) => newMessage(roomId, { sender: 'alice' }), 'FORBIDDEN'],
    ['NUL in content', (roomId) => newMessage(roomId, { message: 'a\u0000b' }), 'INVALID_INPUT'],
    ['empty content', (roomId) => newMessage(roomId, { message: '   ' }), 'INVALID_INPUT'],
    ['oversized content', (roomId) => newMessage(roomId, { message: 'x'.repeat(4001) }), 'INVALID_INPUT'],
  ];

  it.for(cases)('%s', async ([_name, frame, code], { t, roomId, bob }) => {
    const before = await messageCount(t);
    const from = bob.frames.length;
    bob.send(frame(roomId));
    expect(await bob.waitFor((f) => f.action === 'error', from)).toEqual({ action: 'error', code, detail: expect.any(String) });
    const probe = `still open after ${_name}`;
    bob.send(newMessage(roomId, { message: probe }));
    await bob.waitFor(isMessage(probe), from);
    expect(await messageCount(t)).toBe(before + 1);
  });

  it('a frame over the size limit closes the socket with 1009; the server keeps serving', async ({ t, roomId }) => {
    const victim = await openLegacySocket(t.url, 'bob', 'alice', await t.token('bob'));
    victim.send(newMessage(roomId, { message: 'x'.repeat(70 * 1024) }));
    expect((await victim.closed).code).toBe(1009);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });

  // The heartbeat here is 300 ms: one stall just past it (a busy tick), one of several periods.
  it.for([360, 1_000])('a live socket survives a %i ms stall of the whole process (its pong was on the way)', async (stallMs, { t }) => {
    const stalled = await openLegacySocket(t.url, 'bob', 'alice', await t.token('bob'));
    let pings = 0;
    stalled.ws.on('ping', () => {
      // The pong has just been written; the server reads it only after this stall, past its next
      // tick. The thread sleeps rather than spins: the same stall, without a core's worth of work.
      if (++pings === 1) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
    });
    await vi.waitFor(() => expect(pings).toBeGreaterThanOrEqual(4), { timeout: 10_000, interval: 20 });
    expect(stalled.ws.readyState).toBe(WebSocket.OPEN);
    stalled.close();
  });

  it('a socket that stops answering pings is closed by the heartbeat', async ({ t }) => {
    const silent = await openLegacySocket(t.url, 'bob', 'alice', await t.token('bob'), { autoPong: false });
    const { code } = await silent.closed;
    expect(code).toBe(1006);
    expect(silent.ws.readyState).toBe(WebSocket.CLOSED);
  });
});
