import { connect } from 'node:net';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { describe, expect } from 'vitest';
import type { ChatClient } from '../client-sdk/index.ts';
import { MessageContent, toLegacyMessage } from '../contracts/index.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { servedOpenApi } from './support/openapi.ts';
import { range, record } from './support/subscription.ts';
import { appTest, TEST_SECRET, type TestApp } from './support/test-app.ts';

type Http = (method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>) => Promise<Response>;
/** Calls the route, checks status and that the body matches the served OpenAPI document. */
type Call = (operationId: string, status: number, method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>) => Promise<{ res: Response; json: any }>;

const it = appTest(import.meta.filename).extend<{
  $file: { http: Http; call: Call; alice: string; bob: string; mallory: string; aliceSdk: ChatClient; roomId: string };
}>({
  http: [
    async ({ t }, use) =>
      use(async (method, path, token, body, headers = {}) =>
        fetch(t.url + path, {
          method,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
          ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        }),
      ),
    { scope: 'file' },
  ],
  call: [
    async ({ t, http }, use) => {
      const openapi = await servedOpenApi(t.url);
      await use(async (operationId, status, method, path, token, body, headers) => {
        const res = await http(method, path, token, body, headers);
        const json = (await res.json()) as unknown;
        expect(res.status, JSON.stringify(json)).toBe(status);
        openapi.expectValid(operationId, status, json);
        return { res, json: json as any };
      });
    },
    { scope: 'file' },
  ],
  alice: [async ({ t }, use) => use(await t.token('alice')), { scope: 'file' }],
  bob: [async ({ t }, use) => use(await t.token('bob')), { scope: 'file' }],
  mallory: [async ({ t }, use) => use(await t.token('mallory')), { scope: 'file' }],
  aliceSdk: [async ({ t }, use) => use(await t.client('alice')), { scope: 'file' }],
  roomId: [
    async ({ http, alice }, use) => {
      const res = await http('POST', '/rooms/', alice, { other_user: 'bob' });
      await use(((await res.json()) as { id: string }).id);
    },
    { scope: 'file' },
  ],
});

/**
 * POSTs `bodyBytes` on a raw connection as a blocking client does (Python's urllib): Connection:
 * close, no Expect: 100-continue, the whole body written in chunks before anything is read.
 * Resolves with the status line read after, or with the error writing or reading ended in.
 */
async function postWithoutReading(t: TestApp, path: string, token: string, bodyBytes: number, framing: 'content-length' | 'chunked'): Promise<string> {
  const { hostname, port } = new URL(t.url);
  const socket = connect(Number(port), hostname);
  socket.pause();
  const failures: Error[] = [];
  socket.on('error', (err) => failures.push(err));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const write = (data: string | Buffer) => new Promise<void>((resolve) => socket.write(data, () => resolve()));
  const length = framing === 'content-length' ? `Content-Length: ${bodyBytes}` : 'Transfer-Encoding: chunked';
  await write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n${length}\r\nConnection: close\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024, 'x');
  for (let sent = 0; sent < bodyBytes && !socket.destroyed; sent += chunk.length) {
    await write(framing === 'chunked' ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk);
    // A writer a little slower than the loopback, as a client across a network would be.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (framing === 'chunked' && !socket.destroyed) await write('0\r\n\r\n');
  if (socket.destroyed) return `write failed: ${failures[0]?.message ?? 'socket destroyed'}`;
  socket.resume();
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return answer.split('\r\n')[0] || `read failed: ${failures[0]?.message ?? 'closed without an answer'}`;
}

const messageCount = async (t: TestApp) => ((await t.sql<{ n: number }>('select count(*)::int as n from messages'))[0]!.n);

