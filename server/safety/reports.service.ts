import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type Message, type Report, type ReportReason, type ReportStatus } from '../../contracts/index.ts';
import type { MessageStore, Sql } from '../messages/message-store.ts';

export interface NewReport {
  roomId: string;
  /** The room's participants, as the caller's participation was checked with. */
  participants: readonly [string, string];
  reporter: string;
  messageId?: string | undefined;
  reason: ReportReason;
  note?: string | undefined;
}

export interface ReportService {
  /**
   * Stores a report of a message (with a snapshot of it as it is now) or of the conversation.
   * One per reporter and message, one per reporter and conversation: a repeat answers the first
   * report unchanged.
   */
  create(em: EntityManager, report: NewReport): Promise<Report>;
}

export interface ReportRow {
  id: string;
  chat_room_id: string;
  message_id: string | null;
  reported_user_id: string;
  reason: ReportReason;
  note: string | null;
  status: ReportStatus;
  created_at: Date | string;
  message_snapshot: Message | string | null;
}

export const REPORT_COLUMNS = 'id, chat_room_id, message_id, reported_user_id, reason, note, status, created_at, message_snapshot';

export function reportFromRow(r: ReportRow): Report {
  return {
    id: r.id,
    chat_room: r.chat_room_id,
    message_id: r.message_id,
    reported_user: r.reported_user_id,
    reason: r.reason,
    note: r.note,
    status: r.status,
    created_at: new Date(r.created_at).toISOString(),
    message: typeof r.message_snapshot === 'string' ? (JSON.parse(r.message_snapshot) as Message) : r.message_snapshot,
  };
}

/**
 * Reports keep their evidence: the reported message is copied into the report as the reporter
 * sees it, so a later edit or deletion by its sender changes the message, not the report.
 */
export function createReportService({ store, sql }: { store: MessageStore; sql: Sql }): ReportService {
  return {
    async create(em, { roomId, participants, reporter, messageId, reason, note }) {
      let snapshot: Message | null = null;
      let reported = participants[0] === reporter ? participants[1] : participants[0];
      if (messageId !== undefined) {
        snapshot = (await store.findInRoom(sql, roomId, messageId)) ?? null;
        if (!snapshot) throw new ParleyError('MESSAGE_NOT_FOUND', 'No such message in this room.');
        reported = snapshot.sender;
      }
      // The unique indexes make a repeat a no-op; the first report is then read back.
      const [inserted] = await em.execute<ReportRow[]>(
        `insert into reports (id, reporter_id, chat_room_id, message_id, reported_user_id, reason, note, message_snapshot)
         values (?, ?, ?, ?, ?, ?, ?, ?::jsonb) on conflict do nothing returning ${REPORT_COLUMNS}`,
        [randomUUID(), reporter, roomId, messageId ?? null, reported, reason, note ?? null, snapshot && JSON.stringify(snapshot)],
      );
      if (inserted) return reportFromRow(inserted);
      const [first] = await em.execute<ReportRow[]>(
        `select ${REPORT_COLUMNS} from reports where reporter_id = ? and ${messageId === undefined ? 'chat_room_id = ? and message_id is null' : 'message_id = ?'}`,
        [reporter, messageId ?? roomId],
      );
      if (!first) throw new ParleyError('INTERNAL', 'A report was neither stored nor found.');
      return reportFromRow(first);
    },
  };
}
