import { ParleyError, type Message, type RoomChangeEvent, type RoomEvent } from '../../contracts/index.ts';
import type { PresenceEvent } from '../../contracts/index.ts';
import { roomKey } from '../live/bus-key.ts';
import type { BusEvent, RoomBus } from '../live/room-bus.ts';
import type { StoredChange } from './room-changes.ts';

export interface RoomFeedSource {
  bus: RoomBus;
  /** Hears one user's presence changes (presence travels once per user, not per room); returns the unsubscribe. */
  watchPresence(userId: string, listener: (event: PresenceEvent) => void): () => void;
  roomId: string;
  /** Stored messages with `after < seq <= upTo` (no upper bound when omitted), oldest first, at most `limit`. */
  readAfter(after: number, limit: number, upTo?: number): Promise<Message[]>;
  /** Stored changes (edits, deletions, read markers) with `after < change_seq <= upTo`, oldest first. */
  readChangesAfter(after: number, limit: number, upTo?: number): Promise<StoredChange[]>;
  /** The room's newest message seq and change seq right now. */
  position(): Promise<Position>;
}

/** Where a feed stands: the newest message seq and the newest change seq it delivered. */
export interface Position {
  seq: number;
  change: number;
}

export interface RoomFeedOptions {
  /** Resume after this position; when null, start with what happens from now on (a null `change`: changes from now on). */
  after: { seq: number; change: number | null } | null;
  signal: AbortSignal;
  /** The other participant, when the stream carries presence: their `presence` events join the feed. Unset: none do. */
  presenceOf?: string;
  /** Live stored events (messages, changes) held for a slow reader before it falls back to reading the database. */
  maxBuffered?: number;
  replayBatch?: number;
  /**
   * Events this reader must not see (a blocked pair's typing, presence and read markers), asked
   * as each is delivered, so a block made while the feed is open applies from its next event. A
   * hidden change still moves the feed's position.
   */
  hide?: (event: RoomEvent) => boolean;
}

/** A room event and the feed's position after it. */
export interface FeedItem {
  position: Position;
  event: RoomEvent;
}

const isChange = (e: RoomEvent): e is RoomChangeEvent => e.type === 'read' || e.type === 'delivered' || e.type === 'message_updated' || e.type === 'message_deleted';

/**
 * Every room event after a position, each message and each change exactly once, each sequence in
 * order. Messages and changes are two dense sequences; a change stored at message seq L (see
 * room-changes.ts) replays after message L, which is the order they committed in.
 *
 * Live events can reach us out of order, and a reader can fall behind: whenever a sequence skips
 * a number, the buffer overflows, or the bus says events may have been missed (catch-up), the
 * missing range is read from the database first.
 *
 * Opens the feed at once: subscribed to the bus and its starting position read before it resolves,
 * so a caller that reports "subscribed" after awaiting it (tRPC's `started`) misses nothing
 * committed from then on — not even on another instance. An async generator's body would only
 * run at the first `next()`, after `started` went out.
 */