describe('messages', () => {
  it('POST creates a message (201, the seed’s five fields) and GET lists all messages oldest first', async ({ call, alice, bob, roomId }) => {
    const { json: sent } = await call('sendMessage', 201, 'POST', `/${roomId}/messages/`, alice, { content: 'hello', chat_room: roomId, sender: 'alice' });
    expect(Object.keys(sent).sort()).toEqual(['chat_room', 'content', 'created_at', 'id', 'sender']);
    await call('sendMessage', 201, 'POST', `/${roomId}/messages/`, bob, { content: 'hi alice', chat_room: roomId, sender: 'bob' });
    const { json: list } = await call('listMessages', 200, 'GET', `/${roomId}/messages/`, bob);
    expect(list.map((m: { content: string }) => m.content)).toEqual(['hello', 'hi alice']);
    expect(list[0]).toEqual(sent);
  });

  it('GET streams a long history completely and in order; ?limit=&cursor= pages with a Link header', async ({ t, call, alice, aliceSdk }) => {
    const room = (await aliceSdk.rooms.open.mutate({ otherUserId: 'carol' })).id;
    await t.sql(
      `with r as (update chat_rooms set last_seq = 2500 where id = $1 returning id)
       insert into messages (id, chat_room_id, sender_id, content, seq, created_at)
       select gen_random_uuid(), r.id, 'alice', 'm' || n, n, now() from r, generate_series(1, 2500) n`,
      [room],
    );
    const { json: all } = await call('listMessages', 200, 'GET', `/${room}/messages/`, alice);
    expect(all.map((m: { content: string }) => m.content)).toEqual(range(1, 2500).map((n) => `m${n}`));

    const paged: string[] = [];
    let next: string | undefined = `/${room}/messages/?limit=400`;
    while (next) {
      const { res, json } = await call('listMessages', 200, 'GET', next, alice);
      paged.push(...json.map((m: { content: string }) => m.content));
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    }
    expect(paged).toEqual(range(1, 2500).map((n) => `m${n}`));
  });

  it('GET’s bytes are exactly the tRPC history in the legacy shape, JSON.stringify’d, whatever the content', async ({ http, alice, aliceSdk }) => {
    const room = (await aliceSdk.rooms.open.mutate({ otherUserId: 'dave' })).id;
    const tricky = ['quote " backslash \\ slash /', 'tab\t newline\n return\r \b \f', '\u0001\u001f\u007f', 'é 漢字 😀 \u{10FFFF}', 'line\u2028para\u2029', '<script>&amp;</script>', ' padded ', '{"json":[1,2]}'];
    const random = fc.sample(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => MessageContent.safeParse(s).success), { numRuns: 40, seed: 11 });
    for (const content of [...tricky, ...random]) await aliceSdk.messages.send.mutate({ roomId: room, content });
    const [edited, deleted] = (await aliceSdk.messages.list.query({ roomId: room, limit: 2 })).items;
    await aliceSdk.messages.edit.mutate({ roomId: room, messageId: edited!.id, content: 'edited "now"' });
    await aliceSdk.messages.delete.mutate({ roomId: room, messageId: deleted!.id });
    const { items } = await aliceSdk.messages.list.query({ roomId: room, limit: 500 });

    const whole = await http('GET', `/${room}/messages/`, alice);
    expect(await whole.text()).toBe(JSON.stringify(items.map(toLegacyMessage)));
    const page = await http('GET', `/${room}/messages/?limit=5&cursor=3`, alice);
    expect(await page.text()).toBe(JSON.stringify(items.slice(3, 8).map(toLegacyMessage)));
  });

  it('a message POSTed over REST reaches a legacy WebSocket client and a tRPC subscriber', async ({ t, call, alice, bob, aliceSdk, roomId }) => {
    const legacy = await openLegacySocket(t.url, 'bob', 'alice', bob);
    const sub = record(aliceSdk, roomId, String((await aliceSdk.messages.list.query({ roomId, limit: 500 })).items.length));
    await sub.started;
    const { json: sent } = await call('sendMessage', 201, 'POST', `/${roomId}/messages/`, alice, { content: 'across surfaces', chat_room: roomId, sender: 'alice' });
    expect(await legacy.waitFor((f) => f.action === 'new_message')).toEqual({ action: 'new_message', message: sent });
    await sub.waitForMessages(1);
    // Bob's presence (his legacy socket just opened) is decided apart from the send and may come either side of it.
    expect(sub.events.filter((e) => e.type === 'message')).toEqual([{ type: 'message', message: { ...sent, seq: expect.any(Number) } }]);
    sub.unsubscribe();
    legacy.close();
  });
});

