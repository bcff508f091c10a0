/**
 * Where an event travels on the room bus: a room, a user's own channel (rooms created with them)
 * or the one presence channel every instance listens to. The kind, not the text, tells them apart,
 * so a room's id cannot be passed where a user's channel is meant, and the sweep picks rooms by kind.
 *
 * Presence has one key for all users, not one per user: a change is one event on the wire whatever
 * the number of the user's rooms, and each instance routes it to the local streams watching that user.
 */
export type RoomKey = { readonly kind: 'room'; readonly roomId: string };
export type UserKey = { readonly kind: 'user'; readonly userId: string };
export type PresenceKey = { readonly kind: 'presence' };
/** Block changes between users: every instance re-reads what it holds of either user. */
export type SafetyKey = { readonly kind: 'safety' };
export type BusKey = RoomKey | UserKey | PresenceKey | SafetyKey | BansKey;

/**
 * A UUID may be spelled in capitals (the input schema and PostgreSQL accept both), and a room has
 * one key whichever spelling a caller used. V8's `toLowerCase` returns an id already in small
 * letters as it is, so the usual case costs no new string.
 */
export const roomKey = (roomId: string): RoomKey => ({ kind: 'room', roomId: roomId.toLowerCase() });
export const userKey = (userId: string): UserKey => ({ kind: 'user', userId });
export const PRESENCE_KEY: PresenceKey = Object.freeze({ kind: 'presence' });
export const SAFETY_KEY: SafetyKey = Object.freeze({ kind: 'safety' });

const USER_CHANNEL_PREFIX = 'user:';
const PRESENCE_CHANNEL = 'presence';
const SAFETY_CHANNEL = 'safety';

/**
 * A key's name on the wire (a batch's `room`, a Redis channel's suffix): the room id itself,
 * `user:<id>`, `presence`, `safety`. Only ever computed from a key; a received name is looked up among the
 * keys this instance watches, never parsed.
 */
export function channelOf(key: BusKey): string {
  switch (key.kind) {
    case 'room':
      return key.roomId;
    case 'user':
      return USER_CHANNEL_PREFIX + key.userId;
    case 'presence':
      return PRESENCE_CHANNEL;
    case 'safety':
      return SAFETY_CHANNEL;
    case 'bans':
      return 'bans';
  }
}

/** Bans and erasures: every instance updates its view of banned users and closes their sockets. */
export type BansKey = { readonly kind: 'bans' };
export const BANS_KEY: BansKey = Object.freeze({ kind: 'bans' });

/**
 * A key's subject on a subject-addressed engine (NATS), below the engine's prefix: `room.<id>`,
 * `user.<id in base64url>`, `presence`, `safety`, `bans`. A user id is any string up to 64
 * characters and may hold the dots, spaces and wildcards a subject token may not; base64url has none.
 */
export function subjectOf(key: BusKey): string {
  switch (key.kind) {
    case 'room':
      return `room.${key.roomId}`;
    case 'user':
      return `user.${Buffer.from(key.userId).toString('base64url')}`;
    default:
      return key.kind;
  }
}

/**
 * The key whose name `channelOf` gave, for an engine that addresses keys by something other
 * than that name (a subject, a hash slot). Only for names this process made itself: a batch
 * received from another instance is still routed by looking its name up among the watched ones.
 */
export function keyOfChannel(channel: string): BusKey {
  if (channel.startsWith(USER_CHANNEL_PREFIX)) return userKey(channel.slice(USER_CHANNEL_PREFIX.length));
  if (channel === PRESENCE_CHANNEL) return PRESENCE_KEY;
  if (channel === SAFETY_CHANNEL) return SAFETY_KEY;
  if (channel === 'bans') return BANS_KEY;
  return roomKey(channel);
}
