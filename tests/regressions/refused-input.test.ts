import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactToken } from '../../server/transport/http/log-serializers.ts';
import { openLegacySocket, upgradeStatus } from '../support/legacy-socket.ts';
import { openTrpcSocket, trpcHttp } from '../support/raw-trpc.ts';
import { startTestApp, TEST_SECRET, type TestApp } from '../support/test-app.ts';

// Input that must be refused.
let t: TestApp;
let alice: string;
let roomId: string;
const MAX_AGE = 3600;

beforeAll(async () => {
  t = await startTestApp(import.meta.filename, { JWT_MAX_AGE_SECONDS: String(MAX_AGE) });
  alice = await t.token('alice');
  roomId = ((await trpcHttp(t.url, 'rooms.open', { otherUserId: 'bob' }, alice)).result!.data as { id: string }).id;
});
afterAll(() => t?.close());

const key = new TextEncoder().encode(TEST_SECRET);
const now = () => Math.floor(Date.now() / 1000);
const jwt = (claims: { sub?: string; iat?: number; exp?: number }) => {
  let token = new SignJWT({}).setProtectedHeader({ alg: 'HS256' });
  if (claims.sub !== undefined) token = token.setSubject(claims.sub);
  if (claims.iat !== undefined) token = token.setIssuedAt(claims.iat);
  if (claims.exp !== undefined) token = token.setExpirationTime(claims.exp);
  return token.sign(key);
};
const rest = (method: string, path: string, init: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
  fetch(t.url + path, {
    method,
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: typeof init.body === 'string' || init.body instanceof Uint8Array ? init.body : JSON.stringify(init.body) } : {}),
  });
const count = async (table: string) => (await t.sql<{ n: number }>(`select count(*)::int as n from ${table}`))[0]!.n;

describe('ids, names and content are well-formed Unicode on every surface', () => {
  it('tokens for "\\ud800x" and "\\udfffx" are refused (401 TOKEN_INVALID); "\\ufffdx" is a user of its own', async () => {
    const users = await count('users');
    for (const sub of ['\ud800x', '\udfffx']) {
      const token = await jwt({ sub, iat: now(), exp: now() + 600 });
      const res = await rest('GET', '/rooms/', { token });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ detail: 'Token has no valid subject.' });
      expect((await trpcHttp(t.url, 'rooms.list', undefined, token, 'query')).error?.data).toMatchObject({ parleyCode: 'TOKEN_INVALID', details: { claim: 'sub' } });
      expect(await upgradeStatus(t.url, `/ws/chat/x/bob/?token=${token}`)).toBe(401);
    }
    expect(await count('users')).toBe(users);
    const replacement = await jwt({ sub: '\ufffdx', iat: now(), exp: now() + 600 });
    const res = await rest('POST', '/rooms/', { token: replacement, body: { other_user: 'alice' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { participant1: string }).participant1).toBe('\ufffdx');
  });

  it('a lone surrogate in other_user, a room name, content or clientId is a field error, over REST and tRPC HTTP', async () => {
    const before = [await count('users'), await count('chat_rooms'), await count('messages')];
    const open = await rest('POST', '/rooms/', { token: alice, body: { other_user: '\ud800x', name: 'ok\udfff' } });
    expect(open.status).toBe(400);
    expect(await open.json()).toEqual({
      other_user: ['Surrogate characters are not allowed: U+D800.'],
      name: ['Surrogate characters are not allowed: U+DFFF.'],
    });
    const send = await rest('POST', `/${roomId}/messages/`, { token: alice, body: { content: 'a\udc00b', chat_room: roomId, sender: 'alice' } });
    expect(send.status).toBe(400);
    expect(await send.json()).toEqual({ content: ['Surrogate characters are not allowed: U+DC00.'] });

    const trpcOpen = await trpcHttp(t.url, 'rooms.open', { otherUserId: '\udbffy' }, alice);
    expect(trpcOpen.status).toBe(400);
    expect(trpcOpen.error!.data).toMatchObject({ parleyCode: 'INVALID_INPUT', details: { fields: { otherUserId: ['Surrogate characters are not allowed: U+DBFF.'] } } });
    const trpcSend = await trpcHttp(t.url, 'messages.send', { roomId, content: 'fine', clientId: 'k\ud800' }, alice);
    expect(trpcSend.error!.data.details.fields).toEqual({ clientId: ['Surrogate characters are not allowed: U+D800.'] });
    expect([await count('users'), await count('chat_rooms'), await count('messages')]).toEqual(before);
  });

  it('over WebSocket too: a tRPC call and a legacy frame with a lone surrogate get errors, the sockets stay usable', async () => {
    const before = await count('messages');
    const socket = await openTrpcSocket(t.url, alice);
    const refused = await socket.call('mutation', 'messages.send', { roomId, content: '\ud83d' });
    expect(refused.error!.data).toMatchObject({ code: 'BAD_REQUEST', details: { fields: { content: ['Surrogate characters are not allowed: U+D83D.'] } } });
    expect((await socket.call('mutation', 'messages.send', { roomId, content: 'after \ud83d\ude00' })).result).toBeDefined();
    socket.close();

    const legacy = await openLegacySocket(t.url, 'alice', 'bob', alice);
    legacy.send({ action: 'new_message', message: 'x\udfff', sender: 'alice', chat_room: roomId, other_user: 'bob' });
    expect(await legacy.waitFor((f) => f.action === 'error')).toMatchObject({ action: 'error', code: 'INVALID_INPUT', detail: expect.stringContaining('Surrogate') });
    legacy.send({ action: 'new_message', message: 'still here', sender: 'alice', chat_room: roomId, other_user: 'bob' });
    await legacy.waitFor((f) => f.action === 'new_message' && f.message.content === 'still here');
    legacy.close();
    expect(await count('messages')).toBe(before + 2);
  });

  it('invalid UTF-8 in a JSON body is a 400 on REST and tRPC, not a silent U+FFFD', async () => {
    const users = await count('users');
    const body = (prefix: string, suffix: string) => Buffer.concat([Buffer.from(prefix), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(suffix)]);
    const res = await rest('POST', '/rooms/', { token: alice, body: body('{"other_user":"', 'x"}') });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ detail: 'JSON parse error - request body is not valid UTF-8.' });
    const trpc = await fetch(`${t.url}/trpc/rooms.open`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: body('{"otherUserId":"', 'x"}') });
    expect(trpc.status).toBe(400);
    expect(((await trpc.json()) as { error: { data: { parleyCode: string } } }).error.data.parleyCode).toBe('INVALID_INPUT');
    expect(await count('users')).toBe(users);
  });

  it('a ws/chat path whose user id is not valid UTF-8 is a 404', async () => {
    expect(await upgradeStatus(t.url, `/ws/chat/%ED%A0%80x/bob/?token=${alice}`)).toBe(404);
  });
});

