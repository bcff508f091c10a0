import { expect, it } from 'vitest';
import type { CarriedEvent } from '../server/live/room-bus.ts';
import type { RoomBatch } from '../server/live/fanout-engine.ts';
import { createOutgoingQueue } from '../server/live/outgoing-queue.ts';

// What an engine holds while its connection is slow or away: the NOTIFY and Redis engines both queue here.
const presence = (user: string, online: boolean): CarriedEvent => ({ type: 'presence', user, online, last_seen_at: null });
const typing = (room: string): CarriedEvent => ({ type: 'typing', chat_room: room, user: 'u' });
const batch = (room: string, events: CarriedEvent[], seqs?: [number, number]): RoomBatch => ({ instance: 'i', room, sentAt: 0, events, ...(seqs && { fromSeq: seqs[0], toSeq: seqs[1] }) });

it('a user’s newer presence replaces an older one still queued; other users’ stay', () => {
  const queue = createOutgoingQueue({ maxBatches: 100, onOverflow: () => {} });
  queue.push([batch('presence', [presence('ann', true), presence('bo', true)])]);
  for (let i = 0; i < 50; i++) queue.push([batch('presence', [presence('ann', i % 2 === 1)])]);
  const events = queue.take().flatMap((b) => b.events);
  expect(events).toEqual([presence('bo', true), presence('ann', true)]);
});

it('past its bound the queue collapses to one catch-up batch per room that keeps the seq range and the latest presence, and says how much it dropped', () => {
  const dropped: number[] = [];
  const queue = createOutgoingQueue({ maxBatches: 50, onOverflow: (n) => dropped.push(n) });
  for (let i = 1; i <= 40; i++) queue.push([batch('room-a', [typing('room-a')], [i, i])]);
  for (let i = 0; i < 10; i++) queue.push([batch('room-b', [typing('room-b')])]);
  queue.push([batch('presence', [presence('ann', false)])]);
  expect(queue.size).toBeLessThanOrEqual(50);
  expect(dropped).toEqual([48]);
  expect(queue.take()).toEqual([
    { instance: 'i', room: 'room-a', sentAt: 0, events: [], omitted: true, fromSeq: 1, toSeq: 40 },
    { instance: 'i', room: 'room-b', sentAt: 0, events: [], omitted: true },
    { instance: 'i', room: 'presence', sentAt: 0, events: [presence('ann', false)] },
  ]);
  expect(queue.size).toBe(0);
});

it('a flood of 100,000 batches over more rooms than the bound holds at most the bound', () => {
  const queue = createOutgoingQueue({ maxBatches: 1_000, onOverflow: () => {} });
  for (let i = 0; i < 100_000; i++) {
    queue.push([batch(`room-${i % 5_000}`, [typing(`room-${i % 5_000}`)], [i, i])]);
    expect(queue.size).toBeLessThanOrEqual(1_000);
  }
});
