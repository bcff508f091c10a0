import { z } from 'zod';

/** A user id: the JWT `sub` claim, an opaque string of 1 to 64 characters. */
export const UserId = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');
export type UserId = z.infer<typeof UserId>;

/** A chat room id (UUID). */
export const RoomId = z.uuid({ message: 'must be a valid UUID' });
export type RoomId = z.infer<typeof RoomId>;

/** A message id (UUID). */
export const MessageId = z.uuid({ message: 'must be a valid UUID' });
export type MessageId = z.infer<typeof MessageId>;

/** ISO-8601 timestamp with offset, as sent on the wire. */
export const Timestamp = z.iso.datetime({ offset: true });
