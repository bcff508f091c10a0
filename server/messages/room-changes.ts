import type { EntityManager } from '@mikro-orm/postgresql';
import { prepared, runPrepared } from '../infra/db/prepared.ts';
import type { RoomChangeEvent } from '../../contracts/index.ts';
import { catchUpRanges, type CatchUpRead, type Sql } from './message-store.ts';

// The per-room change log: edits, deletions and read markers, each numbered by a dense per-room
// `change_seq` and stored with the event a subscriber gets, so a resume replays them like messages.

/** A stored change and its place among the messages: after message `atSeq`, before `atSeq + 1`. */
export interface StoredChange {
  atSeq: number;
  event: RoomChangeEvent;
}

/** What a marker move found: the room's last seq, the marker after the statement, and the change if it moved. */
export interface ReadOutcome {
  lastSeq: number;
  marker: number;
  stored?: StoredChange;
}

/** A change before the log numbers it. */
export type Unnumbered = RoomChangeEvent extends infer E ? (E extends RoomChangeEvent ? Omit<E, 'change_seq'> : never) : never;

export interface RoomChangeLog {
  /**
   * Numbers and stores a change; call it inside the transaction that makes the change, last (its
   * number stays locked until the commit).
   */
  record(em: EntityManager, roomId: string, event: Unnumbered): Promise<StoredChange>;
  /**
   * Moves a read marker forward and, when it moved, records the `read` change, in one statement
   * (no transaction around it): the room's last seq bounds `seq` in the same snapshot. Nothing
   * moves when `seq` is 0, past the room's last seq, or at or behind the marker.
   */
  recordRead(sql: Sql, roomId: string, userId: string, seq: number): Promise<ReadOutcome>;
  /** Numbers and stores many changes of one room in one statement, in order; as {@link record}, call it last in the change's transaction. */
  recordMany(em: EntityManager, roomId: string, events: readonly Unnumbered[]): Promise<StoredChange[]>;
  /** {@link recordRead} for the delivered marker: the `delivered` change, the same rules. */
  recordDelivered(sql: Sql, roomId: string, userId: string, seq: number): Promise<ReadOutcome>;
  /**
   * {@link recordDelivered} for many rooms and users in one statement (push notifications a push
   * service accepted together); the changes that were stored, each with its room.
   */
  recordDeliveredMany(sql: Sql, moves: ReadonlyArray<{ roomId: string; userId: string; seq: number }>): Promise<Array<StoredChange & { roomId: string }>>;
  /** Each read's changes with `after < change_seq <= upTo`, oldest first, in one statement (feeds catching up together read together). */
  readAfterMany(sql: Sql, reads: readonly CatchUpRead[]): Promise<StoredChange[][]>;
}

/** {@link RoomChangeLog.readAfterMany}: each read's range by its own index scan, rows grouped by read, oldest first. */
const READ_AFTER_MANY_SQL = `
  select i.k, c.at_seq, c.event
    from json_to_recordset(?::json) as i(k int, room uuid, lo bigint, hi bigint, lim int)
    cross join lateral (
      select at_seq, event, change_seq from room_changes
       where chat_room_id = i.room and change_seq > i.lo and change_seq <= i.hi order by change_seq limit i.lim) c
   order by i.k, c.change_seq`;

/**
 * Delivered markers moved for many rooms and users at once (a JSON array of `{ room, user, seq }`),
 * each a change of its room.
 */
