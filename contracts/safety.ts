import { z } from 'zod';
import { FIELD_MESSAGES } from './field-messages.ts';
import { countFrom, MessageId, RoomId, storable, text, Timestamp, UserId } from './ids.ts';
import { Message } from './message.ts';

/** Input of `users.block` and `users.unblock`: the other user. */
export const BlockUserInput = z.object({ userId: UserId });
export type BlockUserInput = z.infer<typeof BlockUserInput>;

/** A user the caller has blocked, and since when. */
export const BlockedUser = z.object({ user: UserId, blocked_at: Timestamp });
export type BlockedUser = z.infer<typeof BlockedUser>;

/** Output of `users.unblock`: whether a block was there to lift (false: there was none; still a success). */
export const Unblocked = z.object({ user: UserId, unblocked: z.boolean() });
export type Unblocked = z.infer<typeof Unblocked>;

/** Default and maximum page size of `users.listBlocked`. */
export const DEFAULT_BLOCKED_PAGE_SIZE = 50;
export const BLOCKED_PAGE_MAX = 500;

/** Input of `users.listBlocked`: pages ordered by user id; `cursor` is a previous page's `nextCursor`. */
export const ListBlockedInput = z
  .object({
    cursor: UserId.optional(),
    limit: countFrom(1).max(BLOCKED_PAGE_MAX, FIELD_MESSAGES.maxValue(BLOCKED_PAGE_MAX)).default(DEFAULT_BLOCKED_PAGE_SIZE),
  })
  .default({ limit: DEFAULT_BLOCKED_PAGE_SIZE });
export type ListBlockedInput = z.input<typeof ListBlockedInput>;

/** One page of the users the caller has blocked; `nextCursor` is null on the last page. */
export const BlockedPage = z.object({ items: z.array(BlockedUser), nextCursor: z.string().nullable() });
export type BlockedPage = z.infer<typeof BlockedPage>;

/** Why something is reported: a closed list, so reports can be counted and routed by it. */
export const REPORT_REASONS = ['spam', 'harassment', 'hate', 'sexual_content', 'violence', 'self_harm', 'other'] as const;
export const ReportReason = z.enum(REPORT_REASONS);
export type ReportReason = z.infer<typeof ReportReason>;

/** Where a report stands; new reports are `open`, moderation moves them on. */
export const ReportStatus = z.enum(['open', 'resolved', 'dismissed']);
export type ReportStatus = z.infer<typeof ReportStatus>;

/** Maximum length of a report's note, in characters. */
export const REPORT_NOTE_MAX_CHARS = 1000;

/** Input of `reports.create`: a message of the room (`messageId`), or the conversation as a whole. */
export const CreateReportInput = z.object({
  roomId: RoomId,
  messageId: MessageId.optional(),
  reason: ReportReason,
  note: storable(text().max(REPORT_NOTE_MAX_CHARS, FIELD_MESSAGES.maxChars(REPORT_NOTE_MAX_CHARS))).optional(),
});
export type CreateReportInput = z.infer<typeof CreateReportInput>;

/**
 * A stored report. `message` is the reported message as it was when first reported (later edits
 * and deletions do not change it); null for a report of the conversation.
 */
export const Report = z.object({
  id: z.uuid(),
  chat_room: RoomId,
  message_id: MessageId.nullable(),
  reported_user: UserId,
  reason: ReportReason,
  note: z.string().nullable(),
  status: ReportStatus,
  created_at: Timestamp,
  message: Message.nullable(),
});
export type Report = z.infer<typeof Report>;

/**
 * A user's privacy settings. `showPresence: false` hides their online status and last-seen time
 * from everyone; `sendReadReceipts: false` hides their read markers (and delivery receipts). Either
 * off also hides the same of everyone else from them.
 */
export const PrivacySettings = z.object({ showPresence: z.boolean(), sendReadReceipts: z.boolean() });
export type PrivacySettings = z.infer<typeof PrivacySettings>;

/** Input of `users.updatePrivacy`: the settings to change; left out, a setting stays as it is. */
export const UpdatePrivacyInput = PrivacySettings.partial();
export type UpdatePrivacyInput = z.infer<typeof UpdatePrivacyInput>;
