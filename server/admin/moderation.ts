import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type AdminReport, type Ban, type Erased, type Message, type ReportAction, type ReportPage, type RoomChangeEvent, type Unbanned } from '../../contracts/index.ts';
import type { MessageChangeService } from '../messages/message-changes.service.ts';
import type { Sql } from '../messages/message-store.ts';
import { inJsonKeys } from '../infra/db/json-keys.ts';
import { REPORT_COLUMNS, reportFromRow, type ReportRow } from '../safety/reports.service.ts';
import type { BlockView } from '../safety/block-view.ts';
import type { AuditLog } from './audit.ts';
import type { BanService } from './bans.service.ts';

/** What moderators do. Each action is written to the audit log once it has succeeded. */
export interface Moderation {
  listReports(sql: Sql, page: { status?: AdminReport['status'] | undefined; cursor?: string | undefined; limit: number }): Promise<ReportPage>;
  resolveReport(em: EntityManager, actor: string, input: { reportId: string; action: ReportAction; note?: string | undefined }): Promise<AdminReport>;
  ban(em: EntityManager, actor: string, input: { userId: string; until?: string | undefined; reason: string }): Promise<Ban>;
  unban(em: EntityManager, actor: string, userId: string): Promise<Unbanned>;
  deleteMessage(em: EntityManager, actor: string, messageId: string): Promise<Message>;
  erase(em: EntityManager, actor: string, userId: string): Promise<Erased>;
}

type AdminReportRow = ReportRow & { reporter_id: string; resolved_at: Date | string | null; resolved_by: string | null; resolution_action: ReportAction | null; resolution_note: string | null };
const ADMIN_REPORT_COLUMNS = `${REPORT_COLUMNS}, reporter_id, resolved_at, resolved_by, resolution_action, resolution_note`;

export function adminReportFromRow(r: AdminReportRow): AdminReport {
  return {
    ...reportFromRow(r),
    reporter: r.reporter_id,
    resolved_at: r.resolved_at === null ? null : new Date(r.resolved_at).toISOString(),
    resolved_by: r.resolved_by,
    resolution_action: r.resolution_action,
    resolution_note: r.resolution_note,
  };
}
export { ADMIN_REPORT_COLUMNS };

export interface ModerationDeps {
  bans: BanService;
  audit: AuditLog;
  changes: MessageChangeService;
  blocks: BlockView;
  /** Every instance's ban view learns of an erasure through this (see ban-view.ts). */
  erased(userId: string): Promise<void>;
}

const reportNotFound = () => new ParleyError('NOT_FOUND', 'No such report.');
const reportClosed = () => new ParleyError('REPORT_CLOSED', 'The report was resolved already.');

