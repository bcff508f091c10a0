import type { EntityManager } from '@mikro-orm/postgresql';
import { prepared, runPrepared, type Sql } from '../infra/db/prepared.ts';
import { isPending } from './attach-sql.ts';
import { MESSAGE_COLUMNS, messageFromRow, type MessageRow } from '../messages/message-store.ts';
import type { Message } from '../../contracts/index.ts';

// The one owner of `attachments` rows (see the migration for their life cycle).

export interface AttachmentRow {
  id: string;
  chat_room_id: string;
  uploader_id: string;
  message_id: string | null;
  name: string;
  content_type: string;
  size: string | number;
  status: 'pending' | 'ready' | 'deleting';
  /** Its bytes passed a send's checks as they arrived and are at its file key (see `arrived`). */
  upload_checked: boolean;
}

const COLUMNS = 'id, chat_room_id, uploader_id, message_id, name, content_type, size, status, upload_checked';

/** Where each of an attachment's objects lives; the domain's keys, whatever the backend. */
export const keysOf = (id: string) => ({ upload: `uploads/${id}`, file: `files/${id}`, thumb: `thumbs/${id}` });
/** The attachment an upload key is of, if it is one. */
export const idOfUploadKey = (key: string) => (key.startsWith('uploads/') ? key.slice('uploads/'.length) : undefined);

const INSERT_PENDING = prepared('insert into attachments (id, chat_room_id, uploader_id, name, content_type, size) values ($1::uuid, $2::uuid, $3::text, $4::text, $5::text, $6::bigint)');
export const FIND_MANY_SQL = `select ${COLUMNS} from attachments where id = any($1::uuid[])`;
const FIND_MANY = prepared(FIND_MANY_SQL);
export const ARRIVED_SQL = `update attachments set upload_checked = true where id = $1::uuid and ${isPending()}`;
const ARRIVED = prepared(ARRIVED_SQL);

export function createAttachmentStore() {
  return {
    async insertPending(sql: Sql, a: { id: string; roomId: string; uploader: string; name: string; contentType: string; size: number }) {
      await runPrepared(sql, INSERT_PENDING, [a.id, a.roomId, a.uploader, a.name, a.contentType, a.size]);
    },

    /** Its upload passed a send's checks on arrival and is at its file key, put there by that upload. */
    async arrived(sql: Sql, id: string) {
      await runPrepared(sql, ARRIVED, [id]);
    },

    /** By name, like the send statement it precedes. */
    findMany: (sql: Sql, ids: readonly string[]): Promise<AttachmentRow[]> => runPrepared<AttachmentRow>(sql, FIND_MANY, [ids]),

    /** A ready attachment and the message it belongs to (for fresh URLs), if both are there. */
    async findReady(sql: Sql, id: string): Promise<{ roomId: string; message: Message } | undefined> {
      const [row] = await sql.execute<Array<MessageRow & { room: string }>>(
        `select a.chat_room_id as room, m.* from attachments a join lateral (select ${MESSAGE_COLUMNS} from messages where id = a.message_id) m on true
          where a.id = ? and a.status = 'ready'`,
        [id],
      );
      return row && { roomId: row.room, message: messageFromRow(row) };
    },

    /** A deleted message's attachments go to the deletion job, in the deletion's transaction. */
    async releaseMessage(tx: EntityManager, messageId: string) {
      await tx.execute("update attachments set status = 'deleting', next_try_at = now(), attempts = 0 where message_id = ? and status <> 'deleting'", [messageId]);
    },

    /** Pending uploads older than `ageSeconds` go to the deletion job. */
    async sweepPending(sql: Sql, ageSeconds: number): Promise<number> {
      const rows = await sql.execute<Array<{ id: string }>>(
        `update attachments set status = 'deleting', next_try_at = now(), attempts = 0
          where status = 'pending' and created_at <= now() - make_interval(secs => ?) returning id`,
        [ageSeconds],
      );
      return rows.length;
    },

    /**
     * Up to `limit` attachments due for `job`, leased for `leaseSeconds`: another instance skips
     * them meanwhile, and if this one dies they come due again.
     */
    async claim(sql: Sql, job: 'delete' | 'thumbnail', limit: number, leaseSeconds: number): Promise<Array<AttachmentRow & { attempts: number }>> {
      const due = job === 'delete' ? "status = 'deleting'" : "thumb_state = 'pending' and status = 'ready'";
      return sql.execute(
        `update attachments a set next_try_at = now() + make_interval(secs => ?)
           from (select id from attachments where ${due} and next_try_at <= now() order by next_try_at limit ? for update skip locked) due
          where a.id = due.id
          returning a.id, a.chat_room_id, a.uploader_id, a.message_id, a.name, a.content_type, a.size, a.status, a.attempts`,
        [leaseSeconds, limit],
      );
    },

    async deleteRow(sql: Sql, id: string) {
      await sql.execute("delete from attachments where id = ? and status = 'deleting'", [id]);
    },

    /** A failed job is tried again after a backoff that doubles up to an hour; `give up`: the thumbnail is not tried again. */
    async retryLater(sql: Sql, id: string, job: 'delete' | 'thumbnail', giveUp: boolean) {
      if (job === 'thumbnail' && giveUp) {
        await sql.execute("update attachments set thumb_state = 'failed' where id = ?", [id]);
        return;
      }
      await sql.execute('update attachments set attempts = attempts + 1, next_try_at = now() + make_interval(secs => least(3600, 5 * power(2, attempts))) where id = ?', [id]);
    },

    /**
     * The thumbnail is made: the attachment says so, and so does its message (its `attachments`
     * item gains the dimensions and `thumb`), unless it was deleted meanwhile. Returns the message.
     */
    async thumbnailDone(tx: EntityManager, id: string, patch: { width?: number; height?: number }): Promise<{ roomId: string; message: Message } | undefined> {
      const [a] = await tx.execute<Array<{ message_id: string; chat_room_id: string }>>(
        "update attachments set thumb_state = 'done' where id = ? and thumb_state = 'pending' and status = 'ready' returning message_id, chat_room_id",
        [id],
      );
      if (!a) return undefined;
      const [row] = await tx.execute<MessageRow[]>(
        `update messages set attachments = (
            select jsonb_agg(case when e->>'id' = ? then e || ?::jsonb else e end order by n)
              from jsonb_array_elements(attachments) with ordinality as t(e, n))
          where id = ? and deleted_at is null and attachments is not null
          returning ${MESSAGE_COLUMNS}`,
        [id, JSON.stringify({ ...patch, thumb: true }), a.message_id],
      );
      return row && { roomId: a.chat_room_id, message: messageFromRow(row) };
    },
  };
}

export type AttachmentStore = ReturnType<typeof createAttachmentStore>;
