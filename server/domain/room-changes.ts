import type { EntityManager } from '@mikro-orm/postgresql';
import type { RoomChangeEvent } from '../../contracts/index.ts';
import type { Sql } from './message-store.ts';

// The per-room change log: edits, deletions and read markers, each numbered by a dense per-room
// `change_seq` and stored with the event a subscriber gets, so a resume replays them like messages.

/** A stored change and its place among the messages: after message `atSeq`, before `atSeq + 1`. */
export interface StoredChange {
  atSeq: number;
  event: RoomChangeEvent;
}

type Unnumbered = RoomChangeEvent extends infer E ? (E extends RoomChangeEvent ? Omit<E, 'change_seq'> : never) : never;

export interface RoomChangeLog {
  /**
   * Numbers and stores a change; call it inside the transaction that makes the change. The room
   * row's lock (the one sends take for their seqs) orders it among the messages.
   */
  record(em: EntityManager, roomId: string, event: Unnumbered): Promise<StoredChange>;
  /** Changes with `after < change_seq <= upTo`, oldest first. */
  readAfter(sql: Sql, roomId: string, after: number, limit: number, upTo?: number): Promise<StoredChange[]>;
}

export function createRoomChangeLog(): RoomChangeLog {
  return {
    async record(em, roomId, unnumbered) {
      const [room] = await em.execute<Array<{ last_change_seq: string; last_seq: string }>>(
        'update chat_rooms set last_change_seq = last_change_seq + 1 where id = ? returning last_change_seq, last_seq',
        [roomId],
      );
      const event = { ...unnumbered, change_seq: Number(room!.last_change_seq) } as RoomChangeEvent;
      const atSeq = Number(room!.last_seq);
      await em.execute('insert into room_changes (chat_room_id, change_seq, at_seq, event) values (?, ?, ?, ?)', [roomId, event.change_seq, atSeq, JSON.stringify(event)]);
      return { atSeq, event };
    },

    async readAfter(sql, roomId, after, limit, upTo) {
      const rows = await sql.execute<Array<{ at_seq: string; event: RoomChangeEvent }>>(
        'select at_seq, event from room_changes where chat_room_id = ? and change_seq > ? and change_seq <= ? order by change_seq limit ?',
        [roomId, after, upTo ?? Number.MAX_SAFE_INTEGER, limit],
      );
      return rows.map((r) => ({ atSeq: Number(r.at_seq), event: r.event }));
    },
  };
}
