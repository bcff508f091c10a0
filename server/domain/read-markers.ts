import type { EntityManager } from '@mikro-orm/postgresql';

/** Per-user, per-room read markers: the seq up to which the user has read. */
export interface ReadMarkers {
  /** Moves the marker to `seq` if that is forward; returns the new seq, or undefined when it was already there or beyond. */
  advance(em: EntityManager, roomId: string, userId: string, seq: number): Promise<number | undefined>;
  current(em: EntityManager, roomId: string, userId: string): Promise<number>;
}

export function createReadMarkers(): ReadMarkers {
  return {
    async advance(em, roomId, userId, seq) {
      const [row] = await em.execute<Array<{ seq: string }>>(
        `insert into read_markers (chat_room_id, user_id, seq) values (?, ?, ?)
         on conflict (chat_room_id, user_id) do update set seq = excluded.seq where read_markers.seq < excluded.seq
         returning seq`,
        [roomId, userId, seq],
      );
      return row && Number(row.seq);
    },
    async current(em, roomId, userId) {
      const [row] = await em.execute<Array<{ seq: string }>>('select seq from read_markers where chat_room_id = ? and user_id = ?', [roomId, userId]);
      return Number(row?.seq ?? 0);
    },
  };
}
