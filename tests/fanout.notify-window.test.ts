import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { RoomBatch } from '../server/live/fanout-engine.ts';
import { NOTIFY_CHANNEL } from '../server/live/pg-notify-engine.ts';
import { range, record } from './support/subscription.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

// A window far longer than the sends take, so the grouping is certain on a busy machine.
const ENV = { FANOUT: 'postgres', FANOUT_NOTIFY_WINDOW_MS: '300' };

let a: TestApp;
let listener: pg.Client;
const notified: RoomBatch[][] = [];
beforeAll(async () => {
  a = await startTestApp(import.meta.filename, ENV);
  listener = new pg.Client({ connectionString: a.databaseUrl });
  await listener.connect();
  listener.on('notification', ({ payload }) => notified.push(JSON.parse(payload ?? '[]') as RoomBatch[]));
  await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
});
afterAll(async () => {
  await listener?.end();
  await a?.close();
});

it('sends one after another within the NOTIFY window go out in one notification, each still delivered locally at once', async () => {
  const alice = await a.client('alice');
  const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
  const sub = record(await a.client('bob'), room.id);
  await sub.started;
  notified.length = 0;
  // Each send is its own group commit (the previous one has answered), so each was its own NOTIFY before.
  for (const i of range(1, 5)) await alice.messages.send.mutate({ roomId: room.id, content: `w${i}` });
  // Local subscribers do not wait for the window.
  await sub.waitForMessages(5);
  await vi.waitFor(() => expect(notified.flat().flatMap((b) => b.events).filter((e) => e.type === 'message')).toHaveLength(5), { timeout: 5_000, interval: 20 });
  expect(notified.length).toBeLessThanOrEqual(2);
});
