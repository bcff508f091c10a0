import { z } from 'zod';
import { RoomId, text, Timestamp, UserId } from './ids.ts';
import { Message } from './message.ts';
import { RoomSummary } from './room.ts';

/** A new message in the room; it moves the event id's message part to `message.seq`. */
export const MessageEvent = z.object({ type: z.literal('message'), message: Message });
export type MessageEvent = z.infer<typeof MessageEvent>;

/** A participant is typing. Ephemeral: never stored, never replayed. */
export const TypingEvent = z.object({ type: z.literal('typing'), chat_room: RoomId, user: UserId });
export type TypingEvent = z.infer<typeof TypingEvent>;

/**
 * The room's change sequence: edits, deletions, read and delivered markers are numbered 1, 2, 3 … per room,
 * apart from message seqs; it moves the event id's change part (`<seq>.<change_seq>`).
 */
const ChangeSeq = z.number().int().positive();

/** A participant's read marker moved forward to `seq`. */
export const ReadEvent = z.object({ type: z.literal('read'), chat_room: RoomId, user: UserId, seq: z.number().int().nonnegative(), change_seq: ChangeSeq });
export type ReadEvent = z.infer<typeof ReadEvent>;

/**
 * A participant's delivered marker moved forward to `seq`: their client received the other
 * participant's messages up to it (over a live subscription, or a push service accepted a
 * notification of them). A read marker implies delivery: show "Seen" past `read`, else "Delivered".
 */
export const DeliveredEvent = z.object({ type: z.literal('delivered'), chat_room: RoomId, user: UserId, seq: z.number().int().nonnegative(), change_seq: ChangeSeq });
export type DeliveredEvent = z.infer<typeof DeliveredEvent>;

/** A message was edited: `message` is its state after the edit (`edited_at` set). */
export const MessageUpdatedEvent = z.object({ type: z.literal('message_updated'), message: Message, change_seq: ChangeSeq });
export type MessageUpdatedEvent = z.infer<typeof MessageUpdatedEvent>;

/** A message was deleted: it keeps its seq, `content` is empty and `deleted_at` set. */
export const MessageDeletedEvent = z.object({ type: z.literal('message_deleted'), message: Message, change_seq: ChangeSeq });
export type MessageDeletedEvent = z.infer<typeof MessageDeletedEvent>;

/** A user who shares a room with the subscriber came online or went offline. Ephemeral, never replayed. */
export const PresenceEvent = z.object({ type: z.literal('presence'), user: UserId, online: z.boolean(), last_seen_at: Timestamp.nullable() });
export type PresenceEvent = z.infer<typeof PresenceEvent>;

/** Everything `messages.onEvent` yields. */
export const RoomEvent = z.discriminatedUnion('type', [MessageEvent, TypingEvent, ReadEvent, DeliveredEvent, MessageUpdatedEvent, MessageDeletedEvent, PresenceEvent]);
export type RoomEvent = z.infer<typeof RoomEvent>;

/** A stored change: replayed on resume, numbered by `change_seq`. */
export type RoomChangeEvent = ReadEvent | DeliveredEvent | MessageUpdatedEvent | MessageDeletedEvent;

/** A room the subscriber is in was created (by either participant). */
export const RoomCreatedEvent = z.object({ type: z.literal('room_created'), room: RoomSummary });
export type RoomCreatedEvent = z.infer<typeof RoomCreatedEvent>;

/**
 * Sent first on every (re)subscription of `rooms.onEvent`, once the stream listens to every room:
 * re-read `rooms.list` then, and the inbox is exact (events newer than a row's `last_seq` still apply).
 */
export const InboxReadyEvent = z.object({ type: z.literal('ready') });
export type InboxReadyEvent = z.infer<typeof InboxReadyEvent>;

/** Everything `rooms.onEvent` yields, for all of the caller's rooms. */
export const InboxEvent = z.discriminatedUnion('type', [MessageEvent, TypingEvent, ReadEvent, DeliveredEvent, MessageUpdatedEvent, MessageDeletedEvent, PresenceEvent, RoomCreatedEvent, InboxReadyEvent]);
export type InboxEvent = z.infer<typeof InboxEvent>;

/** A room subscription's position: the newest message seq and, once the room has any, the newest change seq. */
export const EventId = text().regex(/^\d{1,15}(\.\d{1,15})?$/, 'must be an event id: a message seq, or <seq>.<change_seq> (1 to 15 digits each)');

/**
 * Input of `messages.onEvent`; `lastEventId` (an event id, or a page's `lastEventId`) resumes after
 * a reconnect. The stream carries the other participant's `presence` events (a chat screen's
 * "online" dot needs no second subscription); `presence: false` leaves them out.
 */
export const RoomEventsInput = z.object({
  roomId: RoomId,
  lastEventId: EventId.nullish(),
  presence: z.boolean().optional(),
});
export type RoomEventsInput = z.infer<typeof RoomEventsInput>;

/** Parses an event id: `"5"` is message seq 5 and change 0. */
export function parseEventId(id: string): { seq: number; change: number } {
  const [seq, change] = id.split('.');
  return { seq: Number(seq), change: Number(change ?? 0) };
}

/** Formats a position as an event id: the change part is left out while the room has no changes. */
export function formatEventId(seq: number, change: number): string {
  return change === 0 ? String(seq) : `${seq}.${change}`;
}
