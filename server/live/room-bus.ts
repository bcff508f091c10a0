import type { RoomCreatedEvent, RoomEvent } from '../../contracts/index.ts';

/**
 * Not a room event: stored messages may have been missed (a fan-out engine reconnected, or carried
 * only a seq range), so every feed of the room re-reads the database from its last seq.
 */
export interface CatchUp {
  type: 'catch-up';
}
/** Not a room event: a block between two users was made or lifted; instances re-read what they hold of either. */
export interface BlocksChanged {
  type: 'blocks_changed';
  users: [string, string];
}
/** What travels on the bus: room events and catch-ups under a room's id, new rooms under `user:<id>` (see inbox-feed.ts), block changes under `safety`. */
export type BusEvent = RoomEvent | CatchUp | RoomCreatedEvent | BlocksChanged;
/** What an engine carries between instances: everything but catch-ups, which each instance raises for itself. */
export type CarriedEvent = Exclude<BusEvent, CatchUp>;
export type RoomListener = (event: BusEvent) => void;

/**
 * Live fan-out of room events to every surface (tRPC subscriptions and legacy sockets), in this
 * process and, with an engine, on every instance. Keys are room ids, `user:<id>` (a user's own
 * channel) and `presence`.
 */
export interface RoomBus {
  publish(roomId: string, event: BusEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(roomId: string, listener: RoomListener): () => void;
  /** Number of live listeners, for readiness and metrics. */
  listenerCount(): number;
}

export function createRoomBus(onListenerError: (err: unknown) => void): RoomBus {
  const rooms = new Map<string, Set<RoomListener>>();
  let count = 0;
  return {
    publish(roomId, event) {
      const listeners = rooms.get(roomId);
      if (!listeners) return;
      for (const listener of listeners) {
        // One broken listener must not starve the others of the event.
        try {
          listener(event);
        } catch (err) {
          onListenerError(err);
        }
      }
    },
    subscribe(roomId, listener) {
      let listeners = rooms.get(roomId);
      if (!listeners) rooms.set(roomId, (listeners = new Set()));
      listeners.add(listener);
      count++;
      return () => {
        if (!listeners.delete(listener)) return;
        count--;
        if (listeners.size === 0) rooms.delete(roomId);
      };
    },
    listenerCount: () => count,
  };
}
