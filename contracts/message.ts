import { z } from 'zod';
import { FIELD_MESSAGES } from './field-messages.ts';
import { countFrom, MessageId, RoomId, storable, text, Timestamp, UserId } from './ids.ts';
import { Attachment, AttachmentId, MAX_ATTACHMENTS_PER_MESSAGE } from './attachment.ts';

/** Default maximum message length, in characters (server config `MESSAGE_MAX_CHARS`). */
export const DEFAULT_MESSAGE_MAX_CHARS = 4000;

/** The most calls the SDK puts in one HTTP batch; the server sizes tRPC's body limit by it. */
export const TRPC_BATCH_MAX_ITEMS = 10;

/** Page size of `messages.list` (and of the legacy `?cursor=` pages) when none is asked for. */
export const DEFAULT_PAGE_SIZE = 50;

/** Maximum page size of `messages.list`. */
export const MESSAGE_PAGE_MAX = 500;

/**
 * A stored message. `seq` is dense per room (1, 2, 3, ...) and is the only order:
 * history, cursors and subscription event ids all use it.
 */
export const Message = z.object({
  id: MessageId,
  chat_room: RoomId,
  sender: UserId,
  content: z.string(),
  created_at: Timestamp,
  seq: z.number().int().positive(),
  /** When the sender last edited it; absent if never. */
  edited_at: Timestamp.optional(),
  /** When the sender deleted it (its content is then empty); absent if not deleted. */
  deleted_at: Timestamp.optional(),
  /** Its files, with signed URLs; absent if none (and once the message is deleted). */
  attachments: z.array(Attachment).optional(),
});
export type Message = z.infer<typeof Message>;

/** Message content: non-empty after trimming; the upper bound is enforced by the server's config. */
export const MessageContent = storable(text().refine((s) => s.trim().length > 0, FIELD_MESSAGES.blank));

/** {@link MessageContent} within the server's `MESSAGE_MAX_CHARS`. */
export const boundedMessageContent = (maxChars: number) => MessageContent.max(maxChars, FIELD_MESSAGES.maxChars(maxChars));

/** A client-chosen idempotency key: a retried send with the same key returns the first message. */
export const ClientId = storable(text().min(1, FIELD_MESSAGES.blank).max(64, FIELD_MESSAGES.maxChars(64)));

/** Input of `messages.send`; with `attachmentIds` (uploaded with `attachments.createUpload`) the content may be empty. */
export const SendMessageInput = z
  .object({
    roomId: RoomId,
    content: storable(text()),
    clientId: ClientId.optional(),
    attachmentIds: z
      .array(AttachmentId)
      .max(MAX_ATTACHMENTS_PER_MESSAGE, `Ensure this field has no more than ${MAX_ATTACHMENTS_PER_MESSAGE} elements.`)
      .refine((ids) => new Set(ids).size === ids.length, 'An attachment may appear once.')
      .optional(),
  })
  .refine((m) => m.content.trim().length > 0 || (m.attachmentIds?.length ?? 0) > 0, {
    path: ['content'],
    error: FIELD_MESSAGES.blank,
    // Checked whatever else is wrong, so every field error comes back at once.
    when: (payload) => typeof (payload.value as { content?: unknown } | undefined)?.content === 'string',
  });
export type SendMessageInput = z.infer<typeof SendMessageInput>;

/** A history cursor: the `seq` after which the next page starts. */
export const Cursor = countFrom(0);

/** Which way `messages.list` pages: `forward` from the oldest (default), `backward` from the newest. */
export const PageDirection = z.enum(['forward', 'backward']);
export type PageDirection = z.infer<typeof PageDirection>;

/**
 * Input of `messages.list`: keyset pagination by `seq`; items are oldest first within a page either way.
 * Forward: the page after `cursor` (a seq; default 0). Backward: the page before `cursor` (default: the newest).
 */
export const ListMessagesInput = z.object({
  roomId: RoomId,
  cursor: Cursor.optional(),
  limit: countFrom(1).max(MESSAGE_PAGE_MAX, FIELD_MESSAGES.maxValue(MESSAGE_PAGE_MAX)).default(DEFAULT_PAGE_SIZE),
  direction: PageDirection.default('forward'),
});
export type ListMessagesInput = z.input<typeof ListMessagesInput>;

/**
 * One page of history; `nextCursor` (pass it back with the same `direction`) is null on the last page.
 * `lastEventId` is where a subscription continues after this page's newest message: every later
 * message, and every edit, deletion and read marker since the page was read (see README, "Ordering and resume").
 */
export const MessagePage = z.object({
  items: z.array(Message),
  nextCursor: z.number().int().nullable(),
  lastEventId: z.string(),
});
export type MessagePage = z.infer<typeof MessagePage>;

/** Input of `messages.typing`. */
export const TypingInput = z.object({ roomId: RoomId });
export type TypingInput = z.infer<typeof TypingInput>;

/** Input of `messages.edit`: the sender replaces a message's content within the edit window. */
export const EditMessageInput = z.object({ roomId: RoomId, messageId: MessageId, content: MessageContent });
export type EditMessageInput = z.infer<typeof EditMessageInput>;

/** Input of `messages.delete`: the sender deletes a message; it keeps its seq, its content is gone. */
export const DeleteMessageInput = z.object({ roomId: RoomId, messageId: MessageId });
export type DeleteMessageInput = z.infer<typeof DeleteMessageInput>;

/** Input of `messages.markRead`: the caller has read the room up to `seq` (markers only move forward). */
export const MarkReadInput = z.object({ roomId: RoomId, seq: countFrom(0) });
export type MarkReadInput = z.infer<typeof MarkReadInput>;

/** Output of `messages.markRead`: the caller's marker after the call (higher than asked if it already was). */
export const ReadMarker = z.object({ seq: z.number().int().nonnegative() });
export type ReadMarker = z.infer<typeof ReadMarker>;

/** Input of `messages.markDelivered`: the caller's client has received the room's messages up to `seq` (forward only). */
export const MarkDeliveredInput = MarkReadInput;
export type MarkDeliveredInput = MarkReadInput;

/** Output of `messages.markDelivered`: the caller's delivered marker after the call. */
export const DeliveredMarker = ReadMarker;
export type DeliveredMarker = ReadMarker;
