import pg from 'pg';
import { afterAll, expect, it, vi } from 'vitest';
import { createChatClient, type ChatClient, type InboxEvent } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { createTestDatabase, startInstanceProcess, type InstanceProcess, type TestDatabase } from './support/instance-process.ts';
import { TEST_SECRET } from './support/test-app.ts';

const HEARTBEAT_MS = 200;
const TIMEOUT_MS = 1_000;

let db: TestDatabase | undefined;
let sql: pg.Client | undefined;
const servers: InstanceProcess[] = [];
const clients: ChatClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.ended));
  await sql?.end();
  await db?.drop();
});

async function client(server: InstanceProcess, user: string) {
  const c = createChatClient({ url: server.url, token: await signToken({ secret: TEST_SECRET, userId: user }) });
  clients.push(c);
  return c;
}

/** The user's inbox stream, recorded; resolves once it listens to every room (`ready`). */
async function inbox(c: ChatClient) {
  const events: InboxEvent[] = [];
  const sub = c.rooms.onEvent.subscribe(undefined, { onData: (e) => events.push(e) });
  await vi.waitFor(() => expect(events).toContainEqual({ type: 'ready' }), { timeout: 10_000 });
  return { events, unsubscribe: () => sub.unsubscribe() };
}

const presenceOf = (events: InboxEvent[], user: string) => events.flatMap((e) => (e.type === 'presence' && e.user === user ? [e.online] : []));

it('two instance processes: online while a socket is open on either; offline once the last closes, on both streams; a killed instance’s users go offline within the timeout', async () => {
  db = await createTestDatabase('presence_instances');
  const env = { DATABASE_URL: db.url, FANOUT: 'postgres', PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS), PRESENCE_TIMEOUT_MS: String(TIMEOUT_MS) };
  // The first start migrates; the second then finds the schema in place.
  const a = await startInstanceProcess(env);
  const b = await startInstanceProcess(env);
  servers.push(a, b);
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
  const holders = async () => (await sql!.query<{ n: number }>(`select count(*)::int as n from presence_users where user_id = 'una'`)).rows[0]!.n;

  // wes watches from both instances; una shares a room with him.
  const room = await (await client(a, 'una')).rooms.open.mutate({ otherUserId: 'wes' });
  const wesA = await client(a, 'wes');
  const onA = await inbox(wesA);
  const onB = await inbox(await client(b, 'wes'));

  // una opens a socket on A, then one on B: online once, heard on both.
  const unaA = await client(a, 'una');
  const unaOnA = await inbox(unaA);
  await vi.waitFor(() => expect([presenceOf(onA.events, 'una'), presenceOf(onB.events, 'una')]).toEqual([[true], [true]]), { timeout: 10_000 });
  const unaB = await client(b, 'una');
  await inbox(unaB);
  await vi.waitFor(async () => expect(await holders()).toBe(2));

  // Her socket on A closes: A lets go of her, but B still holds her, so nobody hears "offline".
  unaOnA.unsubscribe();
  await unaA.close();
  await vi.waitFor(async () => expect(await holders()).toBe(1), { timeout: 10_000 });
  // A message published after A's decision reaches both streams after anything A published with it.
  await wesA.messages.send.mutate({ roomId: room.id, content: 'still there?' });
  for (const s of [onA, onB]) await vi.waitFor(() => expect(s.events.some((e) => e.type === 'message')).toBe(true), { timeout: 10_000 });
  expect([presenceOf(onA.events, 'una'), presenceOf(onB.events, 'una')]).toEqual([[true], [true]]);
  expect((await wesA.rooms.list.query()).items[0]!.other).toMatchObject({ user: 'una', online: true });

  // Her last socket, on B, closes: offline, on both instances' streams.
  await unaB.close();
  await vi.waitFor(() => expect([presenceOf(onA.events, 'una'), presenceOf(onB.events, 'una')]).toEqual([[true, false], [true, false]]), { timeout: 10_000 });
  await vi.waitFor(async () => expect((await wesA.rooms.list.query()).items[0]!.other).toMatchObject({ online: false, last_seen_at: expect.any(String) }));

  // Online again, through B only; then B dies without a word. A reaps it and announces her offline.
  await inbox(await client(b, 'una'));
  await vi.waitFor(() => expect(presenceOf(onA.events, 'una')).toEqual([true, false, true]), { timeout: 10_000 });
  b.child.kill('SIGKILL');
  await b.ended;
  const killedAt = performance.now();
  await vi.waitFor(() => expect(presenceOf(onA.events, 'una')).toEqual([true, false, true, false]), { timeout: 10_000, interval: 20 });
  // Silent for TIMEOUT_MS, noticed at A's next heartbeat; the rest is slack for a loaded machine.
  expect(performance.now() - killedAt).toBeLessThan(TIMEOUT_MS + HEARTBEAT_MS + 2_000);
  expect(await holders()).toBe(0);
  expect((await wesA.rooms.list.query()).items[0]!.other).toMatchObject({ online: false });
}, 90_000);
