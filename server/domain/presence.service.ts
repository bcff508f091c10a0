import type { EntityManager } from '@mikro-orm/postgresql';
import type { PresenceEvent } from '../../contracts/index.ts';
import type { RoomBus } from './room-bus.ts';

/** Bus key every instance's presence changes go to, so each instance knows who is online anywhere. */
export const PRESENCE_KEY = 'presence';

export interface PresenceService {
  /** A WebSocket of `userId` opened (either surface); call the returned function when it closes. */
  connect(userId: string): () => void;
  /** Online on this instance or, as last heard over the bus, on another. */
  isOnline(userId: string): boolean;
  /** Resolves once every presence change so far is stored and published (tests, shutdown). */
  settled(): Promise<void>;
}

/**
 * A user is online while at least one of their sockets is open. The first socket and the last
 * close publish a `presence` event to each of the user's rooms (so it reaches exactly the users
 * who share a room with them, on room and inbox streams alike), and to {@link PRESENCE_KEY}.
 */
export function createPresenceService({ bus, em, onError }: { bus: RoomBus; em: () => EntityManager; onError: (err: unknown) => void }): PresenceService {
  const sockets = new Map<string, number>();
  const heard = new Map<string, boolean>();
  let chain = Promise.resolve();

  bus.subscribe(PRESENCE_KEY, (event) => {
    if (event.type === 'presence') heard.set(event.user, event.online);
  });

  // Transitions are stored and published one at a time, so a quick reconnect cannot publish
  // "online" before the "offline" it follows.
  function transition(userId: string, online: boolean) {
    chain = chain
      .then(async () => {
        const conn = em();
        const [user] = online
          ? await conn.execute<Array<{ last_seen_at: Date | null }>>('select last_seen_at from users where id = ?', [userId])
          : await conn.execute<Array<{ last_seen_at: Date | null }>>('update users set last_seen_at = now() where id = ? returning last_seen_at', [userId]);
        const event: PresenceEvent = { type: 'presence', user: userId, online, last_seen_at: user?.last_seen_at ? new Date(user.last_seen_at).toISOString() : null };
        const rooms = await conn.execute<Array<{ id: string }>>('select id from chat_rooms where participant1_id = ? or participant2_id = ?', [userId, userId]);
        bus.publish(PRESENCE_KEY, event);
        for (const room of rooms) bus.publish(room.id, event);
      })
      .catch(onError);
  }

  return {
    connect(userId) {
      const n = (sockets.get(userId) ?? 0) + 1;
      sockets.set(userId, n);
      if (n === 1) transition(userId, true);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = sockets.get(userId)! - 1;
        if (left > 0) return void sockets.set(userId, left);
        sockets.delete(userId);
        transition(userId, false);
      };
    },
    isOnline: (userId) => sockets.has(userId) || heard.get(userId) === true,
    settled: () => chain,
  };
}
