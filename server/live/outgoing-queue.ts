import type { RoomBatch } from './fanout-engine.ts';

/** Batches waiting for an engine's connection, bounded: a stalled engine must not grow the heap. */
export interface OutgoingQueue {
  push(batches: RoomBatch[]): void;
  /** Everything queued, oldest first; the queue is empty after. */
  take(): RoomBatch[];
  readonly size: number;
}

/**
 * A user's newer presence replaces an older one still queued (only the last state is news). Past
 * `maxBatches` the queue collapses to one batch per room that keeps its seq range and presence and
 * drops the rest with `omitted`, so receivers re-read those rooms (their feeds catch up from the
 * database, the sweep covers what is dropped beyond that). `onOverflow` hears of each collapse.
 */
export function createOutgoingQueue({ maxBatches, onOverflow }: { maxBatches: number; onOverflow(dropped: number): void }): OutgoingQueue {
  let queue: RoomBatch[] = [];
  /** Per room and user, the queued batch holding that user's latest presence. */
  let presence = new Map<string, RoomBatch>();

  function coalesce(batch: RoomBatch) {
    for (const event of batch.events) {
      if (event.type !== 'presence') continue;
      const key = `${batch.room}\0${event.user}`;
      const older = presence.get(key);
      if (older) older.events = older.events.filter((e) => e.type !== 'presence' || e.user !== event.user);
      presence.set(key, batch);
    }
  }

  function collapse() {
    const before = queue.length;
    const rooms = new Map<string, RoomBatch>();
    for (const batch of queue) {
      let into = rooms.get(batch.room);
      if (!into) rooms.set(batch.room, (into = { instance: batch.instance, room: batch.room, sentAt: batch.sentAt, events: [] }));
      for (const event of batch.events) {
        if (event.type === 'presence') into.events.push(event);
        else into.omitted = true;
      }
      if (batch.omitted) into.omitted = true;
      if (batch.fromSeq !== undefined) into.fromSeq = Math.min(into.fromSeq ?? batch.fromSeq, batch.fromSeq);
      if (batch.toSeq !== undefined) into.toSeq = Math.max(into.toSeq ?? batch.toSeq, batch.toSeq);
    }
    queue = [...rooms.values()];
    // More rooms than half the bound: the oldest go without a word (the sweep finds their
    // messages). Half, so that a sustained flood collapses once per half-bound pushes, not at each.
    const keep = Math.floor(maxBatches / 2);
    if (queue.length > keep) queue = queue.slice(queue.length - keep);
    presence = new Map();
    for (const batch of queue) coalesce(batch);
    onOverflow(before - queue.length);
  }

  return {
    push(batches) {
      for (const batch of batches) {
        coalesce(batch);
        queue.push(batch);
      }
      if (queue.length > maxBatches) collapse();
    },
    take() {
      const taken = queue.filter((b) => b.events.length || b.fromSeq !== undefined || b.omitted);
      queue = [];
      presence = new Map();
      return taken;
    },
    get size() {
      return queue.length;
    },
  };
}

/** Publishes through an engine's connection one round at a time, whatever queues meanwhile waiting, bounded, for the next. */
export interface OutgoingSender {
  publish(batches: RoomBatch[]): void;
  close(): void;
}

/**
 * The engines' one way out: `send` gets everything queued since the last round and is awaited
 * before the next, so a slow connection makes rounds larger rather than the heap (the queue is
 * bounded, see {@link createOutgoingQueue}). `windowMs` holds each round that long first, so what
 * follows within it goes in the same one. `send` reports its own failures and never throws.
 */
export function createOutgoingSender({
  maxBatches,
  windowMs = 0,
  send,
  onOverflow,
}: {
  maxBatches: number;
  windowMs?: number;
  send(batches: RoomBatch[]): Promise<unknown>;
  onOverflow(dropped: number): void;
}): OutgoingSender {
  const queue = createOutgoingQueue({ maxBatches, onOverflow });
  let sending = false;
  let closed = false;
  async function drain() {
    sending = true;
    while (queue.size && !closed) {
      if (windowMs > 0) await new Promise((resolve) => setTimeout(resolve, windowMs));
      if (closed) break;
      await send(queue.take());
    }
    sending = false;
  }
  return {
    publish(batches) {
      if (closed || !batches.length) return;
      queue.push(batches);
      if (!sending) void drain();
    },
    close() {
      closed = true;
    },
  };
}
