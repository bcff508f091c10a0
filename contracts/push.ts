import { z } from 'zod';
import { RoomId, storable, text, Timestamp, UserId } from './ids.ts';

/** Subscriptions one user may hold (devices, browsers); subscribing past it drops the oldest. */
export const PUSH_SUBSCRIPTIONS_PER_USER = 10;

/** A base64url string (no padding) that decodes to `bytes` bytes (counted, not decoded: browsers have no Buffer). */
const base64urlOf = (bytes: number, what: string) =>
  text()
    .regex(/^[A-Za-z0-9_-]+$/, `must be base64url (${what})`)
    .refine((s) => s.length % 4 !== 1 && Math.floor((s.length * 3) / 4) === bytes, `must decode to ${bytes} bytes (${what})`);

/**
 * Input of `push.subscribe`: a browser's `PushSubscription.toJSON()` (its `expirationTime` is
 * ignored). Idempotent per endpoint. The endpoint must be `https` on a public address.
 */
export const PushSubscribeInput = z.object({
  endpoint: storable(text().max(2048)).pipe(z.url({ protocol: /^https?$/ })),
  keys: z.object({
    /** The browser's P-256 public key, uncompressed. */
    p256dh: base64urlOf(65, 'an uncompressed P-256 point'),
    /** The 16-byte authentication secret. */
    auth: base64urlOf(16, 'the 16-byte auth secret'),
  }),
  userAgent: storable(text().max(512)).optional(),
});
export type PushSubscribeInput = z.infer<typeof PushSubscribeInput>;

/** Output of `push.subscribe`: the caller's subscriptions after the call (at most {@link PUSH_SUBSCRIPTIONS_PER_USER}). */
export const PushSubscribed = z.object({ subscriptions: z.number().int().positive() });
export type PushSubscribed = z.infer<typeof PushSubscribed>;

/** Input of `push.unsubscribe`. */
export const PushUnsubscribeInput = z.object({ endpoint: text().max(2048) });
export type PushUnsubscribeInput = z.infer<typeof PushUnsubscribeInput>;

/** Output of `push.unsubscribe`: whether the caller had that subscription. */
export const PushUnsubscribed = z.object({ removed: z.boolean() });
export type PushUnsubscribed = z.infer<typeof PushUnsubscribed>;

/** Output of `push.vapidPublicKey`: the `applicationServerKey` for `pushManager.subscribe`. */
export const VapidPublicKey = z.object({ publicKey: z.string() });
export type VapidPublicKey = z.infer<typeof VapidPublicKey>;

/** Input of `rooms.mute`: no push for the room until `until` (absent: until unmuted). */
export const MuteRoomInput = z.object({ roomId: RoomId, until: Timestamp.optional() });
export type MuteRoomInput = z.infer<typeof MuteRoomInput>;

/** Input of `rooms.unmute`. */
export const UnmuteRoomInput = z.object({ roomId: RoomId });
export type UnmuteRoomInput = z.infer<typeof UnmuteRoomInput>;

/** Output of `rooms.mute` and `rooms.unmute`: the caller's mute of the room after the call. */
export const RoomMute = z.object({ muted: z.boolean(), until: Timestamp.nullable() });
export type RoomMute = z.infer<typeof RoomMute>;

/**
 * What a push notification carries (JSON, encrypted for the device): the room's newest message
 * from the other participant, the recipient's unread count, and `tag`, the same for every
 * notification of a room, so a service worker replaces the room's notification
 * (`showNotification(title, { tag, body })`). Without previews (`PUSH_PREVIEW=false`) the title is
 * "New message" and neither `body` nor `sender` is sent.
 */
export const PushPayload = z.object({
  type: z.literal('message'),
  tag: z.string(),
  chat_room: RoomId,
  seq: z.number().int().positive(),
  unread: z.number().int().nonnegative(),
  title: z.string(),
  body: z.string().optional(),
  sender: UserId.optional(),
});
export type PushPayload = z.infer<typeof PushPayload>;
