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

/**
 * What a feed needs of its reader's signal: an AbortSignal will do, and so will any object that
 * says whether it aborted and calls its listeners once when it does (a socket's session, which
 * then needs no AbortSignal of its own).
 */
export interface FeedSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface RoomFeedOptions {
  /** Resume after this position; when null, start with what happens from now on (a null `change`: changes from now on). */
  after: { seq: number; change: number | null } | null;
  signal: FeedSignal;
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
  /** Called once the feed lets go of the bus: it ended, failed to start, or its signal aborted. May be called more than once. */
  release?: () => void;
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
  // Its client left while the caller was still checking the room: an abort listener added now
  // would never fire, and a stream never iterated never runs its `finally`.
  if (options.signal.aborted) {
    options.release?.();
    return (async function* () {})();
  }
  const feed = new RoomFeed(source, options);
  return feed.run(await feed.start(options.after));
}

/**
 * One feed's state. A class rather than closures over locals: a feed lives as long as its
 * socket, mostly idle, and per-feed functions (two of them generator functions, each with a
 * prototype object of its own) weighed more than its state.
 */
class RoomFeed {
  readonly #source: RoomFeedSource;
  readonly #signal: FeedSignal;
  readonly #maxBuffered: number;
  readonly #replayBatch: number;
  readonly #hide: ((event: RoomEvent) => boolean) | undefined;
  readonly #release: (() => void) | undefined;
  #pending: RoomEvent[] = [];
  #stored = 0;
  #overflowed = false;
  #catchUp = false;
  #wake: (() => void) | null = null;
  /** Where the feed stands: the newest message seq and change seq it delivered. */
  #seq = 0;
  #change = 0;
  readonly #unsubscribeRoom: () => void;
  readonly #unsubscribePresence: (() => void) | undefined;

  constructor(source: RoomFeedSource, options: RoomFeedOptions) {
    this.#source = source;
    this.#signal = options.signal;
    this.#maxBuffered = options.maxBuffered ?? 1000;
    this.#replayBatch = options.replayBatch ?? 500;
    this.#hide = options.hide;
    this.#release = options.release;
    // Subscribe before reading the database, so nothing committed in between is missed.
    this.#unsubscribeRoom = source.bus.subscribe(roomKey(source.roomId), this.#push);
    this.#unsubscribePresence =
      options.presenceOf === undefined
        ? undefined
        : source.watchPresence(options.presenceOf, (event) => {
            this.#pending.push(event);
            this.#wake?.();
          });
    // A feed that is never iterated (its client left first) still lets go of the bus.
    this.#signal.addEventListener('abort', this.#aborted);
  }

  readonly #push = (event: BusEvent) => {
    if (event.type === 'room_created' || event.type === 'presence' || event.type === 'blocks_changed' || event.type === 'bans_changed') return;
    if (event.type === 'catch-up') {
      this.#catchUp = true;
    } else if (event.type === 'message' || isChange(event)) {
      if (this.#overflowed) return;
      if (this.#stored >= this.#maxBuffered) this.#overflowed = true;
      else {
        this.#pending.push(event);
        this.#stored++;
      }
    } else {
      this.#pending.push(event);
    }
    this.#wake?.();
  };

  readonly #aborted = () => {
    this.#wake?.();
    this.#close();
  };

  #close() {
    this.#unsubscribeRoom();
    this.#unsubscribePresence?.();
    this.#signal.removeEventListener('abort', this.#aborted);
    this.#release?.();
  }

  #here(): Position {
    return { seq: this.#seq, change: this.#change };
  }

  /**
   * Reads the starting position: `after`, checked against the room's newest, or the newest.
   * Returns the newest: what the bus was not yet listened to for is stored at or below it.
   */
  async start(after: RoomFeedOptions['after']): Promise<Position> {
    try {
      const newest = await this.#source.position();
      const from = after && { seq: after.seq, change: after.change ?? newest.change };
      // A resume point the room never reached would wait in silence for numbers that are already taken.
      if (from && (from.seq > newest.seq || from.change > newest.change)) {
        const bad = from.seq > newest.seq ? `message seq ${from.seq}` : `change seq ${from.change}`;
        throw new ParleyError('INVALID_INPUT', `lastEventId: ${bad} is past the room's newest (${newest.seq}.${newest.change}).`, {
          fields: { lastEventId: [`must be at most ${newest.change ? `${newest.seq}.${newest.change}` : newest.seq}, the room's newest event id; resubscribe from there or without lastEventId`] },
        });
      }
      ({ seq: this.#seq, change: this.#change } = from ?? newest);
      return newest;
    } catch (err) {
      this.#close();
      throw err;
    }
  }

  /** Stored messages and changes after where the feed stands, merged in commit order, up to the given bounds. */
  async *#readStored(upToSeq?: number, upToChange?: number): AsyncGenerator<FeedItem> {
    const source = this.#source;
    const replayBatch = this.#replayBatch;
    const hide = this.#hide;
    for (;;) {
      // One read at a time, so a feed holds at most one pooled connection: with both reads in
      // flight, a socket closed by SIGTERM left shutdown's pool.end() hanging (tests/lifecycle.test.ts).
      const messages = upToSeq === undefined || this.#seq < upToSeq ? await source.readAfter(this.#seq, replayBatch, upToSeq) : [];
      const changes = upToChange === undefined || this.#change < upToChange ? await source.readChangesAfter(this.#change, replayBatch, upToChange) : [];
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
          this.#seq = m.seq;
          i++;
          yield { position: this.#here(), event: { type: 'message', message: m } };
        } else {
          this.#change = c!.event.change_seq;
          j++;
          if (!hide?.(c!.event)) yield { position: this.#here(), event: c!.event };
        }
      }
      if (!moreMessages && !moreChanges) return;
    }
  }

  async *run(newest: Position): AsyncGenerator<FeedItem> {
    const signal = this.#signal;
    const hide = this.#hide;
    try {
      // Up to the room's newest when the feed began listening: anything later comes over the bus
      // (a gap there reads again). A feed that starts at the newest, or resumes where the room
      // stands, reads nothing: a reconnect storm's resumes cost one batched position read each.
      yield* this.#readStored(newest.seq, newest.change);
      while (!signal.aborted) {
        if (this.#overflowed || this.#catchUp) {
          if (this.#overflowed) this.#pending = this.#pending.filter((e) => e.type !== 'message' && !isChange(e));
          if (this.#overflowed) this.#stored = 0;
          this.#overflowed = false;
          this.#catchUp = false;
          yield* this.#readStored();
          continue;
        }
        const event = this.#pending.shift();
        if (!event) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = null;
          continue;
        }
        if (event.type === 'message') {
          this.#stored--;
          const { seq } = event.message;
          if (seq <= this.#seq) continue;
          if (seq > this.#seq + 1) yield* this.#readStored(seq - 1, this.#change);
          this.#seq = seq;
        } else if (isChange(event)) {
          this.#stored--;
          const change = event.change_seq;
          if (change <= this.#change) continue;
          if (change > this.#change + 1) yield* this.#readStored(this.#seq, change - 1);
          this.#change = change;
        }
        if (!hide?.(event)) yield { position: this.#here(), event };
      }
    } finally {
      this.#close();
    }
  }
}
