import { z } from 'zod';
import { FIELD_MESSAGES } from './field-messages.ts';
import { RoomId, storable, text, UserId } from './ids.ts';
import { Message } from './message.ts';

/** A room of exactly two participants (the seed's ChatRoom model). */
export const ChatRoom = z.object({
  id: RoomId,
  participant1: UserId,
  participant2: UserId,
  name: z.string().nullable(),
});
export type ChatRoom = z.infer<typeof ChatRoom>;

/** Maximum length of a room name, in characters. */
export const ROOM_NAME_MAX_CHARS = 255;

/** A room's display name: trimmed, at most {@link ROOM_NAME_MAX_CHARS} characters. */
export const RoomName = storable(text().trim().max(ROOM_NAME_MAX_CHARS, FIELD_MESSAGES.maxChars(ROOM_NAME_MAX_CHARS)));

/** Input of `rooms.open`: the caller's room with `otherUserId`, created on first use. */
export const OpenRoomInput = z.object({
  otherUserId: UserId,
  name: RoomName.optional(),
});
export type OpenRoomInput = z.infer<typeof OpenRoomInput>;

/** Output of `rooms.open`: the room and its newest seq, a resume point for `messages.onEvent`. */
export const OpenedRoom = ChatRoom.extend({ last_seq: z.number().int().nonnegative() });
export type OpenedRoom = z.infer<typeof OpenedRoom>;

/** One row of `rooms.list`: the room, its message count so far and its newest message. */
export const RoomSummary = ChatRoom.extend({
  last_seq: z.number().int().nonnegative(),
  last_message: Message.nullable(),
});
export type RoomSummary = z.infer<typeof RoomSummary>;
