import { roomKey } from '../live/bus-key.ts';
import type { RoomBus } from '../live/room-bus.ts';

export interface TypingService {
  /** Publishes a typing event unless this user typed in this room within the throttle window. */
  typing(roomId: string, userId: string): { delivered: boolean };
}

export function createTypingService({ bus, throttleMs, now = Date.now }: { bus: RoomBus; throttleMs: number; now?: () => number }): TypingService {
  const lastSent = new Map<string, number>();
  return {
    typing(roomId, userId) {
      const key = `${roomId}\u0000${userId}`;
      const t = now();
      const previous = lastSent.get(key);
      if (previous !== undefined && t - previous < throttleMs) return { delivered: false };
      // Entries past the window carry no information, so the map never outgrows the active typists.
      if (lastSent.size > 10_000) for (const [k, at] of lastSent) if (t - at >= throttleMs) lastSent.delete(k);
      lastSent.set(key, t);
      bus.publish(roomKey(roomId), { type: 'typing', chat_room: roomId, user: userId });
      return { delivered: true };
    },
  };
}
