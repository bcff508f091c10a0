import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { prepared, runPrepared, type Sql } from '../infra/db/prepared.ts';
import { ParleyError, type Message } from '../../contracts/index.ts';
import { roomOpenForSends } from '../safety/block-sql.ts';
import { attachOneSql, attachStoredSql } from '../attachments/attach-sql.ts';

// The one owner of `messages` rows: their columns, their mapping to the wire, the statement that
// stores them and the reads of history and replay. A new column changes this file and a migration.

/** A `messages` row as raw SQL returns it: bigint arrives as a string, timestamps as epoch milliseconds (see {@link epochMs}). */
export interface MessageRow {
  id: string;
  chat_room_id: string;
  sender_id: string;
  content: string;
  created_at: string | number;
  seq: string | number;
  edited_at?: string | number | null;
  deleted_at?: string | number | null;
  attachments?: StoredAttachment[] | null;
}

/** A message's file as `messages.attachments` keeps it; URLs are signed when it is read (server/attachments/). */
export interface StoredAttachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  width?: number;
  height?: number;
  /** Whether a thumbnail was made. */
  thumb?: boolean;
}

/**
 * A timestamp leaves PostgreSQL as whole epoch milliseconds (truncated, like the wire's ISO
 * string): `to_char` per timestamp took more of PostgreSQL's time than finding and sending the
 * rows (a 100-message page: 2,400 against 5,200 pages/s with pgbench), and letting the driver
 * parse timestamp text into a Date, only to format it again, dominated Node's share of a read.
 */
const epochMs = (column: string) => `floor(extract(epoch from ${column}) * 1000)::bigint`;
export const MESSAGE_COLUMNS = `id, chat_room_id, sender_id, content, ${epochMs('created_at')} as created_at, seq, ${epochMs('edited_at')} as edited_at, ${epochMs('deleted_at')} as deleted_at, attachments`;

const iso = (ms: string | number) => new Date(Number(ms)).toISOString();

export function messageFromRow(row: MessageRow): Message {
  return {
    id: row.id,
    chat_room: row.chat_room_id,
    sender: row.sender_id,
    content: row.content,
    created_at: iso(row.created_at),
    seq: Number(row.seq),
    // Absent rather than null: a message never edited or deleted keeps the original shape.
    ...(row.edited_at != null && { edited_at: iso(row.edited_at) }),
    ...(row.deleted_at != null && { deleted_at: iso(row.deleted_at) }),
    // Unsigned: `url` is filled in by whoever hands the message to a reader.
    ...(row.attachments != null && { attachments: row.attachments.map((a) => ({ ...a, url: '' })) }),
  };
}

/** Runs raw SQL: the connection itself, since these statements need no EntityManager (nor its per-request fork). */
export type { Sql } from '../infra/db/prepared.ts';

/** A message to store; the caller has checked that `sender` is in `roomId`. */
export interface NewMessage {
  roomId: string;
  sender: string;
  content: string;
  clientId?: string | undefined;
  /** Attachments to attach, as the caller sent them. */
  attachmentIds?: string[] | undefined;
  /** The same, checked and described (see MessageService.send); such sends are stored by {@link MessageStore.insertWithAttachments}. */
  attachments?: StoredAttachment[] | undefined;
}

/** How {@link storeMessagesSql} ends for text-only sends. */
const STORE = `
  insert into messages (id, chat_room_id, sender_id, content, seq, client_id)
  select b.id, b.room_id, b.sender_id, b.content,
         rooms.last_seq - rooms.n + row_number() over (partition by b.room_id order by b.ord), b.client_id
    from batch b join rooms on rooms.id = b.room_id`;

/**
 * The same with attachments, marked in the same statement (see attachments/attach-sql.ts). A
 * message with one taken meanwhile gets no seq: the not-null check fails the whole statement, so
 * nothing is stored or marked.
 */
const STORE_AND_ATTACH = `,
  stored as (
    select b.*, rooms.last_seq - rooms.n + row_number() over (partition by b.room_id order by b.ord) as seq
      from batch b join rooms on rooms.id = b.room_id),
  attached as (${attachStoredSql('stored')})
  insert into messages (id, chat_room_id, sender_id, content, seq, client_id, attachments)
  select s.id, s.room_id, s.sender_id, s.content,
         case when (select count(*) from attached t where t.message_id = s.id) = jsonb_array_length(s.attachments) then s.seq end,
         s.client_id, s.attachments
    from stored s`;

