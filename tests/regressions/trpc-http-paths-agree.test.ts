import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/test-app.ts';

// tRPC calls over HTTP take a direct path to the procedure (server/transport/trpc/trpc-json-calls.ts).
// tRPC's own handler still answers when asked for its `trpc-accept` header; both must agree.
let t: TestApp;
let roomId: string;
let headers: Record<string, string>;
beforeAll(async () => {
  t = await startTestApp(import.meta.filename);
  headers = { authorization: `Bearer ${await t.token('alice')}`, 'content-type': 'application/json' };
  roomId = (await (await t.client('alice')).rooms.open.mutate({ otherUserId: 'bob' })).id;
});
afterAll(() => t?.close());

async function both(path: string, init: RequestInit = {}) {
  const call = async (extra: Record<string, string>) => {
    const res = await fetch(`${t.url}/trpc/${path}`, { ...init, headers: { ...headers, ...extra } });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  return { direct: await call({}), trpc: await call({ 'trpc-accept': 'application/json' }) };
}

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
const withoutVolatile = (body: unknown) => JSON.parse(JSON.stringify(body).replace(/"(id|created_at)":"[^"]+"/g, '"$1":"…"').replace(/"seq":\d+/g, '"seq":0'));

const NO_ROOM = '00000000-0000-4000-8000-000000000000';
const cases: Record<string, () => [string, RequestInit]> = {
  'a query': () => [`messages.list?input=${q({ roomId })}`, {}],
  'a batch of queries': () => [`messages.list,rooms.list?batch=1&input=${q({ 0: { roomId } })}`, {}],
  'a query with invalid input': () => [`messages.list?input=${q({ roomId: 'nope' })}`, {}],
  'a batch where one call fails (207)': () => [`messages.list,messages.list?batch=1&input=${q({ 0: { roomId }, 1: { roomId: NO_ROOM } })}`, {}],
  'a mutation': () => ['rooms.open', { method: 'POST', body: JSON.stringify({ otherUserId: 'bob' }) }],
  'a batched mutation with a domain error': () => ['messages.send?batch=1', { method: 'POST', body: JSON.stringify({ 0: { roomId: NO_ROOM, content: 'x' } }) }],
};

it.each(Object.keys(cases))('%s: the direct path answers exactly as tRPC’s handler', async (name) => {
  const [path, init] = cases[name]!();
  const { direct, trpc } = await both(path, init);
  expect(direct.status).toBe(trpc.status);
  expect(withoutVolatile(direct.body)).toEqual(withoutVolatile(trpc.body));
});

it('a send through each path is stored once and answered in the same shape', async () => {
  const { direct, trpc } = await both('messages.send?batch=1', { method: 'POST', body: JSON.stringify({ 0: { roomId, content: 'via both' } }) });
  expect(direct.status).toBe(200);
  expect(withoutVolatile(direct.body)).toEqual(withoutVolatile(trpc.body));
  expect(await t.sql("select seq from messages where content = 'via both' order by seq")).toHaveLength(2);
});
