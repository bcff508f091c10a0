import { z } from 'zod';
import { FIELD_MESSAGES } from './field-messages.ts';
import { countFrom, RoomId, storable, text, Timestamp, UserId } from './ids.ts';
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

/** Whether a user is connected now (any WebSocket, either surface), and when they last were. */
export const Presence = z.object({ user: UserId, online: z.boolean(), last_seen_at: Timestamp.nullable() });
export type Presence = z.infer<typeof Presence>;

/** One row of `rooms.list`: the room, its newest message, the caller's unread count and the other participant. */
export const RoomSummary = ChatRoom.extend({
  last_seq: z.number().int().nonnegative(),
  last_message: Message.nullable(),
  /** Messages from the other participant after the caller's read marker, deleted ones left out. Exact. */
  unread: z.number().int().nonnegative(),
  /** The caller's read marker (a seq). */
  read_seq: z.number().int().nonnegative(),
  /** The other participant's read marker: the caller's messages up to it were seen. */
  other_read_seq: z.number().int().nonnegative(),
  /** The other participant's delivered marker: the caller's messages up to it reached their client. */
  other_delivered_seq: z.number().int().nonnegative(),
  /** The other participant and their presence. */
  other: Presence,
  /**
   * `received`: the other opened this room and the caller has not answered (no reply, no
   * `rooms.accept`); `sent`: the caller opened it and the other has not answered, so the caller
   * sees none of their presence, typing or receipts; `declined`: the caller declined it; null: a
   * conversation both have taken part in.
   */
  request: z.enum(['received', 'sent', 'declined']).nullable(),
  /** The caller archived the room and no message has arrived since. */
  archived: z.boolean(),
});
export type RoomSummary = z.infer<typeof RoomSummary>;

/** Default and maximum page size of `rooms.list`. */
export const DEFAULT_ROOM_PAGE_SIZE = 50;
export const ROOM_PAGE_MAX = 500;

/**
 * Which rooms `rooms.list` shows: `inbox` (default) the rooms the caller opened or accepted, not
 * archived; `requests` rooms others opened that the caller has not answered (declined ones left
 * out); `archived` the caller's archived rooms with nothing new; `all` every room of the caller.
 */
export const RoomFilter = z.enum(['inbox', 'requests', 'archived', 'all']);
export type RoomFilter = z.infer<typeof RoomFilter>;

/** Input of `rooms.list`: keyset pages, newest activity first; `cursor` is a previous page's `nextCursor` (of the same filter). */
export const ListRoomsInput = z
  .object({
    cursor: text().max(200, FIELD_MESSAGES.maxChars(200)).optional(),
    limit: countFrom(1).max(ROOM_PAGE_MAX, FIELD_MESSAGES.maxValue(ROOM_PAGE_MAX)).default(DEFAULT_ROOM_PAGE_SIZE),
    filter: RoomFilter.default('inbox'),
  })
  .default({ limit: DEFAULT_ROOM_PAGE_SIZE, filter: 'inbox' });
export type ListRoomsInput = z.input<typeof ListRoomsInput>;

/** One page of the caller's rooms; `nextCursor` is null on the last page. */
export const RoomPage = z.object({ items: z.array(RoomSummary), nextCursor: z.string().nullable() });
export type RoomPage = z.infer<typeof RoomPage>;

/** Input of `rooms.accept`, `rooms.decline`, `rooms.archive` and `rooms.unarchive`. */
export const RoomActionInput = z.object({ roomId: RoomId });
export type RoomActionInput = z.infer<typeof RoomActionInput>;

/** Output of `rooms.accept` and `rooms.decline`: where the request stands now. */
export const RequestAnswer = z.object({ roomId: RoomId, status: z.enum(['accepted', 'declined']) });
export type RequestAnswer = z.infer<typeof RequestAnswer>;

/** Output of `rooms.archive` and `rooms.unarchive`. */
export const ArchiveState = z.object({ roomId: RoomId, archived: z.boolean() });
export type ArchiveState = z.infer<typeof ArchiveState>;