/**
 * Stores any number of messages, over any rooms, in one statement: each room takes one seq range
 * from its row (the row lock orders concurrent statements, so seqs are dense and commit in order)
 * and the messages go in as one multi-row insert, numbered in input order within their room. A
 * send whose clientId is already stored, or repeated earlier in the input, is left out instead of
 * failing the statement; its caller reads the first one with {@link MessageStore.findByClientId}.
 * A room whose participants are blocked (either way) takes no seq and stores nothing: its sends
 * are left out too, and the caller asks why.
 * Parameter `$1` is a JSON array of `{id, room_id, sender_id, content, client_id, ord}`.
 */
const storeMessagesSql = (attachments: boolean) => `
  with input as (
    select * from json_to_recordset($1::json)
      as b(id uuid, room_id uuid, sender_id text, content text, client_id text, ord int${attachments ? ', attachments jsonb' : ''})),
  batch as (
    select i.* from input i
     where i.client_id is null
        or (not exists (select 1 from messages m
                         where m.chat_room_id = i.room_id and m.sender_id = i.sender_id and m.client_id = i.client_id)
            and i.ord = (select min(j.ord) from input j
                          where j.room_id = i.room_id and j.sender_id = i.sender_id and j.client_id = i.client_id))),
  counts as (select room_id, count(*) as n from batch group by room_id),
  rooms as (
    update chat_rooms r set last_seq = r.last_seq + counts.n, last_message_at = now()
      from counts where r.id = counts.room_id and ${roomOpenForSends('r')}
    returning r.id, r.last_seq, counts.n)${attachments ? STORE_AND_ATTACH : STORE}
  returning ${MESSAGE_COLUMNS}`;
export const STORE_MESSAGES_SQL = storeMessagesSql(false);
/**
 * {@link STORE_MESSAGES_SQL} for sends with attachments: each row of `$1` also has `attachments`,
 * and the same statement marks them used (see attachments/attach-sql.ts), or fails as a whole.
 */
export const STORE_MESSAGES_WITH_ATTACHMENTS_SQL = storeMessagesSql(true);

/** How PostgreSQL says that a send with attachments found one taken (see {@link STORE_MESSAGES_WITH_ATTACHMENTS_SQL}). */
const attachmentTaken = (err: unknown) => {
  const e = err as { code?: string; table?: string; column?: string };
  return e.code === '23502' && e.table === 'messages' && e.column === 'seq';
};

/**
 * A lone send without clientId (most sends under light load): the same effect as
 * {@link STORE_MESSAGES_SQL} for one message, without unpacking JSON and grouping, which cost
 * about 0.4 ms a send on this machine. Parameters: `$1` room, `$2` new id, `$3` sender, `$4` content.
 */
/** The room (`$1`) of a lone send takes the next seq, unless the send is refused: `room` then has no row. */
const LONE_SEND_ROOM = `
  with room as (
    update chat_rooms r set last_seq = r.last_seq + 1, last_message_at = now() where r.id = $1 and ${roomOpenForSends('r')}
    returning r.id, r.last_seq)`;

export const STORE_ONE_MESSAGE_SQL = `${LONE_SEND_ROOM}
  insert into messages (id, chat_room_id, sender_id, content, seq)
  select $2, room.id, $3, $4, room.last_seq from room
  returning ${MESSAGE_COLUMNS}`;

/**
 * {@link STORE_ONE_MESSAGE_SQL} with attachments, marked in the same statement (see
 * attachments/attach-sql.ts): a lone send with attachments would otherwise unpack JSON as a batch
 * does, 0.38 ms of PostgreSQL's CPU against 0.28. As the batch statement, it fails as a whole when
 * one was taken meanwhile. Parameters: those of {@link STORE_ONE_MESSAGE_SQL}, `$5` the stored
 * attachments (JSON), `$6` their ids.
 */
