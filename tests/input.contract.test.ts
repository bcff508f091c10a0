import { SignJWT } from 'jose';
import { describe, expect } from 'vitest';
import { redactToken } from '../server/transport/http/log-serializers.ts';
import { openLegacySocket, upgradeStatus } from './support/legacy-socket.ts';
import { openTrpcSocket, trpcHttp } from './support/raw-trpc.ts';
import { appTest, TEST_SECRET, type TestApp } from './support/test-app.ts';

// What every surface (REST, tRPC over HTTP and WebSocket, ws/chat) refuses of ids, names, content and URLs.
const it = appTest(import.meta.filename).extend<{ $file: { alice: { token: string; roomId: string } } }>({
  alice: [
    async ({ t }, use) => {
      const token = await t.token('alice');
      const roomId = ((await trpcHttp(t.url, 'rooms.open', { otherUserId: 'bob' }, token)).result!.data as { id: string }).id;
      await use({ token, roomId });
    },
    { scope: 'file' },
  ],
});

const key = new TextEncoder().encode(TEST_SECRET);
const now = () => Math.floor(Date.now() / 1000);
const jwt = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(now()).setExpirationTime(now() + 600).sign(key);
const rest = (t: TestApp, method: string, path: string, init: { token?: string; body?: unknown } = {}) =>
  fetch(t.url + path, {
    method,
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: init.body instanceof Uint8Array ? init.body : JSON.stringify(init.body) } : {}),
  });
const count = async (t: TestApp, table: string) => (await t.sql<{ n: number }>(`select count(*)::int as n from ${table}`))[0]!.n;

describe('ids, names and content are well-formed Unicode on every surface', () => {
  it('tokens for "\\ud800x" and "\\udfffx" are refused (401 TOKEN_INVALID); "\\ufffdx" is a user of its own', async ({ t }) => {
    const users = await count(t, 'users');
    for (const sub of ['\ud800x', '\udfffx']) {
      const token = await jwt(sub);
      const res = await rest(t, 'GET', '/rooms/', { token });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ detail: 'Token has no valid subject.' });
      expect((await trpcHttp(t.url, 'rooms.list', undefined, token, 'query')).error?.data).toMatchObject({ parleyCode: 'TOKEN_INVALID', details: { claim: 'sub' } });
      expect(await upgradeStatus(t.url, `/ws/chat/x/bob/?token=${token}`)).toBe(401);
    }
    expect(await count(t, 'users')).toBe(users);
    const replacement = await jwt('\ufffdx');
    const res = await rest(t, 'POST', '/rooms/', { token: replacement, body: { other_user: 'alice' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { participant1: string }).participant1).toBe('\ufffdx');
  });

  it('a lone surrogate in other_user, a room name, content or clientId is a field error, over REST and tRPC HTTP', async ({ t, alice: { token: alice, roomId } }) => {
    const before = [await count(t, 'users'), await count(t, 'chat_rooms'), await count(t, 'messages')];
    const open = await rest(t, 'POST', '/rooms/', { token: alice, body: { other_user: '\ud800x', name: 'ok\udfff' } });
    expect(open.status).toBe(400);
    expect(await open.json()).toEqual({
      other_user: ['Surrogate characters are not allowed: U+D800.'],
      name: ['Surrogate characters are not allowed: U+DFFF.'],
    });
    const send = await rest(t, 'POST', `/${roomId}/messages/`, { token: alice, body: { content: 'a\udc00b', chat_room: roomId, sender: 'alice' } });
    expect(send.status).toBe(400);
    expect(await send.json()).toEqual({ content: ['Surrogate characters are not allowed: U+DC00.'] });

    const trpcOpen = await trpcHttp(t.url, 'rooms.open', { otherUserId: '\udbffy' }, alice);
    expect(trpcOpen.status).toBe(400);
    expect(trpcOpen.error!.data).toMatchObject({ parleyCode: 'INVALID_INPUT', details: { fields: { otherUserId: ['Surrogate characters are not allowed: U+DBFF.'] } } });
    const trpcSend = await trpcHttp(t.url, 'messages.send', { roomId, content: 'fine', clientId: 'k\ud800' }, alice);
    expect(trpcSend.error!.data.details.fields).toEqual({ clientId: ['Surrogate characters are not allowed: U+D800.'] });
    expect([await count(t, 'users'), await count(t, 'chat_rooms'), await count(t, 'messages')]).toEqual(before);
  });

  it('over WebSocket too: a tRPC call and a legacy frame with a lone surrogate get errors, the sockets stay usable', async ({ t, alice: { token: alice, roomId } }) => {
    const before = await count(t, 'messages');
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
    expect(await count(t, 'messages')).toBe(before + 2);
  });

  it('invalid UTF-8 in a JSON body is a 400 on REST and tRPC, not a silent U+FFFD', async ({ t, alice: { token: alice } }) => {
    const users = await count(t, 'users');
    const body = (prefix: string, suffix: string) => Buffer.concat([Buffer.from(prefix), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(suffix)]);
    const res = await rest(t, 'POST', '/rooms/', { token: alice, body: body('{"other_user":"', 'x"}') });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ detail: 'JSON parse error - request body is not valid UTF-8.' });
    const trpc = await fetch(`${t.url}/trpc/rooms.open`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: body('{"otherUserId":"', 'x"}') });
    expect(trpc.status).toBe(400);
    expect(((await trpc.json()) as { error: { data: { parleyCode: string } } }).error.data.parleyCode).toBe('INVALID_INPUT');
    expect(await count(t, 'users')).toBe(users);
  });

  it('a ws/chat path whose user id is not valid UTF-8 is a 404', async ({ t, alice: { token: alice } }) => {
    expect(await upgradeStatus(t.url, `/ws/chat/%ED%A0%80x/bob/?token=${alice}`)).toBe(404);
  });
});

