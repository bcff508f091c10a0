import { z } from 'zod';

/** Refinement for any stored string: PostgreSQL text cannot hold NUL, so it is a field error here, not a failed insert. */
export const noNul = [(s: string) => !s.includes('\u0000'), 'must not contain NUL characters'] as const;

/** A user id: the JWT `sub` claim, an opaque string of 1 to 64 characters. */
export const UserId = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .refine(...noNul);
export type UserId = z.infer<typeof UserId>;

/** A chat room id (UUID). */
export const RoomId = z.uuid({ message: 'must be a valid UUID' });
export type RoomId = z.infer<typeof RoomId>;

/** A message id (UUID). */
export const MessageId = z.uuid({ message: 'must be a valid UUID' });
export type MessageId = z.infer<typeof MessageId>;

/** ISO-8601 timestamp with offset, as sent on the wire. */
export const Timestamp = z.iso.datetime({ offset: true });
