import { z } from 'zod';
import { FIELD_MESSAGES } from './field-messages.ts';
import { countFrom, MessageId, storable, text, Timestamp, UserId } from './ids.ts';
import { Report, ReportStatus } from './safety.ts';

/** Default and maximum page size of the admin lists. */
export const DEFAULT_ADMIN_PAGE_SIZE = 50;
export const ADMIN_PAGE_MAX = 200;
/** Maximum length of a moderator's note or ban reason, in characters. */
export const ADMIN_NOTE_MAX_CHARS = 1000;

const pageLimit = countFrom(1).max(ADMIN_PAGE_MAX, FIELD_MESSAGES.maxValue(ADMIN_PAGE_MAX)).default(DEFAULT_ADMIN_PAGE_SIZE);
const note = () => storable(text().max(ADMIN_NOTE_MAX_CHARS, FIELD_MESSAGES.maxChars(ADMIN_NOTE_MAX_CHARS)));

/** What a moderator does with a report: nothing (`dismiss`), remove the reported message for good, or ban the reported user. */
export const REPORT_ACTIONS = ['dismiss', 'delete_message', 'ban_user'] as const;
export const ReportAction = z.enum(REPORT_ACTIONS);
export type ReportAction = z.infer<typeof ReportAction>;

/** A report as moderators see it: who filed it, and how it was resolved. */
export const AdminReport = Report.extend({
  reporter: z.string(),
  resolved_at: Timestamp.nullable(),
  resolved_by: z.string().nullable(),
  resolution_action: ReportAction.nullable(),
  resolution_note: z.string().nullable(),
});
export type AdminReport = z.infer<typeof AdminReport>;

/** Input of `admin.reports.list`: oldest first (a queue), optionally of one status; `cursor` is a previous page's `nextCursor`. */
export const ListReportsInput = z.object({ status: ReportStatus.optional(), cursor: z.uuid().optional(), limit: pageLimit }).default({ limit: DEFAULT_ADMIN_PAGE_SIZE });
export type ListReportsInput = z.input<typeof ListReportsInput>;

export const ReportPage = z.object({ items: z.array(AdminReport), nextCursor: z.string().nullable() });
export type ReportPage = z.infer<typeof ReportPage>;

/** Input of `admin.reports.resolve`. */
export const ResolveReportInput = z.object({ reportId: z.uuid(), action: ReportAction, note: note().optional() });
export type ResolveReportInput = z.infer<typeof ResolveReportInput>;

/** Input of `admin.users.ban`: without `until` the ban lasts until lifted. */
export const BanUserInput = z.object({
  userId: UserId,
  until: Timestamp.optional(),
  reason: note().min(1, FIELD_MESSAGES.blank),
});
export type BanUserInput = z.infer<typeof BanUserInput>;

/** A stored ban. */
export const Ban = z.object({ user: UserId, banned_at: Timestamp, until: Timestamp.nullable(), reason: z.string(), banned_by: z.string() });
export type Ban = z.infer<typeof Ban>;

/** Input of `admin.users.unban`, `admin.users.erase` and the export route: the user. */
export const AdminUserInput = z.object({ userId: UserId });
export type AdminUserInput = z.infer<typeof AdminUserInput>;

/** Output of `admin.users.unban`: whether there was a ban to lift. */
export const Unbanned = z.object({ user: UserId, unbanned: z.boolean() });
export type Unbanned = z.infer<typeof Unbanned>;

/** Input of `admin.messages.delete`: `hard` must be true, so the call says that the content goes for good. */
export const AdminDeleteMessageInput = z.object({ messageId: MessageId, hard: z.literal(true) });
export type AdminDeleteMessageInput = z.infer<typeof AdminDeleteMessageInput>;

/**
 * Output of `admin.users.erase`: the pseudonym that now stands for the user in what remains
 * (null when nothing named the user: erasing again changes nothing) and how many of their
 * messages lost their content.
 */
export const Erased = z.object({ pseudonym: z.string().nullable(), messages: z.number().int() });
export type Erased = z.infer<typeof Erased>;

/** Every admin action, as recorded in the audit log. */
export const ADMIN_ACTIONS = ['reports.resolve', 'users.ban', 'users.unban', 'users.export', 'users.erase', 'messages.delete'] as const;
export const AdminAction = z.enum(ADMIN_ACTIONS);

/** One entry of the audit log: who did what to which target, when, and the details of the call. */
export const AuditEntry = z.object({
  id: z.string(),
  at: Timestamp,
  actor: z.string(),
  action: AdminAction,
  target_type: z.enum(['report', 'user', 'message']),
  target: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

/** Input of `admin.audit.list`: newest first. */
export const ListAuditInput = z.object({ cursor: z.string().regex(/^\d+$/, FIELD_MESSAGES.integer).optional(), limit: pageLimit }).default({ limit: DEFAULT_ADMIN_PAGE_SIZE });
export type ListAuditInput = z.input<typeof ListAuditInput>;

export const AuditPage = z.object({ items: z.array(AuditEntry), nextCursor: z.string().nullable() });
export type AuditPage = z.infer<typeof AuditPage>;

/** One line of a user's export (`GET /admin/users/{userId}/export`, NDJSON), by `type`. */
export const ExportLine = z.discriminatedUnion('type', [
  z.object({ type: z.literal('user'), id: UserId, created_at: Timestamp, last_seen_at: Timestamp.nullable(), ban: Ban.nullable() }),
  z.object({ type: z.literal('room'), id: z.uuid(), participant1: UserId, participant2: UserId, name: z.string().nullable(), created_at: Timestamp, last_seq: z.number().int() }),
  z.object({ type: z.literal('message'), id: MessageId, chat_room: z.uuid(), sender: UserId, content: z.string(), created_at: Timestamp, seq: z.number().int(), edited_at: Timestamp.optional(), deleted_at: Timestamp.optional() }),
  z.object({ type: z.literal('read_marker'), chat_room: z.uuid(), user: UserId, seq: z.number().int() }),
  z.object({ type: z.literal('block'), blocker: UserId, blocked: UserId, created_at: Timestamp }),
  z.object({ type: z.literal('report'), report: AdminReport }),
]);
export type ExportLine = z.infer<typeof ExportLine>;
