import type { EntityManager } from '@mikro-orm/postgresql';

/** Per-user, per-room read markers: the seq up to which the user has read (moved by the change log's `recordRead`). */
export interface ReadMarkers {
  current(em: EntityManager, roomId: string, userId: string): Promise<number>;
}

export function createReadMarkers(): ReadMarkers {
  return {
    async current(em, roomId, userId) {
      const [row] = await em.execute<Array<{ seq: string }>>('select seq from read_markers where chat_room_id = ? and user_id = ?', [roomId, userId]);
      return Number(row?.seq ?? 0);
    },
  };
}