export const RECORD_DELIVERED_MANY_SQL = `with input as (
   select distinct on (room, "user") room, "user", seq from json_to_recordset(?::json) as i(room uuid, "user" text, seq bigint)
    order by room, "user", seq desc),
 room as (select r.id, r.last_seq, i."user", i.seq from input i join chat_rooms r on r.id = i.room),
 marker as (
   insert into delivered_markers (chat_room_id, user_id, seq)
   select id, "user", seq from room where seq between 1 and last_seq order by id, "user"
   on conflict (chat_room_id, user_id) do update set seq = excluded.seq where delivered_markers.seq < excluded.seq
   returning chat_room_id, user_id, seq),
 counts as (select chat_room_id as id, count(*) as n from marker group by chat_room_id),
 numbered as (
   insert into room_change_counters as c (chat_room_id, last_change_seq, last_at_seq)
   select counts.id, counts.n, r.last_seq from counts join chat_rooms r on r.id = counts.id order by counts.id
   on conflict (chat_room_id) do update
     set last_change_seq = c.last_change_seq + excluded.last_change_seq, last_at_seq = greatest(c.last_at_seq, excluded.last_at_seq)
   returning chat_room_id as id, last_change_seq as change_seq, last_at_seq as at_seq),
 stored as (
   select m.chat_room_id as id, n.change_seq - counts.n + row_number() over (partition by m.chat_room_id order by m.user_id) as change_seq, n.at_seq,
          jsonb_build_object('type', 'delivered', 'chat_room', m.chat_room_id, 'user', m.user_id, 'seq', m.seq) as event
     from marker m join numbered n on n.id = m.chat_room_id join counts on counts.id = m.chat_room_id)
 insert into room_changes (chat_room_id, change_seq, at_seq, event)
 select id, change_seq, at_seq, event || jsonb_build_object('change_seq', change_seq) from stored
 returning chat_room_id, change_seq, at_seq, event`;

/**
 * A change takes its number from the room's row in `room_change_counters`, never from
 * `chat_rooms`: that row's lock is held until the change commits, and every send batch of the
 * room needs the `chat_rooms` row, so numbering there made sends wait for each marker's commit.
 *
 * The invariant that replaces "numbered under the sends' lock" (room-feed.ts merges by it):
 * - change seqs are dense per room and commit in order (the counter row is locked to commit);
 * - `at_seq` is a seq committed before the change (the room's last seq in the statement's
 *   snapshot), at least every message the change refers to (an edit or deletion cannot see an
 *   uncommitted message; markRead checks its seq against a committed last seq first), and never
 *   less than an earlier change's (`last_at_seq`).
 * A message committed while a change is in flight may have a seq past the change's `at_seq`: live
 * subscribers can get the two in either order, replay puts the change first. Both are exact,
 * since a resume point names a position in each sequence separately.
 */
const numberChange = (source: string) => `numbered as (
  insert into room_change_counters as c (chat_room_id, last_change_seq, last_at_seq)
  ${source}
  on conflict (chat_room_id) do update
    set last_change_seq = c.last_change_seq + excluded.last_change_seq, last_at_seq = greatest(c.last_at_seq, excluded.last_at_seq)
  returning chat_room_id as id, last_change_seq as change_seq, last_at_seq as at_seq)`;
const storeChange = (event: string) => `insert into room_changes (chat_room_id, change_seq, at_seq, event)
  select id, change_seq, at_seq, ${event} || jsonb_build_object('change_seq', change_seq) from numbered
  returning change_seq, at_seq`;

const RECORD_DELIVERED_MANY = prepared(RECORD_DELIVERED_MANY_SQL);
const READ_AFTER_MANY = prepared(READ_AFTER_MANY_SQL);