export async function openRoomFeed(source: RoomFeedSource, options: RoomFeedOptions): Promise<AsyncGenerator<FeedItem>> {
  const { signal, maxBuffered = 1000, replayBatch = 500, hide } = options;
  // Its client left while the caller was still checking the room: an abort listener added now
  // would never fire, and a stream never iterated never runs its `finally`.
  if (signal.aborted) return (async function* () {})();
  let pending: RoomEvent[] = [];
  let stored = 0;
  let overflowed = false;
  let catchUp = false;
  let wake: (() => void) | null = null;

  // Subscribe before reading the database, so nothing committed in between is missed.
  const push = (event: BusEvent) => {
    if (event.type === 'room_created' || event.type === 'presence' || event.type === 'blocks_changed' || event.type === 'bans_changed') return;
    if (event.type === 'catch-up') {
      catchUp = true;
    } else if (event.type === 'message' || isChange(event)) {
      if (overflowed) return;
      if (stored >= maxBuffered) overflowed = true;
      else {
        pending.push(event);
        stored++;
      }
    } else {
      pending.push(event);
    }
    wake?.();
  };
  const unsubscribeRoom = source.bus.subscribe(roomKey(source.roomId), push);
  const unsubscribePresence = options.presenceOf === undefined ? undefined : source.watchPresence(options.presenceOf, (event) => {
    pending.push(event);
    wake?.();
  });
  const unsubscribe = () => {
    unsubscribeRoom();
    unsubscribePresence?.();
  };
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  const close = () => {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
    signal.removeEventListener('abort', close);
  };
  // A feed that is never iterated (its client left first) still lets go of the bus.
  signal.addEventListener('abort', close);

  const at: Position = { seq: 0, change: 0 };
  const here = () => ({ ...at });
  try {
    const newest = await source.position();
    const after = options.after && { seq: options.after.seq, change: options.after.change ?? newest.change };
    // A resume point the room never reached would wait in silence for numbers that are already taken.
    if (after && (after.seq > newest.seq || after.change > newest.change)) {
      const bad = after.seq > newest.seq ? `message seq ${after.seq}` : `change seq ${after.change}`;
      throw new ParleyError('INVALID_INPUT', `lastEventId: ${bad} is past the room's newest (${newest.seq}.${newest.change}).`, {
        fields: { lastEventId: [`must be at most ${newest.change ? `${newest.seq}.${newest.change}` : newest.seq}, the room's newest event id; resubscribe from there or without lastEventId`] },
      });
    }
    Object.assign(at, after ?? newest);
  } catch (err) {
    close();
    throw err;
  }

  /** Stored messages and changes after `at`, merged in commit order, up to the given bounds. */
  async function* readStored(upToSeq?: number, upToChange?: number): AsyncGenerator<FeedItem> {
    for (;;) {
      // One read at a time, so a feed holds at most one pooled connection: with both reads in
      // flight, a socket closed by SIGTERM left shutdown's pool.end() hanging (tests/lifecycle.test.ts).
      const messages = upToSeq === undefined || at.seq < upToSeq ? await source.readAfter(at.seq, replayBatch, upToSeq) : [];
      const changes = upToChange === undefined || at.change < upToChange ? await source.readChangesAfter(at.change, replayBatch, upToChange) : [];
      const moreMessages = messages.length === replayBatch;
      const moreChanges = changes.length === replayBatch;
      let i = 0;
      let j = 0;
      for (;;) {
        const m = messages[i];
        const c = changes[j];
        // A full batch may continue past what is read: decide only with both sides in view.
        if ((!m && moreMessages) || (!c && moreChanges) || (!m && !c)) break;
        if (m && (!c || m.seq <= c.atSeq)) {
          at.seq = m.seq;
          i++;
          yield { position: here(), event: { type: 'message', message: m } };
        } else {
          at.change = c!.event.change_seq;
          j++;
          if (!hide?.(c!.event)) yield { position: here(), event: c!.event };
        }
      }
      if (!moreMessages && !moreChanges) return;
    }
  }

  async function* run(): AsyncGenerator<FeedItem> {
    try {
      yield* readStored();
      while (!signal.aborted) {
        if (overflowed || catchUp) {
          if (overflowed) pending = pending.filter((e) => e.type !== 'message' && !isChange(e));
          if (overflowed) stored = 0;
          overflowed = false;
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
        if (event.type === 'message') {
          stored--;
          const { seq } = event.message;
          if (seq <= at.seq) continue;
          if (seq > at.seq + 1) yield* readStored(seq - 1, at.change);
          at.seq = seq;
        } else if (isChange(event)) {
          stored--;
          const change = event.change_seq;
          if (change <= at.change) continue;
          if (change > at.change + 1) yield* readStored(at.seq, change - 1);
          at.change = change;
        }
        if (!hide?.(event)) yield { position: here(), event };
      }
    } finally {
      close();
    }
  }
  return run();
}
