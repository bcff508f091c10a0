import pg from 'pg';
import { expect, vi } from 'vitest';
import type { RoomBatch } from '../server/live/fanout-engine.ts';
import { NOTIFY_CHANNEL } from '../server/live/pg-notify-engine.ts';
import { range, record } from './support/subscription.ts';
import { appTest } from './support/test-app.ts';

// A window longer than the sends take on a quiet machine, so they share one.
const WINDOW_MS = 300;
const ENV = { FANOUT: 'postgres', FANOUT_NOTIFY_WINDOW_MS: String(WINDOW_MS) };

const it = appTest(import.meta.filename, ENV).extend<{ $file: { notified: RoomBatch[][] } }>({
  notified: [
    async ({ t }, use) => {
      const notified: RoomBatch[][] = [];
      const listener = new pg.Client({ connectionString: t.databaseUrl });
      await listener.connect();
      try {
        listener.on('notification', ({ payload }) => notified.push(JSON.parse(payload ?? '[]') as RoomBatch[]));
        await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
        await use(notified);
      } finally {
        await listener.end();
      }
    },
    { scope: 'file' },
  ],
});

it('sends one after another within the NOTIFY window go out in one notification, each still delivered locally at once', async ({ t: a, notified }) => {
  const alice = await a.client('alice');
  const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
  const sub = record(await a.client('bob'), room.id);
  await sub.started;
  notified.length = 0;
  // Each send is its own group commit (the previous one has answered), so each was its own NOTIFY before.
  const started = performance.now();
  for (const i of range(1, 5)) await alice.messages.send.mutate({ roomId: room.id, content: `w${i}` });
  const elapsed = performance.now() - started;
  // Local subscribers do not wait for the window.
  await sub.waitForMessages(5);
  await vi.waitFor(() => expect(notified.flat().flatMap((b) => b.events).filter((e) => e.type === 'message')).toHaveLength(5), { timeout: 5_000, interval: 20 });
  // One NOTIFY per window the sends spanned: one or two here; on a machine so busy that the five
  // sends take longer than a window, as many more as the windows they took (without the window, five).
  expect(notified.length).toBeLessThanOrEqual(Math.ceil(elapsed / WINDOW_MS) + 1);
});
