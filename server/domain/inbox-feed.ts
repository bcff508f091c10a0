import { ParleyError, type InboxEvent } from '../../contracts/index.ts';
import type { BusEvent, RoomBus } from './room-bus.ts';

/** Bus key of a user's own channel: rooms created with them arrive here. */
export const userKey = (userId: string) => `user:${userId}`;

export interface InboxFeedSource {
  bus: RoomBus;
  userId: string;
  /** Ids of every room the user is in, read after the user's channel is listened to. */
  roomIds(): Promise<string[]>;
  signal: AbortSignal;
  /** Events held for a slow reader before the stream ends with SLOW_CONSUMER. */
  maxBuffered?: number;
}

/**
 * Live events of all of a user's rooms on one stream: it listens to the user's channel (new
 * rooms) and to every room's key on the bus, so it composes with any bus engine. Not resumable:
 * it starts with `ready`, after which a re-read of `rooms.list` plus the events is exact.
 */
export async function* inboxFeed({ bus, userId, roomIds, signal, maxBuffered = 10_000 }: InboxFeedSource): AsyncGenerator<InboxEvent> {
  const pending: InboxEvent[] = [];
  const unsubscribes = new Map<string, () => void>();
  let overflowed = false;
  let wake: (() => void) | null = null;

  const push = (busEvent: BusEvent) => {
    // A room's events may have been missed (a fan-out engine reconnected): the stream is not
    // resumable, so it says `ready` again and the app re-reads rooms.list.
    const event: InboxEvent = busEvent.type === 'catch-up' ? { type: 'ready' } : busEvent;
    // Our own presence is no news to us.
    if (event.type === 'presence' && event.user === userId) return;
    if (pending.length >= maxBuffered) overflowed = true;
    else pending.push(event);
    wake?.();
  };
  const listen = (roomId: string) => {
    if (!unsubscribes.has(roomId)) unsubscribes.set(roomId, bus.subscribe(roomId, push));
  };
  unsubscribes.set(
    userKey(userId),
    bus.subscribe(userKey(userId), (event) => {
      if (event.type === 'room_created') listen(event.room.id);
      push(event);
    }),
  );
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);

  try {
    for (const id of await roomIds()) listen(id);
    yield { type: 'ready' };
    while (!signal.aborted) {
      if (overflowed) throw new ParleyError('SLOW_CONSUMER', 'Inbox events fell too far behind; resubscribe and re-read rooms.list.');
      const event = pending.shift();
      if (event) {
        yield event;
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
  } finally {
    for (const unsubscribe of unsubscribes.values()) unsubscribe();
    signal.removeEventListener('abort', onAbort);
  }
}
