import { z } from 'zod';
import { PARLEY_ERROR_CODES } from './errors.ts';
import { FIELD_MESSAGES, objectErrors } from './field-messages.ts';
import { countFrom, RoomId, UserId } from './ids.ts';
import { Message, MESSAGE_PAGE_MAX, MessageContent } from './message.ts';
import { attachmentPlaceholder } from './attachment.ts';
import { RoomName } from './room.ts';

/**
 * Shapes of the legacy surfaces (the Django REST Framework + Channels API Parley replaces):
 * REST bodies and `ws/chat/...` frames. Field names are the seed's, in snake_case.
 */

/**
 * A message as legacy clients know it: the seed's five fields, no `seq`. Edits show as the
 * current content; a deleted message keeps its place with empty content.
 */
export const LegacyMessage = Message.omit({ seq: true, edited_at: true, deleted_at: true, attachments: true });
export type LegacyMessage = z.infer<typeof LegacyMessage>;

/** Body of `POST /<chat_room_id>/messages/`. */
export const LegacySendMessageBody = z.object(
  {
    content: MessageContent,
    chat_room: RoomId,
    sender: UserId,
  },
  { error: objectErrors },
);
export type LegacySendMessageBody = z.infer<typeof LegacySendMessageBody>;

/** Body of `POST /rooms/`: the caller's room with `other_user`, created on first use. */
export const LegacyOpenRoomBody = z.object(
  {
    other_user: UserId,
    name: RoomName.nullish(),
  },
  { error: objectErrors },
);
export type LegacyOpenRoomBody = z.infer<typeof LegacyOpenRoomBody>;

/** Query of `GET /<chat_room_id>/messages/`: with either key, one page instead of the whole history. */
export const LegacyHistoryQuery = z.object({
  limit: countFrom(1).max(MESSAGE_PAGE_MAX, FIELD_MESSAGES.maxValue(MESSAGE_PAGE_MAX)).optional(),
  cursor: countFrom(0).optional(),
});

/** DRF's error body for 401/403/404/413/5xx; a 403 may name the offending field too. */
export const DrfDetailError = z.object({ detail: z.string() }).catchall(z.array(z.string()));
/** DRF's validation error body: messages per field. */
export const DrfFieldErrors = z.record(z.string(), z.array(z.string()));

/** Client frame: send a message (the seed's `new_message` action). */
export const LegacyNewMessageFrame = z.object({
  action: z.literal('new_message'),
  message: MessageContent,
  sender: UserId,
  chat_room: RoomId,
  other_user: UserId,
});
/** Client frame: the user is typing. */
export const LegacyTypingFrame = z.object({
  action: z.literal('typing'),
  chat_room: RoomId,
  other_user: UserId,
});
/** Every frame a legacy client may send. */
export const LegacyClientFrame = z.discriminatedUnion('action', [LegacyNewMessageFrame, LegacyTypingFrame]);
export type LegacyClientFrame = z.infer<typeof LegacyClientFrame>;

/** Server frames: a new message, someone typing, or why the last frame was refused (the socket stays open). */
export const LegacyServerFrame = z.discriminatedUnion('action', [
  z.object({ action: z.literal('new_message'), message: LegacyMessage }),
  z.object({ action: z.literal('typing'), chat_room: RoomId, user: UserId }),
  z.object({ action: z.literal('error'), code: z.enum(PARLEY_ERROR_CODES), detail: z.string() }),
]);
export type LegacyServerFrame = z.infer<typeof LegacyServerFrame>;

/**
 * A message in its legacy shape (drops `seq`, the edit/delete times and attachments). A message
 * of attachments alone shows {@link attachmentPlaceholder} as its content.
 */
export function toLegacyMessage({ id, chat_room, sender, content, created_at, attachments }: Message): LegacyMessage {
  return { id, chat_room, sender, content: content === '' && attachments?.length ? attachmentPlaceholder(attachments) : content, created_at };
}
