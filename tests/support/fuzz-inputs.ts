import fc from 'fast-check';
import { RoomId } from '../../contracts/index.ts';

// Adversarial inputs for the fuzz tests, and what the contracts say each must get: an oracle
// written from the README's rules, not from the server's code.

/** Characters that broke or could break storage: lone surrogates, NUL, U+FFFD, quotes, escapes. */
const NASTY = ['\ud800', '\udbff', '\udc00', '\udfff', '\u0000', '\ufffd', ' ', '\t', '\n', '"', '\\', '%', '😀', 'é', '\u202e', '\u2028'];
const unit = fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));

/** Short adversarial strings, and now and then a huge one (up to `hugeMax` characters). */
export const fuzzString = (hugeMax: number) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit, maxLength: 70 }) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: Math.min(3_990, hugeMax), max: hugeMax }), fc.constantFrom('x', ' ', '\ud800', 'é')).map(([n, c]) => c.repeat(n)) },
  );

const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'content', 'chat_room', 'sender', 'roomId', 'action', 'message', ''];
const key = fc.oneof(fc.constantFrom(...KEYS), fc.string({ unit, maxLength: 8 }));

/** Nested arrays `depth` deep, built without recursion (deeper ones are sent as raw text). */
const nested = (depth: number) => {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
};

/** Any JSON value, with own `__proto__` keys, deep nesting and wrong types among them. */
export const fuzzValue = (hugeMax: number): fc.Arbitrary<unknown> =>
  fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fuzzString(hugeMax),
      fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom(-1, 0, 1, 2 ** 53, 1e300)),
      fc.integer({ min: 2, max: 300 }).map(nested),
      fc.array(tie('value'), { maxLength: 4 }),
      // Object.fromEntries defines `__proto__` as an own key, as JSON.parse does.
      fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }).map((entries) => Object.fromEntries(entries)),
    ),
  })).value;

/** A field that is usually right, sometimes missing, often adversarial. */
export const field = <T>(good: fc.Arbitrary<T>, hugeMax: number) =>
  fc.oneof({ weight: 3, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 4, arbitrary: fuzzValue(hugeMax) });

/** An object of the given fields (undefined ones left out) plus random extra keys, or now and then no object at all. */
export const fuzzObject = (fields: Record<string, fc.Arbitrary<unknown>>, hugeMax: number) =>
  fc.oneof(
    { weight: 9, arbitrary: fc.tuple(fc.record(fields), fc.array(fc.tuple(key, fuzzValue(hugeMax)), { maxLength: 2 })).map(([known, extra]) => Object.fromEntries([...extra, ...Object.entries(known).filter(([, v]) => v !== undefined)])) },
    { weight: 1, arbitrary: fuzzValue(hugeMax) },
  );

/** A placeholder the test replaces with the room it set up. */
export const THE_ROOM = '<the room>';
export const withRoom = (value: unknown, roomId: string): unknown =>
  value === THE_ROOM ? roomId : Array.isArray(value) ? value.map((v) => withRoom(v, roomId)) : isObject(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withRoom(v, roomId)])) : value;

/** A value as the server receives it: through JSON (Infinity and NaN become null, undefined keys vanish). */
export const asSent = (value: unknown): unknown => JSON.parse(JSON.stringify(value) ?? 'null');

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Fastify's JSON parser refuses `__proto__` keys and `constructor: {prototype}` (prototype poisoning). */
export const hasPoisonKey = (v: unknown): boolean =>
  Array.isArray(v)
    ? v.some(hasPoisonKey)
    : isObject(v) && (Object.hasOwn(v, '__proto__') || (isObject(v.constructor) && Object.hasOwn(v.constructor, 'prototype')) || Object.values(v).some(hasPoisonKey));

const storable = (s: string) => !s.includes('\u0000') && s.isWellFormed();
export const validUserId = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 64 && storable(v);
export const validContent = (v: unknown, maxChars = Infinity) => typeof v === 'string' && v.trim().length > 0 && v.length <= maxChars && storable(v);
export const validClientId = validUserId;
export const validRoomName = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.trim().length <= 255 && storable(v.trim()));
export const isUuid = (v: unknown) => RoomId.safeParse(v).success;
/** A count as the contracts coerce it: `Number(value)`, a safe integer within the bounds. */
export const validCount = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => {
  let n = NaN;
  try {
    n = Number(v);
  } catch {
    // `{"toString": 1}` has no primitive value at all.
  }
  return Number.isSafeInteger(n) && n >= min && n <= max;
};

/** JSON text nested `depth` deep inside `field`: deeper than any value the tests build as objects. */
export const deepJson = (fieldName: string, depth: number) => `{"${fieldName}":${'['.repeat(depth)}${']'.repeat(depth)}}`;