describe('rooms', () => {
  it('POST /rooms/ gets or creates the caller’s room with a user; GET /rooms/ lists them', async ({ call, bob, roomId }) => {
    const { json: room } = await call('openRoom', 200, 'POST', '/rooms/', bob, { other_user: 'alice' });
    expect(room).toEqual({ id: roomId, participant1: 'alice', participant2: 'bob', name: null });
    const { json: rooms } = await call('listRooms', 200, 'GET', '/rooms/', bob);
    expect(rooms).toContainEqual(room);
  });
});

describe('bad input: a clear 4xx, the service keeps answering, nothing half-written', () => {
  const key = new TextEncoder().encode(TEST_SECRET);
  const cases: Array<[string, (fixtures: { alice: string; mallory: string; roomId: string }) => Promise<[string, string, string | undefined, unknown, Record<string, string>?]>, number, Record<string, unknown>]> = [
    ['missing token', async ({ roomId }) => ['sendMessage', 'POST', undefined, { content: 'x', chat_room: roomId, sender: 'alice' }], 401, { detail: 'Authentication credentials were not provided.' }],
    ['expired token', async ({ roomId }) => ['sendMessage', 'POST', await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt(Math.floor(Date.now() / 1000) - 70).setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(key), { content: 'x', chat_room: roomId, sender: 'alice' }], 401, { detail: 'Token has expired.' }],
    ['forged token', async ({ roomId }) => ['sendMessage', 'POST', await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(new TextEncoder().encode('f'.repeat(40))), { content: 'x', chat_room: roomId, sender: 'alice' }], 401, { detail: 'Token is invalid.' }],
    ['non-participant', async ({ mallory, roomId }) => ['sendMessage', 'POST', mallory, { content: 'x', chat_room: roomId, sender: 'mallory' }], 404, { detail: 'Not found.' }],
    ['spoofed sender', async ({ alice, roomId }) => ['sendMessage', 'POST', alice, { content: 'x', chat_room: roomId, sender: 'bob' }], 403, { sender: ['Must be the authenticated user.'] }],
    ['mismatched chat_room', async ({ alice }) => ['sendMessage', 'POST', alice, { content: 'x', chat_room: crypto.randomUUID(), sender: 'alice' }], 400, { chat_room: ['Must be the id of the chat room in the URL.'] }],
    ['NUL in content', async ({ alice, roomId }) => ['sendMessage', 'POST', alice, { content: 'a\u0000b', chat_room: roomId, sender: 'alice' }], 400, { content: ['Null characters are not allowed.'] }],
    ['empty content', async ({ alice, roomId }) => ['sendMessage', 'POST', alice, { content: '  ', chat_room: roomId, sender: 'alice' }], 400, { content: ['This field may not be blank.'] }],
    ['missing fields', async ({ alice }) => ['sendMessage', 'POST', alice, {}], 400, { content: ['This field is required.'], chat_room: ['This field is required.'], sender: ['This field is required.'] }],
    ['oversized content', async ({ alice, roomId }) => ['sendMessage', 'POST', alice, { content: 'x'.repeat(4001), chat_room: roomId, sender: 'alice' }], 400, { content: ['Ensure this field has no more than 4000 characters.'] }],
    ['oversized body', async ({ alice, roomId }) => ['sendMessage', 'POST', alice, { content: 'x'.repeat(70_000), chat_room: roomId, sender: 'alice' }], 413, { detail: 'Request body is too large.' }],
    ['invalid JSON', async ({ alice }) => ['sendMessage', 'POST', alice, '{"content": "x",'], 400, { detail: expect.stringMatching(/^JSON parse error/) }],
    ['unknown room on GET', async ({ alice }) => ['listMessages', 'GET', alice, undefined], 404, { detail: 'Not found.' }],
  ];

  it.for(cases)('%s', async ([_name, request, status, expected], { t, http, call, alice, mallory, roomId }) => {
    const [operationId, method, token, body] = await request({ alice, mallory, roomId });
    const before = await messageCount(t);
    const path = _name === 'unknown room on GET' ? `/${crypto.randomUUID()}/messages/` : `/${roomId}/messages/`;
    const { res, json } = await call(operationId, status, method, path, token, body);
    expect(json).toMatchObject(expected);
    if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await messageCount(t)).toBe(before);
    expect((await http('GET', '/healthz')).status).toBe(200);
  });

  it.for(['content-length', 'chunked'] as const)('a 2 MiB body (%s) from a client that writes it all before reading gets the 413, every time', async (framing, { t, http, alice, roomId }) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      expect({ attempt, status: await postWithoutReading(t, `/${roomId}/messages/`, alice, 2 * 1024 * 1024, framing) }).toEqual({ attempt, status: 'HTTP/1.1 413 Payload Too Large' });
    }
    expect((await http('GET', '/healthz')).status).toBe(200);
  });

  it('a malformed room id in the path is a 404, as with the original’s <uuid:> route', async ({ call, alice, roomId }) => {
    await call('listMessages', 404, 'GET', '/not-a-uuid/messages/', alice);
    await call('sendMessage', 404, 'POST', '/not-a-uuid/messages/', alice, { content: 'x', chat_room: roomId, sender: 'alice' });
  });

  it('GET without a token is a 401 with WWW-Authenticate: Bearer', async ({ call, roomId }) => {
    const { res } = await call('listMessages', 401, 'GET', `/${roomId}/messages/`);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="parley"');
  });
});

