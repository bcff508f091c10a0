import { expect, vi } from 'vitest';
import type { InboxEvent } from '../client-sdk/index.ts';
import { openTrpcSocket } from './support/raw-trpc.ts';
import { appTest, type TestApp } from './support/test-app.ts';

const it = appTest(import.meta.filename);
const USERS = 200;
/** Far fewer than one transaction per user, with room for a loaded machine splitting the burst. */
const FEW = 20;
const WAIT = { timeout: 15_000, interval: 50 };

/** `watcher` shares an accepted room with each of `users`; returns what their presence on `watcher`'s inbox stream was, in order. */
async function watchFrom(t: TestApp, watcher: string, users: string[]) {
  await t.sql(`insert into users (id) select json_array_elements_text($1::json) union all select $2::text`, [JSON.stringify(users), watcher]);
  await t.sql(`insert into chat_rooms (id, participant1_id, participant2_id, accepted_at) select gen_random_uuid(), $2::text, u, now() from json_array_elements_text($1::json) u`, [
    JSON.stringify(users),
    watcher,
  ]);
  const events: InboxEvent[] = [];
  (await t.client(watcher)).rooms.onEvent.subscribe(undefined, { onData: (e) => events.push(e) });
  await vi.waitFor(() => expect(events).toContainEqual({ type: 'ready' }), WAIT);
  return (user: string) => events.flatMap((e) => (e.type === 'presence' && e.user === user ? [e] : []));
}

/** Transactions that last wrote `table`'s rows of `users` (each writing transaction stamps its id on the rows it writes). */
async function writers(t: TestApp, table: 'presence_users' | 'users', users: string[]) {
  const column = table === 'users' ? 'id' : 'user_id';
  const [row] = await t.sql<{ n: number }>(`select count(distinct xmin::text)::int as n from ${table} where ${column} in (select json_array_elements_text($1::json))`, [JSON.stringify(users)]);
  return row!.n;
}

it(`${USERS} users whose sockets authenticate at once are each announced online once, in a few transactions; going offline together, likewise`, async ({ t }) => {
  const users = Array.from({ length: USERS }, (_, i) => `burst-${i}`);
  const presenceOf = await watchFrom(t, 'burst_watcher', users);
  // Open first, authenticate together: a socket counts toward presence from its first call.
  const sockets = await Promise.all(users.map(async (u) => openTrpcSocket(t.url, await t.token(u))));
  const answers = await Promise.all(sockets.map((s) => s.call('query', 'rooms.list', { limit: 1 })));
  expect(answers.filter((a) => a.error)).toEqual([]);

  await vi.waitFor(() => expect(users.filter((u) => presenceOf(u).length === 0)).toEqual([]), WAIT);
  await t.app.services.presence.settled();
  expect(users.filter((u) => presenceOf(u).map((e) => e.online).join() !== 'true')).toEqual([]);
  // Not one per user: a reconnect storm of thousands would queue that many transactions, one after another.
  expect(await writers(t, 'presence_users', users)).toBeLessThanOrEqual(FEW);

  for (const s of sockets) s.ws.close();
  await Promise.all(sockets.map((s) => s.closed));
  await vi.waitFor(() => expect(users.filter((u) => presenceOf(u).length < 2)).toEqual([]), WAIT);
  await t.app.services.presence.settled();
  for (const u of users) expect(presenceOf(u)).toEqual([expect.objectContaining({ online: true }), expect.objectContaining({ online: false, last_seen_at: expect.any(String) })]);
  expect(await t.sql(`select user_id from presence_users where user_id in (select json_array_elements_text($1::json))`, [JSON.stringify(users)])).toEqual([]);
  // The same few transactions stamped every last-seen time.
  expect(await writers(t, 'users', users)).toBeLessThanOrEqual(FEW);
});

it('a user online, offline, online and offline again within one turn, beside a burst of others, is announced in that order and ends offline', async ({ t }) => {
  const others = Array.from({ length: 50 }, (_, i) => `beside-${i}`);
  const presenceOf = await watchFrom(t, 'flip_watcher', [...others, 'flip']);
  const presence = t.app.services.presence;
  // All of it queued before the first decision: no two changes of `flip` may be decided as one
  // (an arrival and a departure in one statement would both see the row as it was, and leave it behind).
  const release = others.map((u) => presence.connect(u));
  presence.connect('flip')();
  presence.connect('flip')();
  await presence.settled();

  await vi.waitFor(() => expect(presenceOf('flip').map((e) => e.online)).toEqual([true, false, true, false]), WAIT);
  expect(presenceOf('flip')[3]).toMatchObject({ last_seen_at: expect.any(String) });
  expect(await t.sql(`select user_id from presence_users where user_id = 'flip'`)).toEqual([]);
  expect(await presence.now('flip')).toMatchObject({ online: false });
  await vi.waitFor(() => expect(others.filter((u) => presenceOf(u).length !== 1)).toEqual([]), WAIT);

  // Back again: online, and held.
  const flip = presence.connect('flip');
  await presence.settled();
  await vi.waitFor(() => expect(presenceOf('flip').map((e) => e.online)).toEqual([true, false, true, false, true]), WAIT);
  expect(await t.sql(`select user_id from presence_users where user_id = 'flip'`)).toEqual([{ user_id: 'flip' }]);
  flip();
  release.forEach((r) => r());
  await presence.settled();
  expect(await t.sql(`select user_id from presence_users where user_id = 'flip' or user_id like 'beside-%'`)).toEqual([]);
});
