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
  /**
   * Moves a read marker forward and, when it moved, records the `read` change: one statement on its
   * own (no transaction around it), so the room row is locked only while it runs and commits.
   * Undefined when the marker was already at or past `seq`.
   */
  recordRead(sql: Sql, roomId: string, userId: string, seq: number): Promise<StoredChange | undefined>;
  /** Changes with `after < change_seq <= upTo`, oldest first. */
  readAfter(sql: Sql, roomId: string, after: number, limit: number, upTo?: number): Promise<StoredChange[]>;
}

// Taking a change's number locks the room row, the lock sends take for their seqs: each change is
// numbered and stored in one statement, and callers do it last, so only the commit follows while
// the room's sends wait.
const NUMBER_CHANGE = 'room as (update chat_rooms set last_change_seq = last_change_seq + 1 where id = ? returning id, last_change_seq, last_seq)';
const storeChange = (event: string) => `insert into room_changes (chat_room_id, change_seq, at_seq, event)
  select id, last_change_seq, last_seq, ${event} || jsonb_build_object('change_seq', last_change_seq) from room
  returning change_seq, at_seq`;

export function createRoomChangeLog(): RoomChangeLog {
  return {
    async record(em, roomId, unnumbered) {
      const [row] = await em.execute<Array<{ change_seq: string; at_seq: string }>>(`with ${NUMBER_CHANGE} ${storeChange('?::jsonb')}`, [roomId, JSON.stringify(unnumbered)]);
      return { atSeq: Number(row!.at_seq), event: { ...unnumbered, change_seq: Number(row!.change_seq) } as RoomChangeEvent };
    },

    async recordRead(sql, roomId, userId, seq) {
      const [row] = await sql.execute<Array<{ advanced: string | null; change_seq: string | null; at_seq: string | null }>>(
        `with marker as (
           insert into read_markers (chat_room_id, user_id, seq) values (?, ?, ?)
           on conflict (chat_room_id, user_id) do update set seq = excluded.seq where read_markers.seq < excluded.seq
           returning seq),
         ${NUMBER_CHANGE.replace('where id = ?', 'where id = ? and exists (select from marker)')},
         change as (${storeChange(`jsonb_build_object('type', 'read', 'chat_room', id, 'user', ?::text, 'seq', (select seq from marker))`)})
         select (select seq from marker) as advanced, (select change_seq from change) as change_seq, (select at_seq from change) as at_seq`,
        [roomId, userId, seq, roomId, userId],
      );
      if (row?.advanced == null) return undefined;
      const event: RoomChangeEvent = { type: 'read', chat_room: roomId, user: userId, seq: Number(row.advanced), change_seq: Number(row.change_seq) };
      return { atSeq: Number(row.at_seq), event };
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