describe('legacy field errors in DRF’s wording, every one at once', () => {
  const other = crypto.randomUUID();
  it.for([
    ['a blank content and a chat_room of another room', { content: '  ', chat_room: other, sender: 'alice' }, { content: ['This field may not be blank.'], chat_room: ['Must be the id of the chat room in the URL.'] }],
    ['missing fields', {}, { content: ['This field is required.'], chat_room: ['This field is required.'], sender: ['This field is required.'] }],
    ['null and wrong types', { content: null, chat_room: 7, sender: ['alice'] }, { content: ['This field may not be null.'], chat_room: ['Must be a valid UUID.'], sender: ['Not a valid string.'] }],
    ['content too long and a malformed chat_room', { content: 'x'.repeat(4001), chat_room: 'nope', sender: 'alice' }, { content: ['Ensure this field has no more than 4000 characters.'], chat_room: ['Must be a valid UUID.'] }],
    ['a spoofed sender beside another field error', { content: '', chat_room: 'this room', sender: 'bob' }, { content: ['This field may not be blank.'], sender: ['Must be the authenticated user.'] }],
    ['NUL in content', { content: 'a\u0000', chat_room: 'this room', sender: 'alice' }, { content: ['Null characters are not allowed.'] }],
    ['a body that is not an object', [1, 2], { non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] }],
  ] as const)('POST messages, %s', async ([_name, body, expected], { http, alice, roomId }) => {
    const withRoom = !Array.isArray(body) && (body as { chat_room?: unknown }).chat_room === 'this room' ? { ...body, chat_room: roomId } : body;
    const res = await http('POST', `/${roomId}/messages/`, alice, withRoom);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
  });

  it.for([
    ['?limit=0', { limit: ['Ensure this value is greater than or equal to 1.'] }],
    ['?limit=501', { limit: ['Ensure this value is less than or equal to 500.'] }],
    ['?limit=abc&cursor=-1', { limit: ['A valid integer is required.'], cursor: ['Ensure this value is greater than or equal to 0.'] }],
    ['?cursor=1.5', { cursor: ['A valid integer is required.'] }],
  ] as const)('GET messages%s', async ([query, expected], { http, alice, roomId }) => {
    const res = await http('GET', `/${roomId}/messages/${query}`, alice);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
  });

  it.for([
    [{}, { other_user: ['This field is required.'] }],
    [{ other_user: '' }, { other_user: ['This field may not be blank.'] }],
    [{ other_user: 'b'.repeat(65), name: 'n'.repeat(256) }, { other_user: ['Ensure this field has no more than 64 characters.'], name: ['Ensure this field has no more than 255 characters.'] }],
  ] as const)('POST /rooms/ %j', async ([body, expected], { http, alice }) => {
    const res = await http('POST', '/rooms/', alice, body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(expected);
  });
});
