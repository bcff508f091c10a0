import { randomUUID } from 'node:crypto';
import { createRoomBus, type BusEvent, type CarriedEvent, type RoomBus } from './room-bus.ts';
import type { FanoutEngine, RoomBatch } from './fanout-engine.ts';

export interface FanoutObserver {
  /** Commit-to-delivery time of a batch from another instance. */
  remoteBatch(lagMs: number): void;
}

export interface FanoutBus extends RoomBus {
  readonly instanceId: string;
  close(): void;
}

/** Each room's newest stored seq, for rooms given. */
export type ReadLastSeqs = (roomIds: string[]) => Promise<Map<string, number>>;

const CATCH_UP = Object.freeze({ type: 'catch-up' as const });

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
   * The safety net under an at-most-once engine: every `sweepMs` the watched rooms' newest seqs are
   * read in one query, and a room with messages this instance has not heard of by the next sweep
   * is caught up (so a lost event is repaired within two intervals).
   * It covers what no later event would reveal: a NOTIFY lost with an instance killed right
   * after its commit, a publish that failed while the engine was away.
   */
  readLastSeqs: ReadLastSeqs;
  sweepMs: number;
}): Promise<FanoutBus> {
  const local = createRoomBus(onListenerError);
  const instanceId = randomUUID();
  const watched = new Map<string, number>();
  /** The newest seq this instance has published or received, per watched room. */
  const seen = new Map<string, number>();
  const saw = (room: string, seq: number | undefined) => {
    if (seq !== undefined && watched.has(room) && seq > (seen.get(room) ?? 0)) seen.set(room, seq);
  };
  /** Events published this tick, per room; a flush is scheduled whenever it is not empty. */
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
      if (batch.instance === instanceId || !watched.has(batch.room)) return;
      saw(batch.room, batch.toSeq);
      for (const event of batch.events) local.publish(batch.room, event);
      if (batch.omitted) local.publish(batch.room, CATCH_UP);
      observer?.remoteBatch(Date.now() - batch.sentAt);
    },
    resync(roomId) {
      for (const room of roomId === undefined ? watched.keys() : [roomId]) local.publish(room, CATCH_UP);
    },
    onError: onEngineError,
  });

  /** Per watched room: its newest stored seq at the last sweep, when this instance had not heard of it yet. */
  const overdue = new Map<string, number>();
  let sweeping = false;
  async function sweep() {
    if (sweeping || !watched.size) return;
    sweeping = true;
    try {
      for (const [room, last] of await readLastSeqs([...watched.keys()])) {
        if (!watched.has(room)) continue;
        const heard = seen.get(room) ?? 0;
        const due = overdue.get(room);
        overdue.delete(room);
        // A message stored by the last sweep and still unheard a whole interval later is lost.
        // One stored just now is usually on its way: its commit resolved, its publish has not.
        // Catching that up too cost a room's feed a database read on most sweeps under load.
        if (due !== undefined && heard < due) {
          saw(room, last);
          local.publish(room, CATCH_UP);
        } else if (last > heard) {
          overdue.set(room, last);
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
    publish(roomId, event) {
      local.publish(roomId, event);
      if (event.type === 'catch-up') return;
      if (event.type === 'message') saw(roomId, event.message.seq);
      // After every microtask of this tick: all sends of one group commit have published by then.
      if (!outbox.size) setImmediate(flush);
      let events = outbox.get(roomId);
      if (!events) outbox.set(roomId, (events = []));
      events.push(event);
    },
    subscribe(roomId, listener) {
      const unsubscribe = local.subscribe(roomId, listener);
      const n = watched.get(roomId) ?? 0;
      watched.set(roomId, n + 1);
      if (n === 0) engine.watch(roomId);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        unsubscribe();
        const left = watched.get(roomId)! - 1;
        if (left > 0) return void watched.set(roomId, left);
        watched.delete(roomId);
        seen.delete(roomId);
        overdue.delete(roomId);
        engine.unwatch(roomId);
      };
    },
    listenerCount: () => local.listenerCount(),
    close: () => clearInterval(sweeper),
  };
}
