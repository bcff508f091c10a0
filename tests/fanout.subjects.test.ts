import { expect, it } from 'vitest';
import { BANS_KEY, channelOf, keyOfChannel, PRESENCE_KEY, roomKey, SAFETY_KEY, subjectOf, userKey } from '../server/live/bus-key.ts';

it('every bus key has a valid NATS subject of its own, and a channel name maps back to its key', () => {
  const keys = [roomKey('8F14E45F-CEEA-467A-9575-0F0A7F1E3D2C'), userKey('alice'), userKey('a.b *>\t'), userKey('user:x'), userKey('presence'), PRESENCE_KEY, SAFETY_KEY, BANS_KEY];
  const subjects = keys.map(subjectOf);
  expect(new Set(subjects).size).toBe(keys.length);
  // A subject is dot-separated tokens with no whitespace or wildcards.
  for (const s of subjects) expect(s).toMatch(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/);
  expect(subjects[0]).toBe('room.8f14e45f-ceea-467a-9575-0f0a7f1e3d2c');
  for (const key of keys) expect(keyOfChannel(channelOf(key))).toEqual(key);
});
