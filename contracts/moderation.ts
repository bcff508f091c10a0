import { z } from 'zod';
import { MessageId, RoomId, UserId } from './ids.ts';

/**
 * What Parley POSTs to `MODERATION_URL` before a message or an edit is stored. Signed when
 * `MODERATION_SECRET` is set: `x-parley-timestamp` (Unix seconds) and `x-parley-signature:
 * sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`.
 */
export const ModerationRequest = z.object({
  action: z.enum(['send', 'edit']),
  sender: UserId,
  room: RoomId,
  /** The edited message; only for `edit`. */
  message_id: MessageId.optional(),
  content: z.string(),
});
export type ModerationRequest = z.infer<typeof ModerationRequest>;

/** The longest reason a hook may give; it reaches the client as the refusal's message. */
export const MODERATION_REASON_MAX = 500;

/**
 * The hook's answer (HTTP 2xx, JSON): let the content through, refuse it (the client gets
 * CONTENT_REJECTED with `reason`), or store `content` in its place (e.g. words masked).
 * Anything else counts as a failure of the hook, like a timeout (MODERATION_FAIL).
 */
export const ModerationVerdict = z.discriminatedUnion('verdict', [
  z.object({ verdict: z.literal('allow') }),
  z.object({ verdict: z.literal('reject'), reason: z.string().max(MODERATION_REASON_MAX).optional() }),
  z.object({ verdict: z.literal('rewrite'), content: z.string() }),
]);
export type ModerationVerdict = z.infer<typeof ModerationVerdict>;
