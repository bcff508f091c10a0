import { ParleyError, type Message, type RoomEvent } from '../../contracts/index.ts';
import type { RoomBus } from './room-bus.ts';

export interface RoomFeedSource {
  bus: RoomBus;
  roomId: string;
  /** Stored messages with `after < seq <= upTo` (no upper bound when omitted), oldest first, at most `limit`. */
  readAfter(after: number, limit: number, upTo?: number): Promise<Message[]>;
  /** The room's newest seq right now. */
  lastSeq(): Promise<number>;
}

export interface RoomFeedOptions {
  /** Resume after this seq; when null, start with what is sent from now on. */
  afterSeq: number | null;
  signal: AbortSignal;
  /** Live message events held for a slow reader before it falls back to reading the database. */
  maxBuffered?: number;
  replayBatch?: number;
}

/**
 * Every room event after `afterSeq`, each message exactly once and in seq order.
 *
 * Sends commit in seq order (the room row lock) but their live events can reach us out of
 * order, and a reader can fall behind: whenever the live stream skips a seq, or overflows its
 * buffer, the missing range is read from the database before anything newer is yielded.
 */
/** A room event and the feed's position after it: the newest seq delivered so far. */
export interface FeedItem {
  position: number;
  event: RoomEvent;
}

/**
 * Opens the feed at once: subscribed to the bus and its starting seq read before it resolves, so
 * a caller that reports "subscribed" after awaiting it (tRPC's `started`) misses nothing
 * committed from then on — not even on another instance. An async generator's body would only
 * run at the first `next()`, after `started` went out.
 */
export async function openRoomFeed(source: RoomFeedSource, options: RoomFeedOptions): Promise<AsyncGenerator<FeedItem>> {
  const { signal, maxBuffered = 1000, replayBatch = 500 } = options;
  let pending: RoomEvent[] = [];
  let pendingMessages = 0;
  let overflowed = false;
  let catchUp = false;
  let wake: (() => void) | null = null;

  // Subscribe before reading the database, so nothing committed in between is missed.
  const unsubscribe = source.bus.subscribe(source.roomId, (event) => {
    if (event.type === 'catch-up') {
      catchUp = true;
    } else if (event.type === 'message') {
      if (overflowed) return;
      if (pendingMessages >= maxBuffered) {
        overflowed = true;
      } else {
        pending.push(event);
        pendingMessages++;
      }
    } else {
      pending.push(event);
    }
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  const close = () => {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
    signal.removeEventListener('abort', close);
  };
  // A feed that is never iterated (its client left first) still lets go of the bus.
  signal.addEventListener('abort', close);

  let last = 0;
  try {
    const newest = await source.lastSeq();
    // A resume point the room never reached would wait in silence for seqs that are already taken.
    if (options.afterSeq !== null && options.afterSeq > newest) {
      throw new ParleyError('INVALID_INPUT', `lastEventId ${options.afterSeq} is past the room's last message (${newest}).`, {
        fields: { lastEventId: [`must be at most ${newest}, the room's last seq; resubscribe from there or without lastEventId`] },
      });
    }
    last = options.afterSeq ?? newest;
  } catch (err) {
    close();
    throw err;
  }

  async function* readStored(upTo?: number): AsyncGenerator<FeedItem> {
    for (;;) {
      const rows = await source.readAfter(last, replayBatch, upTo);
      for (const message of rows) {
        last = message.seq;
        yield { position: last, event: { type: 'message', message } };
      }
      if (rows.length < replayBatch || (upTo !== undefined && last >= upTo)) return;
    }
  }

  async function* run(): AsyncGenerator<FeedItem> {
    try {
      yield* readStored();
      while (!signal.aborted) {
        if (overflowed) {
          pending = pending.filter((e) => e.type !== 'message');
          pendingMessages = 0;
          overflowed = false;
          yield* readStored();
          continue;
        }
        if (catchUp) {
          catchUp = false;
          yield* readStored();
          continue;
        }
        const event = pending.shift();
        if (!event) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          continue;
        }
        if (event.type !== 'message') {
          yield { position: last, event };
          continue;
        }
        pendingMessages--;
        const { seq } = event.message;
        if (seq <= last) continue;
        if (seq > last + 1) yield* readStored(seq - 1);
        last = seq;
        yield { position: last, event };
      }
    } finally {
      close();
    }
  }
  return run();
}
