import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { openTrpcSocket } from './support/raw-trpc.ts';
import { hasRedisServer, startTestRedis, type TestRedis } from './support/redis-server.ts';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.ts';

const SWEEP_MS = 300;

let redis: TestRedis | undefined;
beforeAll(async () => {
  if (hasRedisServer) redis = await startTestRedis();
  else console.warn('SKIPPED the Redis engine cases: no redis-server binary on PATH (CI has one)');
});
afterAll(() => redis?.stop());

const status = async (url: string, token: string) => (await fetch(`${url}/rooms/`, { headers: { authorization: `Bearer ${token}` } })).status;

describe.each([
  { engine: 'postgres', env: (): Record<string, string> => ({ FANOUT: 'postgres', FANOUT_SWEEP_MS: String(SWEEP_MS) }) },
  { engine: 'redis', env: (): Record<string, string> => ({ REDIS_URL: redis!.url, FANOUT_SWEEP_MS: String(SWEEP_MS) }) },
])('bans across two instances on one database, $engine engine', ({ engine, env }) => {
  let one: TestApp;
  let two: PeerApp;
  let users = 0;
  beforeAll(async () => {
    if (engine === 'redis' && !redis) return;
    one = await startTestApp(`${import.meta.filename}-${engine}`, env());
    two = await startPeerApp(one, env());
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
  });

  /** A user with a tRPC socket and a ws/chat socket open on each instance. */
  async function connected() {
    const n = ++users;
    const [id, other] = [`ban${n}-${engine}`, `ban${n}-other-${engine}`];
    const token = await one.token(id);
    const sockets = [];
    for (const url of [one.url, two.url]) {
      const trpc = await openTrpcSocket(url, token);
      expect((await trpc.call('query', 'rooms.list', {})).result).toBeDefined();
      sockets.push({ closed: trpc.closed }, { closed: (await openLegacySocket(url, id, other, token)).closed.then((c) => c.code) });
    }
    return { id, token, sockets };
  }

  it('a ban made on one instance closes the user’s sockets on both within 1 s with 4512 and refuses them on both; unbanning on the other restores', async ({ skip }) => {
    if (engine === 'redis' && !redis) skip();
    const { id, token, sockets } = await connected();
    const admin = createChatClient({ url: one.url, token: await signToken({ secret: TEST_SECRET, userId: 'mod', claims: { role: 'admin' } }) });
    try {
      const started = performance.now();
      await admin.admin.users.ban.mutate({ userId: id, reason: 'two instances' });
      const codes = await Promise.all(sockets.map((s) => s.closed));
      expect(performance.now() - started).toBeLessThan(1000);
      expect(codes).toEqual([4512, 4512, 4512, 4512]);
      expect([await status(one.url, token), await status(two.url, token)]).toEqual([401, 401]);

      const adminThere = createChatClient({ url: two.url, token: await signToken({ secret: TEST_SECRET, claims: { role: 'admin' } }) });
      await adminThere.admin.users.unban.mutate({ userId: id });
      await adminThere.close();
      expect(await status(two.url, token)).toBe(200);
      await vi.waitFor(async () => expect(await status(one.url, token)).toBe(200), { timeout: SWEEP_MS * 4, interval: 20 });
    } finally {
      await admin.close();
    }
  });

  it('a ban no fan-out event announced (written straight to the database) holds on every instance within two sweeps and closes sockets there', async ({ skip }) => {
    if (engine === 'redis' && !redis) skip();
    const { id, token, sockets } = await connected();
    const started = performance.now();
    await one.sql(`with banned as (insert into user_bans (user_id, reason, banned_by) values ($1, 'quiet', 'db')) update ban_epoch set n = n + 1`, [id]);
    const codes = await Promise.all(sockets.map((s) => s.closed));
    expect(performance.now() - started).toBeLessThanOrEqual(SWEEP_MS * 2 + 200);
    expect(codes).toEqual([4512, 4512, 4512, 4512]);
    expect([await status(one.url, token), await status(two.url, token)]).toEqual([401, 401]);
  });
});
