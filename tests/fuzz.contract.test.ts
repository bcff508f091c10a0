import fc from 'fast-check';
import { SignJWT } from 'jose';
import { describe, expect } from 'vitest';
import { openLegacySocket, type LegacySocket } from './support/legacy-socket.ts';
import { openTrpcSocket, trpcHttp, type WireTrpcError } from './support/raw-trpc.ts';
import { appTest, TEST_SECRET } from './support/test-app.ts';
import {
  asSent, deepJson, field, fuzzObject, fuzzString, fuzzValue, hasPoisonKey, isObject, isUuid, THE_ROOM, validClientId, validContent, validCount, validRoomName, validUserId, withRoom,
} from './support/fuzz-inputs.ts';

// The general guard: random and adversarial input on every surface gets the precise
// error the contracts promise, the socket it came on stays usable, and nothing is half-written.
const MAX_CHARS = 4000;
const BODY_LIMIT = 65_536;
const MAX_AGE = 30 * 24 * 3600;
const WS_HUGE = 5_000;
const HTTP_HUGE = 70_000;
const runs = (numRuns: number) => ({ numRuns, endOnFailure: true });

type Rows = { u: number; r: number; m: number };

const it = appTest(import.meta.filename, { TYPING_THROTTLE_MS: '0' }).extend<{
  $file: { alice: string; roomId: string; rows: () => Promise<Rows>; post: (path: string, text: string) => Promise<Response>; legacy: LegacySocket };
}>({
  alice: [async ({ t }, use) => use(await t.token('alice')), { scope: 'file' }],
  roomId: [async ({ t, alice }, use) => use(((await trpcHttp(t.url, 'rooms.open', { otherUserId: 'bob' }, alice)).result!.data as { id: string }).id), { scope: 'file' }],
  rows: [async ({ t }, use) => use(async () => (await t.sql<Rows>('select (select count(*) from users)::int u, (select count(*) from chat_rooms)::int r, (select count(*) from messages)::int m'))[0]!), { scope: 'file' }],
  post: [
    async ({ t, alice }, use) =>
      use((path, text) => fetch(t.url + path, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: text })),
    { scope: 'file' },
  ],
  legacy: [
    async ({ t, alice }, use) => {
      const legacy = await openLegacySocket(t.url, 'alice', 'bob', alice);
      try {
        await use(legacy);
      } finally {
        legacy.close();
      }
    },
    { scope: 'file' },
  ],
});
const fieldsOf = (body: unknown) => Object.keys(body as object).sort();

