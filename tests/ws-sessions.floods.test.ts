import { expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import { signToken } from '../server/identity/sign-token.ts';
import { peakRss, startServerProcess, type ServerProcess } from './support/server-process.ts';
import { TEST_SECRET } from './support/test-app.ts';

// A socket that floods the server without reading: the server runs in its own process, so its
// memory is measured apart from the flooding clients.
const token = (userId: string) => signToken({ secret: TEST_SECRET, userId, expiresIn: '1h' });
const MiB = 1024 * 1024;
/** What a flood may add to the server's RSS; unbounded buffering grew it by gigabytes. */
const RSS_BOUND = 96 * MiB;

const it = test.extend<{ $file: { server: ServerProcess; roomId: string } }>({
  server: [
    async ({}, use) => {
      await using server = await startServerProcess('ws_floods');
      await use(server);
    },
    { scope: 'file' },
  ],
  roomId: [
    async ({ server }, use) => {
      const headers = { authorization: `Bearer ${await token('alice')}`, 'content-type': 'application/json' };
      const roomId = ((await (await fetch(`${server.url}/rooms/`, { method: 'POST', headers, body: JSON.stringify({ other_user: 'bob' }) })).json()) as { id: string }).id;
      const body = JSON.stringify({ content: 'x'.repeat(300), chat_room: roomId, sender: 'alice' });
      for (let wave = 0; wave < 10; wave++) {
        await Promise.all(Array.from({ length: 50 }, () => fetch(`${server.url}/${roomId}/messages/`, { method: 'POST', headers, body }).then((r) => r.arrayBuffer())));
      }
      await use(roomId);
    },
    { scope: 'file' },
  ],
});

async function openSocket(server: ServerProcess, path: string) {
  const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const raw = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  return { ws, closed, stopReading: () => raw.pause(), resumeReading: () => raw.resume() };
}

async function storedCount(server: ServerProcess, roomId: string) {
  const rows = await server.sql<{ n: number }>('select count(*)::int as n from messages where chat_room_id = $1', [roomId]);
  return rows[0]!.n;
}

/** Waits until the room's stored message count stops moving. */
async function settledCount(server: ServerProcess, roomId: string) {
  let previous = -1;
  return vi.waitFor(
    async () => {
      const n = await storedCount(server, roomId);
      const stable = n === previous;
      previous = n;
      if (!stable) throw new Error(`still moving: ${n}`);
      return n;
    },
    { timeout: 30_000, interval: 500 },
  );
}

it('a tRPC socket that never reads and asks 1,500 pages of history is closed with 4001, and the server’s RSS stays bounded', async ({ server, roomId }) => {
  const before = await server.rss();
  const socket = await openSocket(server, `/trpc?token=${await token('alice')}`);
  socket.stopReading();
  const sampling = peakRss(server);
  for (let id = 1; id <= 1500; id++) {
    socket.ws.send(JSON.stringify({ id, method: 'query', params: { path: 'messages.list', input: { roomId, limit: 500 } } }));
  }
  // An observation window: long enough for unbounded buffering to show (it took gigabytes in seconds).
  await new Promise((r) => setTimeout(r, 3_000));
  const peak = await sampling.stop();
  socket.resumeReading();
  expect(await socket.closed).toBe(4001);
  console.info(`tRPC history flood: server RSS ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB`);
  expect(peak - before).toBeLessThan(RSS_BOUND);
});

it('a ws/chat client pushing 20,000 frames of 4 KB without reading: reading pauses, RSS stays bounded, and nothing queued is stored once the socket is closed', async ({ server, roomId }) => {
  const before = await server.rss();
  const storedBefore = await storedCount(server, roomId);
  const socket = await openSocket(server, `/ws/chat/alice/bob/?token=${await token('alice')}`);
  socket.stopReading();
  const sampling = peakRss(server);
  const frame = JSON.stringify({ action: 'new_message', message: 'y'.repeat(4000), sender: 'alice', chat_room: roomId, other_user: 'bob' });
  for (let i = 0; i < 20_000; i++) socket.ws.send(frame);
  const stored = (await settledCount(server, roomId)) - storedBefore;
  const peak = await sampling.stop();
  socket.resumeReading();
  expect(await socket.closed).toBe(4001);
  console.info(`ws/chat flood: ${stored} of 20000 frames stored before the 4001 close; server RSS ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB`);
  expect(stored).toBeGreaterThan(0);
  expect(stored).toBeLessThan(20_000);
  expect(peak - before).toBeLessThan(RSS_BOUND);
});
