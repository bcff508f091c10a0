import { expect, expectTypeOf, it, vi } from 'vitest';
import { PRESENCE_KEY, roomKey, userKey, type RoomKey, type UserKey } from '../server/live/bus-key.ts';
import type { BusEvent } from '../server/live/room-bus.ts';
import { createFanoutBus } from '../server/live/fanout-bus.ts';
import type { FanoutEngine } from '../server/live/fanout-engine.ts';

const ROOM = '00000000-0000-4000-8000-000000000001';

/** An engine that connects and carries nothing: what the sweep sees of other instances is only the database. */
const silentEngine: FanoutEngine = {
  name: 'postgres',
  start: async () => {},
  publish: () => {},
  watch: () => {},
  unwatch: () => {},
  isUp: () => true,
  close: async () => {},
};

/** A bus whose sweep reads `lastSeq()` as the room's newest stored seq; `sweeps(n)` resolves after the n-th sweep. */
async function sweptBus(lastSeq: () => number) {
  let count = 0;
  const waiters: Array<{ n: number; resolve(): void }> = [];
  const bus = await createFanoutBus({
    engine: silentEngine,
    onListenerError: (err) => { throw err; },
    onEngineError: (err) => { throw err; },
    sweepMs: 10,
    async readLastSeqs(heard) {
      count++;
      for (const w of waiters.filter((w) => w.n <= count)) w.resolve();
      // As the database answers: only a room whose newest seq is past what was heard.
      const last = lastSeq();
      return last > (heard.get(ROOM) ?? Infinity) ? new Map([[ROOM, last]]) : new Map();
    },
  });
  const events: BusEvent[] = [];
  bus.subscribe(roomKey(ROOM), (e) => events.push(e));
  // The map a sweep returns is acted on after its promise settles: one more sweep makes sure it was.
  const sweeps = (n: number) => new Promise<void>((resolve) => waiters.push({ n: count + n + 1, resolve }));
  return { bus, events, sweeps };
}

it('a message stored but never announced is caught up by the sweep after the one that first saw it', async () => {
  const { bus, events, sweeps } = await sweptBus(() => 5);
  await sweeps(2);
  expect(events).toEqual([{ type: 'catch-up' }]);
  await sweeps(3);
  expect(events).toEqual([{ type: 'catch-up' }]);
  bus.close();
});

it('a message whose event arrives before the next sweep is not caught up: under load most are in flight when a sweep reads', async () => {
  let last = 0;
  const { bus, events, sweeps } = await sweptBus(() => last);
  for (let seq = 1; seq <= 5; seq++) {
    // Stored (the sweep reads it) and announced by the next interval, as a live send is.
    last = seq;
    await sweeps(1);
    bus.publish(roomKey(ROOM), { type: 'message', message: { id: `m${seq}`, chat_room: ROOM, sender: 'a', content: 'x', created_at: new Date().toISOString(), seq } });
  }
  await sweeps(2);
  expect(events.filter((e) => e.type === 'catch-up')).toEqual([]);
  bus.close();
});

it('the sweep asks the database about the watched rooms only, never about a user’s channel or presence', async () => {
  const asked: string[][] = [];
  const bus = await createFanoutBus({
    engine: silentEngine,
    onListenerError: (err) => { throw err; },
    onEngineError: (err) => { throw err; },
    sweepMs: 10,
    async readLastSeqs(heard) {
      asked.push([...heard.keys()]);
      return new Map();
    },
  });
  const stops = [bus.subscribe(userKey(ROOM), () => {}), bus.subscribe(PRESENCE_KEY, () => {}), bus.subscribe(roomKey(ROOM), () => {})];
  // A room's id is not a key, nor is a user's key a room's: the kind has to be said (checked by tsc).
  expectTypeOf<string>().not.toExtend<Parameters<typeof bus.subscribe>[0]>();
  expectTypeOf<UserKey>().not.toExtend<RoomKey>();
  await vi.waitFor(() => expect(asked.length).toBeGreaterThan(0));
  expect(asked.at(-1)).toEqual([ROOM]);
  for (const stop of stops.splice(2)) stop();
  const before = asked.length;
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(asked.length).toBe(before);
  for (const stop of stops) stop();
  bus.close();
});