export const STORE_ONE_WITH_ATTACHMENTS_SQL = `${LONE_SEND_ROOM},
  attached as (${attachOneSql('room')})
  insert into messages (id, chat_room_id, sender_id, content, seq, attachments)
  select $2, room.id, $3, $4, case when (select count(*) from attached) = cardinality($6::uuid[]) then room.last_seq end, $5::jsonb from room
  returning ${MESSAGE_COLUMNS}`;

/** The one send of `messages` when it can take a lone send's statement (no clientId to look for), else undefined. */
const loneSend = (messages: readonly NewMessage[]) => (messages.length === 1 && messages[0]!.clientId === undefined ? messages[0] : undefined);

const STORE_ONE = prepared(STORE_ONE_MESSAGE_SQL);
const STORE_ONE_WITH_ATTACHMENTS = prepared(STORE_ONE_WITH_ATTACHMENTS_SQL);
const STORE_MANY = prepared(STORE_MESSAGES_SQL);
const STORE_MANY_WITH_ATTACHMENTS = prepared(STORE_MESSAGES_WITH_ATTACHMENTS_SQL);

/** The `$1` of {@link STORE_MESSAGES_SQL}, with fresh ids in input order. */
export function storeMessagesParam(messages: readonly NewMessage[]) {
  const rows = messages.map((m, i) => ({ id: randomUUID(), room_id: m.roomId, sender_id: m.sender, content: m.content, client_id: m.clientId ?? null, ord: i + 1, ...(m.attachments && { attachments: m.attachments }) }));
  return { ids: rows.map((r) => r.id), json: JSON.stringify(rows) };
}

export interface PageRequest {
  roomId: string;
  direction: 'forward' | 'backward';
  cursor: number | null;
  limit: number;
}
export interface StoredPage {
  messages: Message[];
  changeSeq: number;
}

/** The seq range a page reads, closed on both sides (see readPages). */
function rangeOf({ direction, cursor }: PageRequest): [number, number] {
  return direction === 'forward' ? [cursor ?? 0, Number.MAX_SAFE_INTEGER] : [0, cursor ?? Number.MAX_SAFE_INTEGER];
}

/**
 * Pages in one statement (see {@link MessageStore.readPages}): each request's range is read by its
 * own index scan, in its direction, and rows come back grouped by request, oldest first. The range
 * is closed on both sides: with an open one, and statistics not yet updated after a bulk load,
 * PostgreSQL read every later row of the room and sorted it, per page (a 100,000-message history
 * took 7 s instead of 0.7 s in the bench). Each request's room and counter are looked up by key (the
 * `limit` keeps the lateral from being flattened into a join): joined, the planner expected a
 * hundred requests from the JSON and read every room.
 */
export const READ_PAGES_SQL = `
  select i.k, coalesce((select c.last_change_seq from room_change_counters c where c.chat_room_id = r.id), 0) as room_change, m.*
    from json_to_recordset(?::json) as i(k int, room uuid, lo bigint, hi bigint, lim int, back boolean)
    cross join lateral (select id from chat_rooms where id = i.room limit 1) r
    left join lateral (
      (select ${MESSAGE_COLUMNS} from messages
        where not i.back and chat_room_id = r.id and seq > i.lo and seq <= i.hi order by seq asc limit i.lim)
      union all
      (select ${MESSAGE_COLUMNS} from messages
        where i.back and chat_room_id = r.id and seq >= i.lo and seq < i.hi order by seq desc limit i.lim)) m on true
   order by i.k, m.seq`;

/** What a feed's catch-up asks for: messages (or changes) with `after < seq <= upTo`, at most `limit`. */
export interface CatchUpRead {
  roomId: string;
  after: number;
  limit: number;
  upTo?: number | undefined;
}

/** The same read asked twice in one turn is read once. */
export const catchUpKey = (r: CatchUpRead) => `${r.roomId} ${r.after} ${r.limit} ${r.upTo}`;

/** Catch-up reads as the batched statements take them: `json_to_recordset(…) as i(k int, room uuid, lo bigint, hi bigint, lim int)`. */
export const catchUpRanges = (reads: readonly CatchUpRead[]) =>
  JSON.stringify(reads.map((r, k) => ({ k, room: r.roomId, lo: r.after, hi: r.upTo ?? Number.MAX_SAFE_INTEGER, lim: r.limit })));