describe('a malformed %-escape gets the surface’s own 404 and never echoes the URL or token', () => {
  it.each([
    ['a legacy REST path', (token: string) => `/%E0%A4%A/messages/?token=${token}`],
    ['the rooms route', (token: string) => `/rooms/%ZZ?token=${token}`],
  ])('%s: 404 {"detail": "Not found."}', async (_name, path) => {
    const res = await fetch(t.url + path(alice));
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(JSON.parse(text)).toEqual({ detail: 'Not found.' });
    expect(text).not.toContain(alice.slice(0, 20));
  });

  it('under /trpc: tRPC’s error shape, one error per call of a batch', async () => {
    const res = await fetch(`${t.url}/trpc/rooms.list,rooms.%E0%A4%A?batch=1&token=${alice}`);
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(JSON.parse(text)).toEqual([
      { error: expect.objectContaining({ data: expect.objectContaining({ code: 'NOT_FOUND', parleyCode: 'NOT_FOUND', path: 'rooms.list' }) }) },
      { error: expect.objectContaining({ data: expect.objectContaining({ code: 'NOT_FOUND', parleyCode: 'NOT_FOUND', path: '' }) }) },
    ]);
    expect(text).not.toContain(alice.slice(0, 20));
  });

  it('a WebSocket upgrade with a malformed path is refused with 404', async () => {
    expect(await upgradeStatus(t.url, `/ws/chat/%E0%A4%A/bob/?token=${alice}`)).toBe(404);
  });

  it('logged request URLs carry no token', () => {
    expect(redactToken(`/ws/chat/a/b/?x=1&token=${alice}&y=2`)).toBe('/ws/chat/a/b/?x=1&token=[redacted]&y=2');
    expect(redactToken(`/%E0%A4%A/?TOKEN=${alice}`)).toBe('/%E0%A4%A/?TOKEN=[redacted]');
  });
});

