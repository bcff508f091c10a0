import type { RoomEvent } from '../../contracts/index.ts';

export type RoomListener = (event: RoomEvent) => void;

/** Live fan-out of room events to every surface (tRPC subscriptions and legacy sockets) in this process. */
export interface RoomBus {
  publish(roomId: string, event: RoomEvent): void;
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
