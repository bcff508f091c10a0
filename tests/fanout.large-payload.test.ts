import pg from 'pg';
import { expect, vi } from 'vitest';
import type { RoomBatch } from '../server/live/fanout-engine.ts';
import { NOTIFY_CHANNEL } from '../server/live/pg-notify-engine.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { range, record } from './support/subscription.ts';
import { appTest } from './support/test-app.ts';

// No sweep: what B delivers must come from the notifications and the reads they ask for.
const ENV = { FANOUT: 'postgres', FANOUT_SWEEP_MS: '3600000' };

const it = appTest(import.meta.filename, ENV).extend<{ $file: { b: PeerApp; notified: string[] } }>({
  b: [
    async ({ t }, use) => {
      await using b = await startPeerApp(t, ENV);
      await use(b);
    },
    { scope: 'file' },
  ],
  // The test's own LISTEN session sees the payloads exactly as B does.
  notified: [
    async ({ t }, use) => {
      const notified: string[] = [];
      const listener = new pg.Client({ connectionString: t.databaseUrl });
      await listener.connect();
      try {
        listener.on('notification', ({ payload }) => notified.push(payload ?? ''));
        await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
        await use(notified);
      } finally {
        await listener.end();
      }
    },
    { scope: 'file' },
  ],
});

it('a group commit too big for one NOTIFY goes as room and seq range only; the other instance reads the rows and delivers each message exactly once, in order, whole', async ({ t: a, b, notified }) => {
  const alice = await a.client('alice');
  const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
  // Both of bob's surfaces listen on B.
  const legacy = await openLegacySocket(b.url, 'bob', 'alice', await a.token('bob'));
  const sub = record(await b.client('bob'), room.id);
  await sub.started;
  // 4,000 characters of two bytes each: one message alone is over the payload limit.
  const contents = range(1, 30).map((i) => `${i} ${'é'.repeat(3_990)}`);
  await Promise.all(contents.map((content) => alice.messages.send.mutate({ roomId: room.id, content })));

  await sub.waitForMessages(30);
  expect(sub.seqs()).toEqual(range(1, 30));
  const stored = await a.sql<{ content: string }>('select content from messages where chat_room_id = $1 order by seq', [room.id]);
  expect(sub.events.flatMap((e) => (e.type === 'message' ? [e.message.content] : []))).toEqual(stored.map((r) => r.content));
  expect(new Set(stored.map((r) => r.content))).toEqual(new Set(contents));
  await vi.waitFor(() => expect(legacy.frames.filter((f) => f.action === 'new_message')).toHaveLength(30), { timeout: 10_000, interval: 10 });
  expect(legacy.frames.flatMap((f) => (f.action === 'new_message' ? [f.message.content] : []))).toEqual(stored.map((r) => r.content));
  legacy.close();

  // The path under test was taken: every message of the room went out as a range, never in a payload.
  const roomBatches = () => notified.flatMap((p) => JSON.parse(p) as RoomBatch[]).filter((batch) => batch.room === room.id && batch.toSeq !== undefined);
  await vi.waitFor(() => expect(Math.max(...roomBatches().map((batch) => batch.toSeq!))).toBe(30));
  const batches = roomBatches();
  expect(notified.every((p) => Buffer.byteLength(p) < 8_000)).toBe(true);
  expect(batches.every((batch) => batch.omitted === true && batch.events.every((e) => e.type !== 'message'))).toBe(true);
  expect(batches.flatMap((batch) => range(batch.fromSeq!, batch.toSeq!))).toEqual(range(1, 30));
  // At least one statement stored several of them: a batch's range, not one seq per NOTIFY.
  expect(batches.some((batch) => batch.toSeq! > batch.fromSeq!)).toBe(true);
});
