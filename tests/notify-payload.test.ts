import { expect } from 'vitest';
import { createNatsEngine } from '../server/live/nats-engine.ts';
import { hasNatsServer, startTestNats } from './support/nats-server.ts';
import type { RoomBatch } from '../server/live/fanout-engine.ts';
import { NOTIFY_PAYLOAD_MAX_BYTES, packNotifyPayloads } from '../server/live/notify-payload.ts';
import { withClient } from './support/template-database.ts';
import { appTest } from './support/test-app.ts';

const it = appTest(import.meta.filename);

const batch = (room: string, events: unknown[], range?: { fromSeq: number; toSeq: number }): RoomBatch =>
  ({ instance: 'instance-a', room, sentAt: 1_700_000_000_000, ...range, events }) as RoomBatch;
const presence = (i: number) => ({ type: 'presence', user: `user-${i}`, online: i % 2 === 0, last_seen_at: i % 2 === 0 ? null : '2026-12-05T16:00:00.000Z' });
const typing = (i: number) => ({ type: 'typing', user: `user-${i}`, typing: true });
const message = (seq: number, content: string) => ({ type: 'message', message: { id: `m${seq}`, chat_room_id: 'room-1', sender_id: 'alice', content, seq, created_at: '2026-12-05T16:00:00.000Z', edited_at: null, deleted_at: null } });

/** Sends the payloads as the PostgreSQL fan-out engine does: one statement, every payload a NOTIFY. */
const notifyAll = (url: string, payloads: string[]) =>
  withClient(url, (c) => c.query('select pg_notify($1, p) from json_array_elements_text($2::json) as p', ['parley_notify_payload_test', JSON.stringify(payloads)]));

const unpacked = (payloads: string[]) => payloads.flatMap((p) => JSON.parse(p) as RoomBatch[]);

it('a burst of 400 presence changes goes as payloads PostgreSQL accepts, every change once and in order, with the other channels of the flush', async ({ t }) => {
  const burst = batch('presence', Array.from({ length: 400 }, (_, i) => presence(i)));
  const room = batch('room-2', [typing(1)]);
  const payloads = packNotifyPayloads([burst, room]);
  await notifyAll(t.databaseUrl, payloads);
  for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(NOTIFY_PAYLOAD_MAX_BYTES);
  const batches = unpacked(payloads);
  expect(batches.filter((b) => b.room === 'presence').flatMap((b) => b.events)).toEqual(burst.events);
  expect(batches.some((b) => b.omitted)).toBe(false);
  expect(batches.filter((b) => b.room === 'room-2')).toEqual([room]);
});

it('a group commit too big leaves its messages to be read (range and omitted on its first piece) and keeps every other event, in order', async ({ t }) => {
  const events = [...Array.from({ length: 20 }, (_, i) => message(i + 1, 'x'.repeat(1_000))), ...Array.from({ length: 200 }, (_, i) => typing(i))];
  const payloads = packNotifyPayloads([batch('room-1', events, { fromSeq: 1, toSeq: 20 })]);
  await notifyAll(t.databaseUrl, payloads);
  const pieces = unpacked(payloads);
  expect(pieces[0]).toMatchObject({ room: 'room-1', fromSeq: 1, toSeq: 20, omitted: true });
  expect(pieces.slice(1).every((b) => b.fromSeq === undefined && !b.omitted)).toBe(true);
  expect(pieces.flatMap((b) => b.events)).toEqual(events.filter((e) => e.type !== 'message'));
});

it('an event too big for any payload is left out and its channel told to read again; the events around it still go', async ({ t }) => {
  const huge = { type: 'message_updated', change_seq: 3, message: message(1, 'é'.repeat(5_000)).message };
  const events = [typing(1), huge, typing(2)];
  const payloads = packNotifyPayloads([batch('room-1', events)]);
  await notifyAll(t.databaseUrl, payloads);
  const pieces = unpacked(payloads);
  expect(pieces[0]!.omitted).toBe(true);
  expect(pieces.flatMap((b) => b.events)).toEqual([typing(1), typing(2)]);
});

it.skipIf(!hasNatsServer)('over NATS, a batch past the server’s max_payload reaches the other instance in pieces, every event once and in order', async () => {
  await using nats = await startTestNats();
  const sender = createNatsEngine({ servers: [nats.url] });
  const receiver = createNatsEngine({ servers: [nats.url] });
  const received: unknown[] = [];
  const errors: unknown[] = [];
  let subscribed!: () => void;
  const inEffect = new Promise<void>((resolve) => (subscribed = resolve));
  const handlers = (deliver: (b: RoomBatch) => void) => ({ deliver, resync: (channel?: string) => channel === 'presence' && subscribed(), onError: (err: unknown) => errors.push(err) });
  await sender.start(handlers(() => {}));
  await receiver.start(handlers((b) => received.push(...b.events)));
  try {
    receiver.watch('presence');
    // The engine says so once a round trip after the subscription has been answered.
    await inEffect;
    // Past 1 MB, the default max_payload: a restart's presence burst on a large server.
    const burst = batch('presence', Array.from({ length: 14_000 }, (_, i) => presence(i)));
    expect(Buffer.byteLength(JSON.stringify(burst))).toBeGreaterThan(1024 * 1024);
    sender.publish([burst]);
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(burst.events.length);
    expect(received).toEqual(burst.events);
    expect(errors).toEqual([]);
  } finally {
    await sender.close();
    await receiver.close();
  }
});