describe('tokens need exp, a past iat, and an age within JWT_MAX_AGE_SECONDS', () => {
  it.each([
    ['no exp', () => jwt({ sub: 'alice', iat: now() }), 'TOKEN_INVALID', 'exp'],
    ['iat in the future', () => jwt({ sub: 'alice', iat: now() + 120, exp: now() + 600 }), 'TOKEN_INVALID', 'iat'],
    ['older than the maximum age', () => jwt({ sub: 'alice', iat: now() - MAX_AGE - 10, exp: now() + 600 }), 'TOKEN_EXPIRED', 'iat'],
    ['no iat while a maximum age is set', () => jwt({ sub: 'alice', exp: now() + 600 }), 'TOKEN_INVALID', 'iat'],
  ])('%s: 401 %s (claim %s) on REST, tRPC and ws/chat', async (_name, token, parleyCode, claim) => {
    const bad = await token();
    const res = await rest('GET', '/rooms/', { token: bad });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await trpcHttp(t.url, 'rooms.list', undefined, bad, 'query')).error!.data).toMatchObject({ parleyCode, details: { claim } });
    expect(await upgradeStatus(t.url, `/ws/chat/alice/bob/?token=${bad}`)).toBe(401);
  });

  it('a socket closes with 4501 when its token reaches the maximum age, before its exp', async () => {
    const token = await jwt({ sub: 'alice', iat: now() - MAX_AGE + 2, exp: now() + 600 });
    const socket = await openLegacySocket(t.url, 'alice', 'bob', token);
    const started = Date.now();
    expect((await socket.closed).code).toBe(4501);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('only the Bearer scheme carries a token', () => {
  it('a bare JWT in Authorization is a 401 with WWW-Authenticate: Bearer, on REST, tRPC and ws/chat', async () => {
    const res = await rest('GET', '/rooms/', { headers: { authorization: alice } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="parley"');
    const trpc = await fetch(`${t.url}/trpc/rooms.list`, { headers: { authorization: alice } });
    expect(trpc.status).toBe(401);
    expect(await upgradeStatus(t.url, '/ws/chat/alice/bob/', { authorization: alice })).toBe(401);
    expect((await rest('GET', '/rooms/', { headers: { authorization: `bearer ${alice}` } })).status).toBe(200);
  });
});

describe('without CORS configured, an OPTIONS request to /trpc is a clean 4xx, not a 500', () => {
  it('answers in tRPC’s shape', async () => {
    const res = await fetch(`${t.url}/trpc/rooms.list`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await res.json()) as { error: { data: { parleyCode: string } } }).error.data.parleyCode).toBe('INVALID_INPUT');
  });
});

describe('legacy field errors in DRF’s wording, every one at once', () => {
  const other = crypto.randomUUID();
  it.each([
    ['a blank content and a chat_room of another room', { content: '  ', chat_room: other, sender: 'alice' }, { content: ['This field may not be blank.'], chat_room: ['Must be the id of the chat room in the URL.'] }],
    ['missing fields', {}, { content: ['This field is required.'], chat_room: ['This field is required.'], sender: ['This field is required.'] }],
    ['null and wrong types', { content: null, chat_room: 7, sender: ['alice'] }, { content: ['This field may not be null.'], chat_room: ['Must be a valid UUID.'], sender: ['Not a valid string.'] }],
    ['content too long and a malformed chat_room', { content: 'x'.repeat(4001), chat_room: 'nope', sender: 'alice' }, { content: ['Ensure this field has no more than 4000 characters.'], chat_room: ['Must be a valid UUID.'] }],
    ['a spoofed sender beside another field error', { content: '', chat_room: 'this room', sender: 'bob' }, { content: ['This field may not be blank.'], sender: ['Must be the authenticated user.'] }],
    ['NUL in content', { content: 'a\u0000', chat_room: 'this room', sender: 'alice' }, { content: ['Null characters are not allowed.'] }],
    ['a body that is not an object', [1, 2], { non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] }],
  ])('POST messages, %s', async (_name, body, expected) => {
    const withRoom = !Array.isArray(body) && (body as { chat_room?: unknown }).chat_room === 'this room' ? { ...body, chat_room: roomId } : body;
    const res = await rest('POST', `/${roomId}/messages/`, { token: alice, body: withRoom });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
  });

  it.each([
    ['?limit=0', { limit: ['Ensure this value is greater than or equal to 1.'] }],
    ['?limit=501', { limit: ['Ensure this value is less than or equal to 500.'] }],
    ['?limit=abc&cursor=-1', { limit: ['A valid integer is required.'], cursor: ['Ensure this value is greater than or equal to 0.'] }],
    ['?cursor=1.5', { cursor: ['A valid integer is required.'] }],
  ])('GET messages%s', async (query, expected) => {
    const res = await rest('GET', `/${roomId}/messages/${query}`, { token: alice });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
  });

  it.each([
    [{}, { other_user: ['This field is required.'] }],
    [{ other_user: '' }, { other_user: ['This field may not be blank.'] }],
    [{ other_user: 'b'.repeat(65), name: 'n'.repeat(256) }, { other_user: ['Ensure this field has no more than 64 characters.'], name: ['Ensure this field has no more than 255 characters.'] }],
  ])('POST /rooms/ %j', async (body, expected) => {
    const res = await rest('POST', '/rooms/', { token: alice, body });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
  });
});
