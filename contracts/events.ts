import { z } from 'zod';
import { RoomId, UserId } from './ids.ts';
import { Message } from './message.ts';

/** A new message in the room; its subscription event id is `String(message.seq)`. */
export const MessageEvent = z.object({ type: z.literal('message'), message: Message });
export type MessageEvent = z.infer<typeof MessageEvent>;

/** A participant is typing. Ephemeral: never stored, never replayed. */
export const TypingEvent = z.object({ type: z.literal('typing'), chat_room: RoomId, user: UserId });
export type TypingEvent = z.infer<typeof TypingEvent>;

/** Everything `messages.onEvent` yields. */
export const RoomEvent = z.discriminatedUnion('type', [MessageEvent, TypingEvent]);
export type RoomEvent = z.infer<typeof RoomEvent>;

/** Input of `messages.onEvent`; `lastEventId` (a seq) resumes after a reconnect. */
export const RoomEventsInput = z.object({
  roomId: RoomId,
  // 15 digits stay within Number.MAX_SAFE_INTEGER; more is no seq this server hands out.
  lastEventId: z.string().regex(/^\d{1,15}$/, 'must be a message seq (1 to 15 digits)').nullish(),
});
export type RoomEventsInput = z.infer<typeof RoomEventsInput>;