describe('a malformed %-escape gets the surface’s own 404 and never echoes the URL or token', () => {
  it.for([
    ['a legacy REST path', (token: string) => `/%E0%A4%A/messages/?token=${token}`],
    ['the rooms route', (token: string) => `/rooms/%ZZ?token=${token}`],
  ] as const)('%s: 404 {"detail": "Not found."}', async ([, path], { t, alice: { token: alice } }) => {
    const res = await fetch(t.url + path(alice));
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(JSON.parse(text)).toEqual({ detail: 'Not found.' });
    expect(text).not.toContain(alice.slice(0, 20));
  });

  it('under /trpc: tRPC’s error shape, one error per call of a batch', async ({ t, alice: { token: alice } }) => {
    const res = await fetch(`${t.url}/trpc/rooms.list,rooms.%E0%A4%A?batch=1&token=${alice}`);
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(JSON.parse(text)).toEqual([
      { error: expect.objectContaining({ data: expect.objectContaining({ code: 'NOT_FOUND', parleyCode: 'NOT_FOUND', path: 'rooms.list' }) }) },
      { error: expect.objectContaining({ data: expect.objectContaining({ code: 'NOT_FOUND', parleyCode: 'NOT_FOUND', path: '' }) }) },
    ]);
    expect(text).not.toContain(alice.slice(0, 20));
  });

  it('a WebSocket upgrade with a malformed path is refused with 404', async ({ t, alice: { token: alice } }) => {
    expect(await upgradeStatus(t.url, `/ws/chat/%E0%A4%A/bob/?token=${alice}`)).toBe(404);
  });

  it('logged request URLs carry no token', ({ alice: { token: alice } }) => {
    expect(redactToken(`/ws/chat/a/b/?x=1&token=${alice}&y=2`)).toBe('/ws/chat/a/b/?x=1&token=[redacted]&y=2');
    expect(redactToken(`/%E0%A4%A/?TOKEN=${alice}`)).toBe('/%E0%A4%A/?TOKEN=[redacted]');
  });
});

