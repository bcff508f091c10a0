import { randomUUID } from 'node:crypto';
import type { BusEvent, CarriedEvent, RoomBus } from './room-bus.ts';
import { channelOf, roomKey, type BusKey } from './bus-key.ts';
import type { FanoutEngine, RoomBatch } from './fanout-engine.ts';
import { createListenerSets } from './listener-sets.ts';

export interface FanoutObserver {
  /** Commit-to-delivery time of a batch from another instance. */
  remoteBatch(lagMs: number): void;
}

export interface FanoutBus extends RoomBus {
  readonly instanceId: string;
  close(): void;
}

/** The rooms whose newest stored seq is past the one given (what this instance heard), with that seq. */
export type ReadLastSeqs = (heard: ReadonlyMap<string, number>) => Promise<Map<string, number>>;

const CATCH_UP = Object.freeze({ type: 'catch-up' as const });
/** Watched rooms asked about per sweep query. */
const SWEEP_CHUNK = 500;

/**
 * The room bus across instances: local listeners get every event at once, in-process; the events
 * of one tick are collected per room and handed to the engine as one batch each. Sends of one
 * group commit resolve in the same tick, so one flushed statement becomes one publish.
 */
export async function createFanoutBus({
  engine,
  onListenerError,
  onEngineError,
  observer,
  readLastSeqs,
  sweepMs,
}: {
  engine: FanoutEngine;
  onListenerError: (err: unknown) => void;
  onEngineError: (err: unknown, what: string) => void;
  observer?: FanoutObserver;
  /**
   * The safety net under an at-most-once engine: every `sweepMs` one query finds the watched rooms
   * whose newest seq is past what this instance heard, and a room with messages this instance has
   * not heard of by the next sweep is caught up (so a lost event is repaired within two intervals).
   * The database compares: reading every watched room's seq into the process every interval cost
   * an instance holding ten thousand rooms most of its idle CPU.
   * It covers what no later event would reveal: a NOTIFY lost with an instance killed right
   * after its commit, a publish that failed while the engine was away.
   */
  readLastSeqs: ReadLastSeqs;
  sweepMs: number;
}): Promise<FanoutBus> {
  // Listeners by channel (the key's name on the wire), so a received batch is routed by lookup alone.
  const local = createListenerSets<string, BusEvent>(onListenerError);
  const instanceId = randomUUID();
  /** Channels with local listeners: their key and how many listeners. */
  const watched = new Map<string, { key: BusKey; listeners: number }>();
  /** Per watched room (by id): the newest seq this instance has published or received, 0 before any. */
  const heard = new Map<string, number>();
  const saw = (key: BusKey, seq: number | undefined) => {
    if (seq === undefined || key.kind !== 'room') return;
    const last = heard.get(key.roomId);
    if (last !== undefined && seq > last) heard.set(key.roomId, seq);
  };
  /** Events published this tick, per channel; a flush is scheduled whenever it is not empty. */
  let outbox = new Map<string, CarriedEvent[]>();

  function flush() {
    const sentAt = Date.now();
    const batches: RoomBatch[] = [];
    for (const [room, events] of outbox) {
      const batch: RoomBatch = { instance: instanceId, room, sentAt, events };
      // A room's messages are published in seq order in one process (messages.service.ts).
      for (const e of events) {
        if (e.type !== 'message') continue;
        batch.fromSeq ??= e.message.seq;
        batch.toSeq = e.message.seq;
      }
      batches.push(batch);
    }
    outbox = new Map();
    engine.publish(batches);
  }

  await engine.start({
    deliver(batch) {
      const watch = batch.instance === instanceId ? undefined : watched.get(batch.room);
      if (!watch) return;
      saw(watch.key, batch.toSeq);
      for (const event of batch.events) local.publish(batch.room, event);
      if (batch.omitted) local.publish(batch.room, CATCH_UP);
      observer?.remoteBatch(Date.now() - batch.sentAt);
    },
    resync(channel) {
      for (const ch of channel === undefined ? watched.keys() : [channel]) local.publish(ch, CATCH_UP);
    },
    onError: onEngineError,
  });

  /** Per watched room: its newest stored seq at the last sweep, when this instance had not heard of it yet. */
  const overdue = new Map<string, number>();
  let sweeping = false;
  async function sweep() {
    if (sweeping || !heard.size) return;
    sweeping = true;
    try {
      // A few hundred rooms per query: one parameter naming every watched room (half a megabyte
      // at ten thousand rooms, every interval) grew the process by more than its idle sockets
      // hold, as its large strings and buffers left the allocator's pages in use.
      const behind = new Map<string, number>();
      const rooms = heard.entries();
      for (let done = false; !done; ) {
        const chunk = new Map<string, number>();
        for (let next = rooms.next(); ; next = rooms.next()) {
          if (next.done) {
            done = true;
            break;
          }
          chunk.set(next.value[0], next.value[1]);
          if (chunk.size === SWEEP_CHUNK) break;
        }
        if (chunk.size) for (const [roomId, last] of await readLastSeqs(chunk)) behind.set(roomId, last);
      }
      // A room no longer behind is no longer overdue.
      for (const roomId of overdue.keys()) if (!behind.has(roomId)) overdue.delete(roomId);
      for (const [roomId, last] of behind) {
        const newest = heard.get(roomId);
        if (newest === undefined) continue;
        const due = overdue.get(roomId);
        overdue.delete(roomId);
        // A message stored by the last sweep and still unheard a whole interval later is lost.
        // One stored just now is usually on its way: its commit resolved, its publish has not.
        // Catching that up too cost a room's feed a database read on most sweeps under load.
        if (due !== undefined && newest < due) {
          heard.set(roomId, Math.max(newest, last));
          local.publish(channelOf(roomKey(roomId)), CATCH_UP);
        } else if (last > newest) {
          overdue.set(roomId, last);
        }
      }
    } catch (err) {
      onEngineError(err, 'sweep');
    } finally {
      sweeping = false;
    }
  }
  const sweeper = setInterval(() => void sweep(), sweepMs);
  sweeper.unref();

  return {
    instanceId,
    publish(key, event) {
      const channel = channelOf(key);
      local.publish(channel, event);
      if (event.type === 'catch-up') return;
      if (event.type === 'message') saw(key, event.message.seq);
      // After every microtask of this tick: all sends of one group commit have published by then.
      if (!outbox.size) setImmediate(flush);
      let events = outbox.get(channel);
      if (!events) outbox.set(channel, (events = []));
      events.push(event);
    },
    subscribe(key, listener) {
      const channel = channelOf(key);
      const unsubscribe = local.subscribe(channel, listener);
      const first = !watched.has(channel);
      const watch = watched.get(channel) ?? { key, listeners: 0 };
      watch.listeners++;
      if (first) {
        watched.set(channel, watch);
        if (key.kind === 'room') heard.set(key.roomId, 0);
        engine.watch(channel);
      }
      let done = false;
      return () => {
        if (done) return;
        done = true;
        unsubscribe();
        if (--watch.listeners > 0) return;
        watched.delete(channel);
        if (key.kind === 'room') {
          heard.delete(key.roomId);
          overdue.delete(key.roomId);
        }
        engine.unwatch(channel);
      };
    },
    listenerCount: local.count,
    close: () => clearInterval(sweeper),
  };
}
