import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { roomKey } from '../../server/live/bus-key.ts';
import { openLegacySocket } from '../support/legacy-socket.ts';
import { startTestApp, type TestApp } from '../support/test-app.ts';
import { range } from '../support/subscription.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(import.meta.filename);
});
afterAll(() => t?.close());

async function freshRoom(a: string, b: string) {
  const alice = await t.client(a);
  return (await alice.rooms.open.mutate({ otherUserId: b })).id;
}

it('in one process a room’s message events are published in seq order, 1..n, under 1,000 concurrent sends', async () => {
  const roomId = await freshRoom('ord-a', 'ord-b');
  const published: number[] = [];
  const unsubscribe = t.app.services.bus.subscribe(roomKey(roomId), (e) => e.type === 'message' && published.push(e.message.seq));
  const { messages } = t.app.services;
  await Promise.all(range(1, 1000).map((i) => messages.send({ roomId, sender: i % 2 ? 'ord-a' : 'ord-b', content: `m${i}` })));
  unsubscribe();
  expect(published).toEqual(range(1, 1000));
});

it('a group-commit batch that fails is logged with its cause, then its sends are retried one by one: the good ones are stored, densely', async () => {
  const roomId = await freshRoom('batch-a', 'batch-b');
  const warn = vi.spyOn(t.app.fastify.log, 'warn');
  const { messages } = t.app.services;
  // A NUL gets past this domain call (contracts refuse it on every surface) and makes PostgreSQL
  // reject the whole batch it travels in, and then itself alone.
  const sends = range(1, 20).map((i) => messages.send({ roomId, sender: 'batch-a', content: i === 10 ? 'bad \u0000' : `ok ${i}` }));
  const results = await Promise.allSettled(sends);
  expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  expect(results[9]!.status).toBe('rejected');
  const rows = await t.sql<{ seq: string; content: string }>('select seq, content from messages where chat_room_id = $1 order by seq', [roomId]);
  expect(rows.map((r) => Number(r.seq))).toEqual(range(1, 19));
  expect(warn.mock.calls.some(([obj, msg]) => typeof msg === 'string' && msg.includes('batch failed') && (obj as { err?: unknown }).err instanceof Error)).toBe(true);
  warn.mockRestore();
});

it('a burst of ws/chat frames on one socket is stored and delivered in the order sent, many to a statement', async () => {
  const roomId = await freshRoom('burst-a', 'burst-b');
  const [a, b] = await Promise.all([openLegacySocket(t.url, 'burst-a', 'burst-b', await t.token('burst-a')), openLegacySocket(t.url, 'burst-b', 'burst-a', await t.token('burst-b'))]);
  const statements = async () => Number(/^parley_group_commit_batch_size_count (\d+)$/m.exec(await (await fetch(t.metricsUrl)).text())![1]);
  const before = await statements();
  const burst = range(1, 50).map((i) => `burst ${i}`);
  for (const message of burst) b.send({ action: 'new_message', message, sender: 'burst-b', chat_room: roomId, other_user: 'burst-a' });
  await a.waitFor((f) => f.action === 'new_message' && f.message.content === 'burst 50');
  expect(a.frames.flatMap((f) => (f.action === 'new_message' ? [f.message.content] : []))).toEqual(burst);
  const stored = await t.sql<{ content: string }>('select content from messages where chat_room_id = $1 order by seq', [roomId]);
  expect(stored.map((r) => r.content)).toEqual(burst);
  // Reading a socket's next frame only once the last one was stored took a statement per frame.
  expect((await statements()) - before).toBeLessThan(burst.length / 2);
  a.close();
  b.close();
});
