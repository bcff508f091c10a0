import { ParleyError, type InboxEvent, type PresenceEvent } from '../../contracts/index.ts';
import { roomKey, userKey } from '../live/bus-key.ts';
import type { BusEvent, RoomBus } from '../live/room-bus.ts';
import { watchRevealed } from '../presence/watch-revealed.ts';
import type { EventScreen } from '../safety/block-view.ts';

/** A room of the user and its other participant. */
export interface RoomPartner {
  room: string;
  other: string;
}

export interface InboxFeedDeps {
  bus: RoomBus;
  watchPresence(userId: string, listener: (event: PresenceEvent) => void): () => void;
  /** Every room the user is in, read after the user's channel is listened to. */
  partners(userId: string): Promise<RoomPartner[]>;
  /** Streams one user may hold at once in this process. */
  maxStreamsPerUser: number;
  /** Events held for a slow reader before its stream ends with SLOW_CONSUMER. */
  maxBuffered?: number;
  /** What the user may not see (a blocked pair's typing, presence, read markers); held while the hub lives. */
  screen?(userId: string): Promise<EventScreen>;
  /** A user's presence as of now, for a reader it has just become visible to. */
  presenceNow?(userId: string): Promise<PresenceEvent>;
  onError?(err: unknown): void;
}

export interface InboxFeeds {
  /**
   * Live events of all of a user's rooms on one stream. RATE_LIMITED, at once, past the cap of
   * streams per user. Not resumable: it starts with `ready`, after which a re-read of `rooms.list`
   * plus the events is exact.
   */
  open(userId: string, signal: AbortSignal): AsyncGenerator<InboxEvent>;
  /** Users with a hub, for tests and metrics. */
  hubCount(): number;
}

interface Stream {
  push(event: InboxEvent): void;
}

interface Hub {
  streams: Set<Stream>;
  /** Known once ready; asked at each event, so a block made later applies from then on. */
  readonly hides: ((event: InboxEvent) => boolean) | undefined;
  /** Settles once every room of the user is listened to. */
  ready: Promise<void>;
  close(): void;
}

/**
 * One set of listeners per user, shared by all of that user's inbox streams: the user's channel
 * (new rooms), every room's key on the bus and every partner's presence, subscribed by the first
 * stream and let go with the last. A stream's cost is its own queue, whatever the number of rooms:
 * with a listener set per stream, one user with thousands of rooms and a thousand streams took the
 * process past its heap limit in seconds.
 */
export function createInboxFeeds({ bus, watchPresence, partners, maxStreamsPerUser, maxBuffered = 10_000, screen, presenceNow, onError }: InboxFeedDeps): InboxFeeds {
  const hubs = new Map<string, Hub>();

  function openHub(userId: string): Hub {
    const streams = new Set<Stream>();
    const unsubscribes: Array<() => void> = [];
    const rooms = new Set<string>();
    let closed = false;
    let hides: Hub['hides'];
    let watch = watchPresence;
    const toAll = (event: InboxEvent) => {
      for (const stream of streams) stream.push(event);
    };
    const fromRoom = (busEvent: BusEvent) => {
      // A room's events may have been missed (a fan-out engine reconnected): the stream is not
      // resumable, so it says `ready` again and the app re-reads rooms.list.
      if (busEvent.type === 'presence' || busEvent.type === 'blocks_changed' || busEvent.type === 'bans_changed') return;
      toAll(busEvent.type === 'catch-up' ? { type: 'ready' } : busEvent);
    };
    const listen = ({ room, other }: RoomPartner) => {
      if (closed || rooms.has(room)) return;
      rooms.add(room);
      unsubscribes.push(bus.subscribe(roomKey(room), fromRoom), watch(other, toAll));
    };
    unsubscribes.push(
      bus.subscribe(userKey(userId), (event) => {
        if (event.type === 'room_created') listen({ room: event.room.id, other: event.room.other.user });
        if (event.type !== 'presence') fromRoom(event);
      }),
    );
    const hub: Hub = {
      streams,
      get hides() {
        return hides;
      },
      ready: (async () => {
        const screened = await screen?.(userId);
        if (screened) {
          unsubscribes.push(screened.release);
          if (closed) screened.release();
          hides = screened.hides;
          if (presenceNow) watch = watchRevealed(watchPresence, screened, presenceNow, onError);
        }
        const list = await partners(userId);
        // Every stream left while the rooms were read: nothing more is subscribed.
        for (const partner of list) listen(partner);
      })(),
      close() {
        closed = true;
        if (hubs.get(userId) === hub) hubs.delete(userId);
        for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
      },
    };
    // A failed read leaves no hub behind: the next stream tries again.
    hub.ready.catch(() => hub.close());
    return hub;
  }

  async function* run(hub: Hub, pending: InboxEvent[], state: { overflowed: boolean; wake: (() => void) | null }, signal: AbortSignal, leave: () => void): AsyncGenerator<InboxEvent> {
    try {
      await hub.ready;
      if (signal.aborted) return;
      yield { type: 'ready' };
      while (!signal.aborted) {
        if (state.overflowed) throw new ParleyError('SLOW_CONSUMER', 'Inbox events fell too far behind; resubscribe and re-read rooms.list.');
        const event = pending.shift();
        if (event) {
          if (!hub.hides?.(event)) yield event;
          continue;
        }
        await new Promise<void>((resolve) => (state.wake = resolve));
        state.wake = null;
      }
    } finally {
      leave();
    }
  }

  return {
    open(userId, signal) {
      let hub = hubs.get(userId);
      if (hub && hub.streams.size >= maxStreamsPerUser) {
        throw new ParleyError('RATE_LIMITED', `At most ${maxStreamsPerUser} inbox streams per user at once; close one first.`);
      }
      if (!hub) hubs.set(userId, (hub = openHub(userId)));
      const pending: InboxEvent[] = [];
      const state = { overflowed: false, wake: null as (() => void) | null };
      const stream: Stream = {
        push(event) {
          if (pending.length >= maxBuffered) state.overflowed = true;
          else pending.push(event);
          state.wake?.();
        },
      };
      hub.streams.add(stream);
      const joined = hub;
      // Left on abort too: a stream its client dropped before the first read never runs its finally.
      const leave = () => {
        signal.removeEventListener('abort', leave);
        state.wake?.();
        if (!joined.streams.delete(stream)) return;
        if (!joined.streams.size) joined.close();
      };
      if (signal.aborted) leave();
      else signal.addEventListener('abort', leave);
      return run(joined, pending, state, signal, leave);
    },
    hubCount: () => hubs.size,
  };
}