describe('REST', () => {
  const sendBody = fuzzObject(
    {
      content: field(fc.constantFrom('hi', ' padded ', '😀', 'x'.repeat(MAX_CHARS)), HTTP_HUGE),
      chat_room: field(fc.oneof(fc.constant(THE_ROOM), fc.uuid()), HTTP_HUGE),
      sender: field(fc.constantFrom('alice', 'bob'), HTTP_HUGE),
    },
    HTTP_HUGE,
  );

  it('POST /<room>/messages/: 201, 400 naming exactly the bad fields, 403 or 413, and a row only for a 201', async ({ roomId, rows, post }) => {
    await fc.assert(
      fc.asyncProperty(sendBody, async (generated) => {
        const body = asSent(withRoom(generated, roomId));
        const text = JSON.stringify(body);
        const before = await rows();
        const res = await post(`/${roomId}/messages/`, text);
        const json = (await res.json()) as Record<string, unknown>;
        const expected = expectedSend(body, text, roomId);
        expect({ status: res.status, fields: expected.fields && fieldsOf(json) }).toEqual(expected);
        if (res.status === 400 && expected.fields === undefined) expect(json.detail).toMatch(/^JSON parse error/);
        expect((await rows()).m).toBe(before.m + (res.status === 201 ? 1 : 0));
      }),
      runs(100),
    );
  });

  function expectedSend(body: unknown, text: string, roomId: string): { status: number; fields?: string[] } {
    if (Buffer.byteLength(text) > BODY_LIMIT) return { status: 413 };
    if (hasPoisonKey(body)) return { status: 400 };
    const b = body ?? {};
    if (!isObject(b)) return { status: 400, fields: ['non_field_errors'] };
    const fields = [
      ...(validContent(b.content, MAX_CHARS) ? [] : ['content']),
      ...(b.chat_room === roomId ? [] : ['chat_room']),
      ...(validUserId(b.sender) ? [] : ['sender']),
    ];
    const spoofed = validUserId(b.sender) && b.sender !== 'alice';
    if (fields.length > 0) return { status: 400, fields: (spoofed ? [...fields, 'sender'] : fields).sort() };
    return { status: spoofed ? 403 : 201 };
  }

  it('POST /rooms/: 200, or 400 naming exactly the bad fields, and no row for a 400', async ({ rows, post }) => {
    const openBody = fuzzObject({ other_user: field(fc.constantFrom('bob', 'carol', 'alice'), HTTP_HUGE), name: field(fc.constantFrom('Chat', null, ''), HTTP_HUGE) }, HTTP_HUGE);
    await fc.assert(
      fc.asyncProperty(openBody.map(asSent), async (body) => {
        const text = JSON.stringify(body);
        const before = await rows();
        const res = await post('/rooms/', text);
        const json = (await res.json()) as Record<string, unknown>;
        let expected: { status: number; fields?: string[] } = { status: 200 };
        if (Buffer.byteLength(text) > BODY_LIMIT) expected = { status: 413 };
        else if (hasPoisonKey(body)) expected = { status: 400 };
        else if (!isObject(body ?? {})) expected = { status: 400, fields: ['non_field_errors'] };
        else {
          const b = (body ?? {}) as Record<string, unknown>;
          const fields = [...(validUserId(b.other_user) ? [] : ['other_user']), ...(validRoomName(b.name) ? [] : ['name'])].sort();
          if (fields.length > 0) expected = { status: 400, fields };
          else if (b.other_user === 'alice') expected = { status: 400, fields: ['other_user'] };
        }
        expect({ status: res.status, fields: expected.fields && fieldsOf(json) }).toEqual(expected);
        if (res.status !== 200) expect(await rows()).toEqual(before);
      }),
      runs(60),
    );
  });

  it('GET /<room>/messages/?limit=&cursor=: 200 within the limit, or 400 naming exactly the bad parameters', async ({ t, alice, roomId }) => {
    const param = fc.option(fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789 -+.eExabc%,'), maxLength: 6 }), fc.integer({ min: -5, max: 600 }).map(String)), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(param, param, async (limit, cursor) => {
        const query = new URLSearchParams({ ...(limit !== undefined ? { limit } : {}), ...(cursor !== undefined ? { cursor } : {}) });
        const res = await fetch(`${t.url}/${roomId}/messages/?${query}`, { headers: { authorization: `Bearer ${alice}` } });
        const json = (await res.json()) as unknown;
        const bad = [...(limit === undefined || validCount(limit, 1, 500) ? [] : ['limit']), ...(cursor === undefined || validCount(cursor, 0) ? [] : ['cursor'])].sort();
        if (bad.length > 0) expect({ status: res.status, fields: fieldsOf(json) }).toEqual({ status: 400, fields: bad });
        else {
          expect(res.status).toBe(200);
          if (limit !== undefined) expect((json as unknown[]).length).toBeLessThanOrEqual(Number(limit));
        }
      }),
      runs(60),
    );
  });

  it('JSON nested up to 40,000 deep is a 400 (413 past the body limit) on REST and tRPC, never a 500', async ({ t, alice, rows, post }) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 500, max: 40_000 }), async (depth) => {
        const before = await rows();
        const rest = await post('/rooms/', deepJson('other_user', depth));
        expect(rest.status).toBe(Buffer.byteLength(deepJson('other_user', depth)) > BODY_LIMIT ? 413 : 400);
        const trpc = await trpcHttp(t.url, 'messages.send', deepJson('content', depth), alice);
        expect([trpc.status, trpc.error?.data.parleyCode]).toEqual([400, 'INVALID_INPUT']);
        expect(await rows()).toEqual(before);
      }),
      runs(8),
    );
  });

  it('any path segment that is no room id, malformed %-escapes included, is a 404 that echoes nothing', async ({ t, alice }) => {
    const segment = fc.array(fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 3 }).map(encodeURIComponent), fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).toUpperCase()}`), fc.constantFrom('%', '%E0%A4', '%ZZ', '%ED%A0%80')), { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(segment, async (parts) => {
        const res = await fetch(`${t.url}/${parts.join('')}x/messages/?token=${alice}`);
        const text = await res.text();
        expect(res.status).toBe(404);
        expect(JSON.parse(text)).toEqual({ detail: 'Not found.' });
        expect(text).not.toContain(alice.split('.')[2]);
      }),
      runs(50),
    );
  });
});

/** What `messages.send` must answer for `input`: its HTTP status and, for a 400, the offending fields. */
function expectedTrpcSend(input: unknown, seenClientIds: Set<string>, roomId: string): { status: number; fields?: string[]; stored: boolean } {
  // A tRPC HTTP request may carry a batch of 10 calls, each within the body limit.
  if (Buffer.byteLength(JSON.stringify(input)) > 10 * BODY_LIMIT) return { status: 413, stored: false };
  if (!isObject(input)) return { status: 400, fields: ['non_field_errors'], stored: false };
  const fields = [
    ...(isUuid(input.roomId) ? [] : ['roomId']),
    ...(validContent(input.content) ? [] : ['content']),
    ...(input.clientId === undefined || validClientId(input.clientId) ? [] : ['clientId']),
  ].sort();
  if (fields.length > 0) return { status: 400, fields, stored: false };
  if (input.roomId !== roomId) return { status: 404, stored: false };
  if ((input.content as string).length > MAX_CHARS) return { status: 400, fields: ['content'], stored: false };
  const retried = typeof input.clientId === 'string' && seenClientIds.has(input.clientId);
  if (typeof input.clientId === 'string') seenClientIds.add(input.clientId);
  return { status: 200, stored: !retried };
}

/** Frames and messages stay under WS_MAX_PAYLOAD_BYTES: a larger one closes the socket with 1009, tested elsewhere. */
const fitsFrame = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '') < 60_000;
const sendInput = (hugeMax: number) =>
  fuzzObject(
    {
      roomId: field(fc.oneof(fc.constant(THE_ROOM), fc.uuid()), hugeMax),
      content: field(fc.constantFrom('hi', '😀', 'x'.repeat(MAX_CHARS + 1)), hugeMax),
      clientId: field(fc.uuid(), hugeMax),
    },
    hugeMax,
  );
const outcome = (status: number, error: WireTrpcError | undefined) => ({ status, fields: error?.data.details.fields ? Object.keys(error.data.details.fields).sort() : undefined });

describe('tRPC', () => {
  it('messages.send over HTTP: the contract’s error code and fields, a row only on success', async ({ t, alice, roomId, rows }) => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(sendInput(HTTP_HUGE), async (generated) => {
        const input = asSent(withRoom(generated, roomId));
        const before = await rows();
        const { status, error } = await trpcHttp(t.url, 'messages.send', JSON.stringify(input), alice);
        const { stored, ...expected } = expectedTrpcSend(input, seen, roomId);
        expect(outcome(status, error)).toEqual({ fields: undefined, ...expected });
        if (error) expect(error.data.httpStatus).toBe(status);
        expect((await rows()).m).toBe(before.m + (stored ? 1 : 0));
      }),
      runs(80),
    );
  });

  it('messages.list over HTTP (GET ?input=): 200 or 400 naming exactly the bad fields', async ({ t, alice, roomId }) => {
    const listInput = fuzzObject({ roomId: field(fc.constant(THE_ROOM), 100), cursor: field(fc.nat(), 100), limit: field(fc.integer({ min: 1, max: 500 }), 100) }, 100);
    await fc.assert(
      fc.asyncProperty(listInput, async (generated) => {
        const input = asSent(withRoom(generated, roomId));
        const { status, error } = await trpcHttp(t.url, 'messages.list', input, alice, 'query');
        let expected: { status: number; fields?: string[] } = { status: 200 };
        if (!isObject(input)) expected = { status: 400, fields: ['non_field_errors'] };
        else {
          const fields = [
            ...(isUuid(input.roomId) ? [] : ['roomId']),
            ...(input.cursor === undefined || validCount(input.cursor, 0) ? [] : ['cursor']),
            ...(input.limit === undefined || validCount(input.limit, 1, 500) ? [] : ['limit']),
          ].sort();
          if (fields.length > 0) expected = { status: 400, fields };
        }
        expect(outcome(status, error)).toEqual({ fields: undefined, ...expected });
      }),
      runs(50),
    );
  });

  it('messages.send over WebSocket: the same answers, and the socket keeps working after each', async ({ t, alice, roomId, rows }) => {
    const socket = await openTrpcSocket(t.url, alice);
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(sendInput(WS_HUGE).filter(fitsFrame), async (generated) => {
        const input = asSent(withRoom(generated, roomId));
        const before = await rows();
        const { error } = await socket.call('mutation', 'messages.send', input);
        const { stored, ...expected } = expectedTrpcSend(input, seen, roomId);
        expect(outcome(error?.data.httpStatus ?? 200, error)).toEqual({ fields: undefined, ...expected });
        expect((await rows()).m).toBe(before.m + (stored ? 1 : 0));
        expect((await socket.call('query', 'rooms.list', undefined)).result).toBeDefined();
      }),
      runs(60),
    );
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    socket.close();
  });

  it('raw WebSocket messages of any shape get 4xx answers at most, and the socket keeps working', async ({ t, alice, rows }) => {
    const socket = await openTrpcSocket(t.url, alice);
    const answers: Array<{ error?: WireTrpcError }> = [];
    socket.ws.on('message', (data) => answers.push(JSON.parse(data.toString()) as { error?: WireTrpcError }));
    const raw = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 50 }), fuzzValue(WS_HUGE).filter(fitsFrame).map((v) => JSON.stringify(v) ?? 'null'), fc.constantFrom('{"id":1,"method":"mutation"}', '{"id":"x","method":"subscription.stop"}', '{"method":"connectionParams","data":{"token":1}}'));
    await fc.assert(
      fc.asyncProperty(raw, async (text) => {
        const before = await rows();
        socket.sendRaw(text);
        expect((await socket.call('query', 'rooms.list', undefined)).result).toBeDefined();
        expect(await rows()).toEqual(before);
      }),
      runs(40),
    );
    for (const answer of answers) if (answer.error) expect(answer.error.data.httpStatus).toBeLessThan(500);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    socket.close();
  });
});

describe('legacy ws/chat frames', () => {
  /** The error code a frame must get, `stored` if it is a message that must be stored, or `ok`. */
  function expectedFrame(frame: unknown, roomId: string): 'stored' | 'ok' | 'INVALID_INPUT' | 'FORBIDDEN' {
    if (!isObject(frame)) return 'INVALID_INPUT';
    const addressed = isUuid(frame.chat_room) && validUserId(frame.other_user);
    const here = frame.chat_room === roomId && frame.other_user === 'bob';
    if (frame.action === 'typing') return addressed && here ? 'ok' : 'INVALID_INPUT';
    if (frame.action !== 'new_message' || !addressed || !validContent(frame.message) || !validUserId(frame.sender) || !here) return 'INVALID_INPUT';
    if (frame.sender !== 'alice') return 'FORBIDDEN';
    return (frame.message as string).length > MAX_CHARS ? 'INVALID_INPUT' : 'stored';
  }

  const frameArb = fc.oneof(
    { weight: 6, arbitrary: fuzzObject(
      {
        action: field(fc.constantFrom('new_message', 'typing'), WS_HUGE),
        message: field(fc.constantFrom('hi', '😀'), WS_HUGE),
        sender: field(fc.constantFrom('alice', 'bob'), WS_HUGE),
        chat_room: field(fc.constant(THE_ROOM), WS_HUGE),
        other_user: field(fc.constantFrom('bob', 'carol'), WS_HUGE),
      },
      WS_HUGE,
    ).filter(fitsFrame).map((frame) => ({ frame, text: undefined as string | undefined })) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }).map((text) => ({ frame: undefined as unknown, text })) },
  );

  it('every frame gets exactly its error frame, its message, or nothing, and the socket keeps working', async ({ roomId, rows, legacy }) => {
    let probe = 0;
    await fc.assert(
      fc.asyncProperty(frameArb, async ({ frame: generated, text }) => {
        const frame = asSent(withRoom(generated, roomId));
        const expected = text === undefined ? expectedFrame(frame, roomId) : 'INVALID_INPUT';
        const before = await rows();
        const from = legacy.frames.length;
        legacy.send(text ?? JSON.stringify(frame));
        const probeContent = `probe ${++probe}`;
        legacy.send({ action: 'new_message', message: probeContent, sender: 'alice', chat_room: roomId, other_user: 'bob' });
        await legacy.waitFor((f) => f.action === 'new_message' && f.message.content === probeContent, from);
        const between = legacy.frames.slice(from, -1).filter((f) => f.action !== 'typing');
        if (expected === 'stored') expect(between).toEqual([{ action: 'new_message', message: expect.objectContaining({ content: (frame as { message: string }).message, sender: 'alice' }) }]);
        else if (expected === 'ok') expect(between).toEqual([]);
        else expect(between).toEqual([{ action: 'error', code: expected, detail: expect.any(String) }]);
        expect((await rows()).m).toBe(before.m + 1 + (expected === 'stored' ? 1 : 0));
      }),
      runs(80),
    );
  });
});

describe('tokens', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const key = new TextEncoder().encode(TEST_SECRET);
  type Claims = Record<string, unknown>;
  // One claim at a time departs from a valid token, so each run has one precise expected answer.
  const tokenCase = fc.oneof(
    fuzzValue(100).map((sub) => ({ claim: 'sub', build: (n: number): Claims => ({ sub, iat: n - 5, exp: n + 600 }), expect: validUserId(sub) ? 'ok' : 'TOKEN_INVALID' })),
    fc.oneof(fc.constant(undefined), fc.constant(null), fc.string({ maxLength: 5 }), fc.boolean(), fc.integer({ min: 1, max: 10 ** 6 }).map((d) => -d), fc.integer({ min: 60, max: 10 ** 6 })).map((e) => ({
      claim: 'exp',
      build: (n: number): Claims => ({ sub: 'alice', iat: n - 5, ...(e === undefined ? {} : { exp: typeof e === 'number' ? n + e : e }) }),
      expect: typeof e !== 'number' ? 'TOKEN_INVALID' : e < 0 ? 'TOKEN_EXPIRED' : 'ok',
    })),
    fc.oneof(fc.constant(undefined), fc.constant('yesterday'), fc.integer({ min: 5, max: 10 ** 6 }), fc.integer({ min: 10, max: MAX_AGE - 10 }).map((d) => -d), fc.integer({ min: 10, max: 10 ** 6 }).map((d) => -MAX_AGE - d)).map((i) => ({
      claim: 'iat',
      build: (n: number): Claims => ({ sub: 'alice', exp: n + 600, ...(i === undefined ? {} : { iat: typeof i === 'number' ? n + i : i }) }),
      expect: typeof i !== 'number' ? 'TOKEN_INVALID' : i > 0 ? 'TOKEN_INVALID' : i < -MAX_AGE ? 'TOKEN_EXPIRED' : 'ok',
    })),
    fc.string({ unit: 'grapheme-ascii', maxLength: 300 }).map((garbage) => ({ claim: 'none', garbage, build: (): Claims => ({}), expect: 'TOKEN_INVALID' })),
  );

  it('a token with one bad claim (or none at all) is a 401 with the precise code and claim on REST and tRPC; nothing is stored', async ({ t, rows }) => {
    await fc.assert(
      fc.asyncProperty(tokenCase, async (c) => {
        const token = 'garbage' in c ? c.garbage : await new SignJWT(c.build(now()) as never).setProtectedHeader({ alg: 'HS256' }).sign(key);
        const before = await rows();
        const res = await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${token}` } });
        const { error } = await trpcHttp(t.url, 'rooms.list', undefined, token, 'query');
        if (c.expect === 'ok') {
          expect([res.status, error]).toEqual([200, undefined]);
          return;
        }
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="parley"/);
        expect(error?.data).toMatchObject({ httpStatus: 401, parleyCode: c.expect, details: c.claim === 'none' ? {} : { claim: c.claim } });
        expect(await rows()).toEqual(before);
      }),
      runs(80),
    );
  });
});