export function createModeration({ bans, audit, changes, blocks, erased }: ModerationDeps): Moderation {
  /** Removes a message's content everywhere it was kept: the message, its logged edits, the reports' snapshots of it. */
  async function deleteMessage(em: EntityManager, messageId: string) {
    const tombstone = await changes.redact(em, messageId);
    await em.execute(`update reports set message_snapshot = jsonb_set(message_snapshot, '{content}', '""') where message_id = ? and message_snapshot->>'content' <> ''`, [messageId]);
    return tombstone;
  }

  return {
    async listReports(sql, { status, cursor, limit }) {
      // Oldest first, a queue; the cursor is the last report's id, its place read from the table.
      const rows = await sql.execute<AdminReportRow[]>(
        `select ${ADMIN_REPORT_COLUMNS} from reports
          where (?::text is null or status = ?)
            and (?::uuid is null or (created_at, id) > (select created_at, id from reports where id = ?))
          order by created_at, id limit ?`,
        [status ?? null, status ?? null, cursor ?? null, cursor ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map(adminReportFromRow);
      return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
    },

    async resolveReport(em, actor, { reportId, action, note }) {
      const [report] = await em.execute<AdminReportRow[]>(`select ${ADMIN_REPORT_COLUMNS} from reports where id = ?`, [reportId]);
      if (!report) throw reportNotFound();
      if (report.status !== 'open') throw reportClosed();
      const details: Record<string, unknown> = { action, ...(note !== undefined && { note }) };
      if (action === 'delete_message') {
        if (!report.message_id) throw new ParleyError('INVALID_INPUT', 'The report is of a conversation, not of a message.', { fields: { action: ['delete_message needs a report of a message'] } });
        await deleteMessage(em, report.message_id);
        details.message = report.message_id;
      } else if (action === 'ban_user') {
        await bans.ban(em, { userId: report.reported_user_id, reason: note ?? `report ${reportId}: ${report.reason}`, actor });
        details.user = report.reported_user_id;
      }
      const [resolved] = await em.execute<AdminReportRow[]>(
        `update reports set status = ?, resolved_at = now(), resolved_by = ?, resolution_action = ?, resolution_note = ?
          where id = ? and status = 'open' returning ${ADMIN_REPORT_COLUMNS}`,
        [action === 'dismiss' ? 'dismissed' : 'resolved', actor, action, note ?? null, reportId],
      );
      // Another moderator resolved it meanwhile; what this call did is audited all the same.
      await audit.record(em.getConnection(), { actor, action: 'reports.resolve', target_type: 'report', target: reportId, details });
      if (!resolved) throw reportClosed();
      return adminReportFromRow(resolved);
    },

    async ban(em, actor, input) {
      const ban = await bans.ban(em, { ...input, actor });
      await audit.record(em.getConnection(), { actor, action: 'users.ban', target_type: 'user', target: input.userId, details: { reason: input.reason, until: ban.until } });
      return ban;
    },

    async unban(em, actor, userId) {
      const result = await bans.unban(em, userId);
      await audit.record(em.getConnection(), { actor, action: 'users.unban', target_type: 'user', target: userId, details: { unbanned: result.unbanned } });
      return result;
    },

    async deleteMessage(em, actor, messageId) {
      const tombstone = await deleteMessage(em, messageId);
      await audit.record(em.getConnection(), { actor, action: 'messages.delete', target_type: 'message', target: messageId, details: { hard: true, chat_room: tombstone.chat_room } });
      return tombstone;
    },

    async erase(em, actor, userId) {
      const pseudonym = `erased-${randomUUID()}`;
      const outcome = await em.transactional(async (tx) => eraseIn(tx, changes, userId, pseudonym));
      if (outcome) {
        for (const [roomId, events] of outcome.changes) changes.announce(roomId, events);
        for (const other of outcome.unblocked) await blocks.changed(userId, other);
        await erased(userId);
      }
      const result = { pseudonym: outcome ? pseudonym : null, messages: outcome?.messages ?? 0 };
      // The audit names the pseudonym: the log must not keep the id it was asked to forget.
      await audit.record(em.getConnection(), { actor, action: 'users.erase', target_type: 'user', target: result.pseudonym ?? 'nobody', details: { messages: result.messages } });
      return result;
    },
  };
}

/** JSON text of a string, as it appears inside jsonb's text form. */
const JSON_TEXT = (param: string) => `to_jsonb(${param}::text)::text`;

/** Params: the user, the pseudonym (twice each), the user again, a JSON array of their rooms. */
export const RENAME_IN_ROOMS_SQL = `update chat_rooms set participant1_id = case when participant1_id = ? then ? else participant1_id end,
                           participant2_id = case when participant2_id = ? then ? else participant2_id end,
                           name = case when strpos(name, ?) > 0 then null else name end
      where ${inJsonKeys('id', 'uuid')}`;
/**
 * Params: the user, the pseudonym, a JSON array of their rooms, the user. Their rooms' changes are
 * found by the index: as a join, the erasure's transaction read the whole change log, every read
 * marker of every room, while it held the user's rooms.
 */
export const RENAME_IN_CHANGES_SQL = `update room_changes set event = replace(event::text, ${JSON_TEXT('?')}, ${JSON_TEXT('?')})::jsonb
      where ${inJsonKeys('chat_room_id', 'uuid')} and strpos(event::text, ${JSON_TEXT('?')}) > 0`;

/**
 * GDPR erasure, in one transaction. The user's messages become tombstones (content gone, seqs
 * kept, a `message_deleted` change each); their read markers, blocks (either way), bans and
 * presence rows go; everything that remains and named them (rooms, messages, the change log,
 * reports they filed or that were filed about them, the audit log) names a pseudonym instead.
 * Their markers, mutes, push devices, pending deliveries and files go. Reports they filed stay, as evidence about others; the content of their messages kept in report
 * snapshots goes. Undefined when nothing named the user.
 */
async function eraseIn(tx: EntityManager, changes: MessageChangeService, userId: string, pseudonym: string) {
  const [user] = await tx.execute<Array<{ created_at: Date }>>('select created_at from users where id = ? for update', [userId]);
  const [anyBan] = await tx.execute('select 1 from user_bans where user_id = ?', [userId]);
  if (!user && !anyBan) return undefined;
  await tx.execute('delete from user_bans where user_id = ?', [userId]);
  await tx.execute('update ban_epoch set n = n + 1 where id = 1');
  if (!user) return { messages: 0, changes: new Map<string, RoomChangeEvent[]>(), unblocked: [] as string[] };

  await tx.execute('insert into users (id, created_at) values (?, ?)', [pseudonym, user.created_at]);
  const rooms = await tx.execute<Array<{ id: string }>>('select id from chat_rooms where participant1_id = ? or participant2_id = ? for update', [userId, userId]);
  const roomIds = rooms.map((r) => r.id);
  const announced = new Map<string, RoomChangeEvent[]>();
  let messages = 0;
  for (const roomId of roomIds) {
    const { count, changes: events } = await changes.redactSender(tx, { roomId, sender: userId, renameTo: pseudonym });
    messages += count;
    if (events.length) announced.set(roomId, events);
  }
  // A room name is free text either participant chose; one that names the user goes.
  await tx.execute(RENAME_IN_ROOMS_SQL, [userId, pseudonym, userId, pseudonym, userId, JSON.stringify(roomIds)]);
  await tx.execute(RENAME_IN_CHANGES_SQL, [userId, pseudonym, JSON.stringify(roomIds), userId]);
  await tx.execute('delete from read_markers where user_id = ?', [userId]);
  await tx.execute('delete from delivered_markers where user_id = ?', [userId]);
  await tx.execute('delete from room_mutes where user_id = ?', [userId]);
  await tx.execute('delete from push_subscriptions where user_id = ?', [userId]);
  // Every file they uploaded, sent or not, goes to the deletion job, and its row stops naming them.
  await tx.execute("update attachments set status = 'deleting', next_try_at = now(), attempts = 0, uploader_id = ?, name = '' where uploader_id = ?", [pseudonym, userId]);
  // Pending deliveries that name the user (a push to them, a webhook carrying their message) go too.
  await tx.execute(`delete from jobs where key like '%:' || ? or strpos(payload::text, ${JSON_TEXT('?')}) > 0`, [userId, userId]);
  await tx.execute('delete from presence_users where user_id = ?', [userId]);
  const unblocked = await tx.execute<Array<{ other: string }>>(
    'delete from user_blocks where blocker_id = ? or blocked_id = ? returning case when blocker_id = ? then blocked_id else blocker_id end as other',
    [userId, userId, userId],
  );
  if (unblocked.length) await tx.execute('update safety_epoch set n = n + 1 where id = 1');
  await tx.execute(
    `update reports set
        reporter_id = case when reporter_id = ? then ? else reporter_id end,
        reported_user_id = case when reported_user_id = ? then ? else reported_user_id end,
        resolved_by = case when resolved_by = ? then ? else resolved_by end,
        note = replace(note, ?, ?),
        resolution_note = replace(resolution_note, ?, ?),
        message_snapshot = case when message_snapshot->>'sender' = ?
          then jsonb_set(jsonb_set(message_snapshot, '{sender}', to_jsonb(?::text)), '{content}', '""')
          else replace(message_snapshot::text, ${JSON_TEXT('?')}, ${JSON_TEXT('?')})::jsonb end
      where reporter_id = ? or reported_user_id = ? or resolved_by = ?`,
    [userId, pseudonym, userId, pseudonym, userId, pseudonym, userId, pseudonym, userId, pseudonym, userId, pseudonym, userId, pseudonym, userId, userId, userId],
  );
  await tx.execute(
    `update admin_audit set
        actor = case when actor = ? then ? else actor end,
        target_id = case when target_id = ? then ? else target_id end,
        details = replace(details::text, ${JSON_TEXT('?')}, ${JSON_TEXT('?')})::jsonb
      where actor = ? or target_id = ? or strpos(details::text, ${JSON_TEXT('?')}) > 0`,
    [userId, pseudonym, userId, pseudonym, userId, pseudonym, userId, userId, userId],
  );
  await tx.execute('delete from users where id = ?', [userId]);
  return { messages, changes: announced, unblocked: unblocked.map((r) => r.other) };
}