export function createRoomChangeLog(): RoomChangeLog {
  return {
    async record(em, roomId, unnumbered) {
      const [row] = await em.execute<Array<{ change_seq: string; at_seq: string }>>(`with ${numberChange('select id, 1, last_seq from chat_rooms where id = ?')} ${storeChange('?::jsonb')}`, [roomId, JSON.stringify(unnumbered)]);
      return { atSeq: Number(row!.at_seq), event: { ...unnumbered, change_seq: Number(row!.change_seq) } as RoomChangeEvent };
    },

    async recordMany(em, roomId, events) {
      if (!events.length) return [];
      const rows = await em.execute<Array<{ change_seq: string; at_seq: string; event: RoomChangeEvent }>>(
        `with ${numberChange('select id, ?::bigint, last_seq from chat_rooms where id = ?')},
         input as (select e.value as event, e.ordinality as i from jsonb_array_elements(?::jsonb) with ordinality e),
         stored as (select id, change_seq - ?::bigint + i as change_seq, at_seq, event from numbered, input)
         insert into room_changes (chat_room_id, change_seq, at_seq, event)
         select id, change_seq, at_seq, event || jsonb_build_object('change_seq', change_seq) from stored
         returning change_seq, at_seq, event`,
        [events.length, roomId, JSON.stringify(events), events.length],
      );
      return rows.sort((a, b) => Number(a.change_seq) - Number(b.change_seq)).map((r) => ({ atSeq: Number(r.at_seq), event: r.event }));
    },

    recordRead: (sql, roomId, userId, seq) => recordMarker(sql, 'read', roomId, userId, seq),
    recordDelivered: (sql, roomId, userId, seq) => recordMarker(sql, 'delivered', roomId, userId, seq),

    async recordDeliveredMany(sql, moves) {
      if (!moves.length) return [];
      // Rooms in id order, so two such statements lock their counters in the same order. A room
      // moved for both its users takes two numbers from one counter update.
      const rows = await runPrepared<{ chat_room_id: string; change_seq: string; at_seq: string; event: RoomChangeEvent }>(sql, RECORD_DELIVERED_MANY, [
        JSON.stringify(moves.map((m) => ({ room: m.roomId, user: m.userId, seq: m.seq }))),
      ]);
      return rows
        .sort((a, b) => (a.chat_room_id < b.chat_room_id ? -1 : a.chat_room_id > b.chat_room_id ? 1 : Number(a.change_seq) - Number(b.change_seq)))
        .map((r) => ({ roomId: r.chat_room_id, atSeq: Number(r.at_seq), event: r.event }));
    },

    async readAfterMany(sql, reads) {
      const rows = await runPrepared<{ k: number; at_seq: string; event: RoomChangeEvent }>(sql, READ_AFTER_MANY, [catchUpRanges(reads)]);
      const out: StoredChange[][] = reads.map(() => []);
      for (const row of rows) out[row.k]!.push({ atSeq: Number(row.at_seq), event: row.event });
      return out;
    },
  };
}

/** The two per-user markers; each has its table, and its moves are changes of the same name. */
const MARKER_TABLES = { read: 'read_markers', delivered: 'delivered_markers' } as const;

/**
 * A marker's move in one round trip (it was two: the room's last seq, then the move): marker moves
 * are the most frequent change. The final select sees the marker table as of the statement's
 * start, i.e. the marker before the move, which is the answer when nothing moved. Parameters:
 * room, user, seq.
 */
const markerSql = (kind: keyof typeof MARKER_TABLES, table = MARKER_TABLES[kind]) => `
  with room as (select id, last_seq from chat_rooms where id = $1::uuid),
  marker as (
    insert into ${table} (chat_room_id, user_id, seq)
    select id, $2::text, $3::bigint from room where $3::bigint between 1 and last_seq
    on conflict (chat_room_id, user_id) do update set seq = excluded.seq where ${table}.seq < excluded.seq
    returning seq),
  ${numberChange('select id, 1, last_seq from room where exists (select from marker)')},
  change as (${storeChange(`jsonb_build_object('type', '${kind}', 'chat_room', id, 'user', $2::text, 'seq', (select seq from marker))`)})
  select (select last_seq from room) as last_seq,
         (select seq from ${table} where chat_room_id = $1::uuid and user_id = $2::text) as before,
         (select seq from marker) as advanced, (select change_seq from change) as change_seq, (select at_seq from change) as at_seq`;
const MARKER_MOVES = { read: prepared(markerSql('read')), delivered: prepared(markerSql('delivered')) };

async function recordMarker(sql: Sql, kind: keyof typeof MARKER_TABLES, roomId: string, userId: string, seq: number): Promise<ReadOutcome> {
  const [row] = await runPrepared<{ last_seq: string; before: string | null; advanced: string | null; change_seq: string | null; at_seq: string | null }>(sql, MARKER_MOVES[kind], [roomId, userId, seq]);
  const lastSeq = Number(row?.last_seq ?? 0);
  if (row?.advanced == null) return { lastSeq, marker: Number(row?.before ?? 0) };
  const marker = Number(row.advanced);
  const event: RoomChangeEvent = { type: kind, chat_room: roomId, user: userId, seq: marker, change_seq: Number(row.change_seq) };
  return { lastSeq, marker, stored: { atSeq: Number(row.at_seq), event } };
}
