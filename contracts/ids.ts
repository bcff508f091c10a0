import { z } from 'zod';
import { FIELD_MESSAGES, typeErrors } from './field-messages.ts';

/** The first lone UTF-16 surrogate in `s`, as a code point. */
function loneSurrogate(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    else if (unit >= 0xd800 && unit <= 0xdfff) return unit;
  }
  return 0xfffd;
}

/**
 * The checks every stored string passes. PostgreSQL text holds neither NUL nor a lone UTF-16
 * surrogate: NUL fails the insert, and a lone surrogate is stored as U+FFFD, so `"\ud800x"` and
 * `"\udfffx"` would become one user id. Both are field errors instead.
 */
export function storable<S extends z.ZodString>(schema: S): S {
  return schema
    .refine((s) => !s.includes('\u0000'), FIELD_MESSAGES.nul)
    .refine((s) => s.isWellFormed(), { error: (issue) => FIELD_MESSAGES.surrogate(loneSurrogate(String(issue.input))) });
}

/** A string field: DRF's messages for a missing, null or non-string value. */
export const text = () => z.string({ error: typeErrors(FIELD_MESSAGES.notString) });

/** A user id: the JWT `sub` claim, an opaque string of 1 to 64 characters. */
export const UserId = storable(text().min(1, FIELD_MESSAGES.blank).max(64, FIELD_MESSAGES.maxChars(64)));
export type UserId = z.infer<typeof UserId>;

const uuid = () =>
  z.uuid({ error: (issue) => (issue.code === 'invalid_type' ? typeErrors(FIELD_MESSAGES.uuid)(issue) : FIELD_MESSAGES.uuid) });

/** A chat room id (UUID). */
export const RoomId = uuid();
export type RoomId = z.infer<typeof RoomId>;

/** A message id (UUID). */
export const MessageId = uuid();
export type MessageId = z.infer<typeof MessageId>;

/** ISO-8601 timestamp with offset, as sent on the wire. */
export const Timestamp = z.iso.datetime({ offset: true });

/** A whole number of at least `min` (query strings are coerced), with DRF's messages. */
export const countFrom = (min: number) =>
  z.coerce
    .number({ error: typeErrors(FIELD_MESSAGES.integer) })
    .int(FIELD_MESSAGES.integer)
    .min(min, FIELD_MESSAGES.minValue(min));