/** {@link MessageStore.readAfterMany}: each request's range by its own index scan, rows grouped by request, oldest first. */
export const READ_AFTER_MANY_SQL = `
  select i.k, m.*
    from json_to_recordset(?::json) as i(k int, room uuid, lo bigint, hi bigint, lim int)
    cross join lateral (
      select ${MESSAGE_COLUMNS} from messages
       where chat_room_id = i.room and seq > i.lo and seq <= i.hi order by seq limit i.lim) m
   order by i.k, m.seq`;

export interface MessageStore {
  /** Stores the messages (one statement); each result is the stored message, or undefined when left out (a retry, or a blocked room). */
  insert(sql: Sql, messages: readonly NewMessage[]): Promise<Array<Message | undefined>>;
  /**
   * {@link insert} for sends with attachments, in one statement that also marks them used by their
   * messages; throws INVALID_INPUT, storing nothing, if one of them was taken meanwhile.
   */
  insertWithAttachments(sql: Sql, messages: readonly NewMessage[]): Promise<Array<Message | undefined>>;
  findByClientId(sql: Sql, roomId: string, sender: string, clientId: string): Promise<Message | undefined>;
  /** Messages with `after < seq <= upTo`, oldest first. Callers check participation first. */
  readAfter(sql: Sql, roomId: string, after: number, limit: number, upTo?: number): Promise<Message[]>;
  /** {@link readAfter} for many feeds in one statement (a reconnect storm resumes thousands at once); one result per request, in order. */
  readAfterMany(sql: Sql, reads: readonly CatchUpRead[]): Promise<Message[][]>;
  /**
   * Pages of any rooms in one statement, one result per request in its order: `limit` messages
   * after `cursor` (forward) or before it (backward; null = from the newest), oldest first, each
   * with its room's change seq read in the same snapshot.
   */
  readPages(sql: Sql, pages: readonly PageRequest[]): Promise<StoredPage[]>;
  findInRoom(sql: Sql, roomId: string, messageId: string): Promise<Message | undefined>;
  /** Replaces the content of a message that is not deleted; undefined if it was deleted meanwhile. Run it in the change's transaction. */
  edit(tx: EntityManager, roomId: string, messageId: string, content: string): Promise<Message | undefined>;
  /** Empties a message and stamps `deleted_at`; its seq stays. Undefined if it was deleted already. Run it in the change's transaction. */
  softDelete(tx: EntityManager, roomId: string, messageId: string): Promise<Message | undefined>;
  /**
   * Empties messages whether or not they were deleted already (`fresh`: they were not); their
   * seqs stay. Either one message, or every message of `sender` in the room, whose sender then
   * becomes `renameTo` (which must be a stored user). Run it in the change's transaction.
   */
  redact(tx: EntityManager, roomId: string, which: { messageId: string } | { sender: string; renameTo: string }): Promise<Array<{ message: Message; fresh: boolean }>>;
}

const READ_PAGES = prepared(READ_PAGES_SQL);
const READ_AFTER_MANY = prepared(READ_AFTER_MANY_SQL);

