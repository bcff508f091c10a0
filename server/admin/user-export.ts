import type { ExportLine } from '../../contracts/index.ts';
import { messageFromRow, MESSAGE_COLUMNS, type MessageRow, type Sql } from '../messages/message-store.ts';
import { banFromRow } from './bans.service.ts';
import { ADMIN_REPORT_COLUMNS, adminReportFromRow } from './moderation.ts';

/** Rows read per statement: the export holds at most one page at a time, whatever the user's history. */
export const EXPORT_PAGE_SIZE = 500;

const iso = (t: Date | string) => new Date(t).toISOString();

/**
 * Everything involving a user, one {@link ExportLine} at a time: the user (and any ban), each of
 * their rooms followed by its messages and read markers, the blocks they made or received, the
 * reports they filed or that name them. Read in keyset pages of `pageSize` rows as the consumer
 * pulls, so memory is bounded by a page, not by the history. Not one snapshot: a message sent
 * while the export runs may or may not be in it.
 */
export async function* exportUser(sql: Sql, userId: string, pageSize = EXPORT_PAGE_SIZE): AsyncGenerator<ExportLine> {
  const [user] = await sql.execute<Array<{ id: string; created_at: Date; last_seen_at: Date | null }>>('select id, created_at, last_seen_at from users where id = ?', [userId]);
  const [ban] = await sql.execute<Parameters<typeof banFromRow>[0][]>('select user_id, banned_at, until, reason, banned_by from user_bans where user_id = ?', [userId]);
  if (user) yield { type: 'user', id: user.id, created_at: iso(user.created_at), last_seen_at: user.last_seen_at && iso(user.last_seen_at), ban: ban ? banFromRow(ban) : null };

  let roomCursor = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rooms = await sql.execute<Array<{ id: string; participant1_id: string; participant2_id: string; name: string | null; created_at: Date; last_seq: string }>>(
      `select id, participant1_id, participant2_id, name, created_at, last_seq from chat_rooms
        where (participant1_id = ? or participant2_id = ?) and id > ? order by id limit ?`,
      [userId, userId, roomCursor, pageSize],
    );
    for (const room of rooms) {
      yield { type: 'room', id: room.id, participant1: room.participant1_id, participant2: room.participant2_id, name: room.name, created_at: iso(room.created_at), last_seq: Number(room.last_seq) };
      for (let after = 0; ; ) {
        const messages = await sql.execute<MessageRow[]>(`select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and seq > ? order by seq limit ?`, [room.id, after, pageSize]);
        for (const row of messages) yield { type: 'message', ...messageFromRow(row) };
        if (messages.length < pageSize) break;
        after = Number(messages.at(-1)!.seq);
      }
      const markers = await sql.execute<Array<{ user_id: string; seq: string }>>('select user_id, seq from read_markers where chat_room_id = ? order by user_id', [room.id]);
      for (const m of markers) yield { type: 'read_marker', chat_room: room.id, user: m.user_id, seq: Number(m.seq) };
    }
    if (rooms.length < pageSize) break;
    roomCursor = rooms.at(-1)!.id;
  }

  for (let cursor: [string, string] = ['', '']; ; ) {
    const blocks = await sql.execute<Array<{ blocker_id: string; blocked_id: string; created_at: Date }>>(
      `select blocker_id, blocked_id, created_at from user_blocks where (blocker_id = ? or blocked_id = ?) and (blocker_id, blocked_id) > (?, ?)
        order by blocker_id, blocked_id limit ?`,
      [userId, userId, ...cursor, pageSize],
    );
    for (const b of blocks) yield { type: 'block', blocker: b.blocker_id, blocked: b.blocked_id, created_at: iso(b.created_at) };
    if (blocks.length < pageSize) break;
    cursor = [blocks.at(-1)!.blocker_id, blocks.at(-1)!.blocked_id];
  }

  for (let cursor = '00000000-0000-0000-0000-000000000000'; ; ) {
    const reports = await sql.execute<Parameters<typeof adminReportFromRow>[0][]>(
      `select ${ADMIN_REPORT_COLUMNS} from reports where (reporter_id = ? or reported_user_id = ?) and id > ? order by id limit ?`,
      [userId, userId, cursor, pageSize],
    );
    for (const r of reports) yield { type: 'report', report: adminReportFromRow(r) };
    if (reports.length < pageSize) break;
    cursor = reports.at(-1)!.id;
  }
}