// Plain rows, not entities: history and replays read many messages and never modify them.
export function createMessageStore(): MessageStore {
  return {
    async insert(sql, messages) {
      const only = loneSend(messages);
      if (only) {
        const rows = await runPrepared<MessageRow>(sql, STORE_ONE, [only.roomId, randomUUID(), only.sender, only.content]);
        return [rows[0] && messageFromRow(rows[0])];
      }
      const { ids, json } = storeMessagesParam(messages);
      const rows = await runPrepared<MessageRow>(sql, STORE_MANY, [json]);
      const stored = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => {
        const row = stored.get(id);
        return row && messageFromRow(row);
      });
    },

    async insertWithAttachments(sql, messages) {
      const taken = (err: unknown) => {
        if (!attachmentTaken(err)) throw err;
        // Of a batch, the coalescer then tries each send alone: the one whose attachment was taken fails alone.
        const message = 'An attachment was attached to another message meanwhile.';
        throw new ParleyError('INVALID_INPUT', message, { fields: { attachmentIds: [message] } });
      };
      const only = loneSend(messages);
      if (only) {
        const attachments = only.attachments ?? [];
        const params = [only.roomId, randomUUID(), only.sender, only.content, JSON.stringify(attachments), attachments.map((a) => a.id)];
        const rows = await runPrepared<MessageRow>(sql, STORE_ONE_WITH_ATTACHMENTS, params).catch(taken);
        return [rows[0] && messageFromRow(rows[0])];
      }
      const { ids, json } = storeMessagesParam(messages);
      const rows = await runPrepared<MessageRow>(sql, STORE_MANY_WITH_ATTACHMENTS, [json]).catch(taken);
      const stored = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => {
        const row = stored.get(id);
        return row && messageFromRow(row);
      });
    },

    async findByClientId(sql, roomId, sender, clientId) {
      const [row] = await sql.execute<MessageRow[]>(`select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and sender_id = ? and client_id = ?`, [roomId, sender, clientId]);
      return row && messageFromRow(row);
    },

    async readAfter(sql, roomId, after, limit, upTo) {
      const rows = await sql.execute<MessageRow[]>(
        `select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and seq > ? and seq <= ? order by seq limit ?`,
        [roomId, after, upTo ?? Number.MAX_SAFE_INTEGER, limit],
      );
      return rows.map(messageFromRow);
    },

    async readAfterMany(sql, reads) {
      const rows = await runPrepared<MessageRow & { k: number }>(sql, READ_AFTER_MANY, [catchUpRanges(reads)]);
      const out: Message[][] = reads.map(() => []);
      for (const row of rows) out[row.k]!.push(messageFromRow(row));
      return out;
    },

    async readPages(sql, pages) {
      const input = pages.map((page, k) => {
        const [lo, hi] = rangeOf(page);
        return { k, room: page.roomId, lo, hi, lim: page.limit, back: page.direction === 'backward' };
      });
      const rows = await runPrepared<Partial<MessageRow> & { k: number; room_change: string }>(sql, READ_PAGES, [JSON.stringify(input)]);
      const out: StoredPage[] = pages.map(() => ({ messages: [], changeSeq: 0 }));
      for (const row of rows) {
        const page = out[row.k]!;
        page.changeSeq = Number(row.room_change);
        if (row.id != null) page.messages.push(messageFromRow(row as MessageRow));
      }
      return out;
    },

    async findInRoom(sql, roomId, messageId) {
      const [row] = await sql.execute<MessageRow[]>(`select ${MESSAGE_COLUMNS} from messages where id = ? and chat_room_id = ?`, [messageId, roomId]);
      return row && messageFromRow(row);
    },

    async edit(tx, roomId, messageId, content) {
      const [row] = await tx.execute<MessageRow[]>(
        `update messages set content = ?, edited_at = now() where id = ? and chat_room_id = ? and deleted_at is null returning ${MESSAGE_COLUMNS}`,
        [content, messageId, roomId],
      );
      return row && messageFromRow(row);
    },

    async softDelete(tx, roomId, messageId) {
      const [row] = await tx.execute<MessageRow[]>(
        `update messages set content = '', attachments = null, deleted_at = now() where id = ? and chat_room_id = ? and deleted_at is null returning ${MESSAGE_COLUMNS}`,
        [messageId, roomId],
      );
      return row && messageFromRow(row);
    },

    async redact(tx, roomId, which) {
      const byId = 'messageId' in which;
      // The client id goes too: it was the sender's, and it is no use to a tombstone.
      const rows = await tx.execute<Array<MessageRow & { fresh: boolean }>>(
        `with old as (
           select id as old_id, deleted_at is null as fresh from messages
            where chat_room_id = ? and ${byId ? 'id = ?' : 'sender_id = ?'} for update)
         update messages set content = '', attachments = null, deleted_at = coalesce(deleted_at, now()), client_id = null${byId ? '' : ', sender_id = ?'}
           from old where id = old.old_id
         returning ${MESSAGE_COLUMNS}, old.fresh`,
        byId ? [roomId, which.messageId] : [roomId, which.sender, which.renameTo],
      );
      return rows.map((row) => ({ message: messageFromRow(row), fresh: row.fresh }));
    },
  };
}
