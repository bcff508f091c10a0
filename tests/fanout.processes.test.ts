import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/auth/sign-token.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { hasRedisServer, startTestRedis, type TestRedis } from './support/redis-server.ts';
import { createTestDatabase, startInstanceProcess, type InstanceProcess, type TestDatabase } from './support/instance-process.ts';
import { range, record } from './support/subscription.ts';
import { TEST_SECRET } from './support/test-app.ts';

let redis: TestRedis | undefined;
beforeAll(async () => {
  if (hasRedisServer) redis = await startTestRedis();
  else console.warn('SKIPPED the Redis engine case: no redis-server binary on PATH (CI has one)');
});
afterAll(() => redis?.stop());

const token = (userId: string) => signToken({ secret: TEST_SECRET, userId });

describe.each([
  { engine: 'postgres', env: (): Record<string, string> => ({ FANOUT: 'postgres' }) },
  { engine: 'redis', env: (): Record<string, string> => ({ REDIS_URL: redis!.url }) },
])('two server processes, $engine engine', ({ engine, env }) => {
  let db: TestDatabase;
  const servers: InstanceProcess[] = [];
  afterAll(async () => {
    for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.ended));
    await db?.drop();
  });

  it.skipIf(engine === 'redis' && !hasRedisServer)(
    'SIGKILL of one instance while clients send to it: every acknowledged send is stored, seqs are dense, the other instance’s subscribers get every stored message once',
    async () => {
      db = await createTestDatabase(`processes_${engine}`);
      // The first start migrates; the second then finds the schema in place.
      const a = await startInstanceProcess({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '300', ...env() });
      const b = await startInstanceProcess({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '300', ...env() });
      servers.push(a, b);
      const bob = createChatClient({ url: b.url, token: await token('bob') });
      const room = await bob.rooms.open.mutate({ otherUserId: 'alice' });
      const sub = record(bob, room.id);
      await sub.started;
      const legacy = await openLegacySocket(b.url, 'bob', 'alice', await token('bob'));

      const acked: string[] = [];
      const refused: string[] = [];
      const aliceToken = await token('alice');
      let killed = false;
      const sender = async (n: number) => {
        for (let i = 0; !killed; i++) {
          const content = `s${n}-${i}`;
          try {
            const res = await fetch(`${a.url}/${room.id}/messages/`, {
              method: 'POST',
              headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
              body: JSON.stringify({ content, chat_room: room.id, sender: 'alice' }),
            });
            if (res.status === 201) acked.push(content);
            else refused.push(`${res.status} ${await res.text()}`);
          } catch {
            return;
          }
        }
      };
      const senders = Promise.all(range(1, 8).map(sender));
      await vi.waitFor(() => expect(acked.length, `refused: ${refused.slice(0, 3).join(' | ')}; A: ${a.output().slice(-2000)}`).toBeGreaterThanOrEqual(150), {
        timeout: 20_000,
        interval: 2,
      });
      a.child.kill('SIGKILL');
      killed = true;
      expect(await a.ended).toBe('SIGKILL');
      await senders;

      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      const rows = (await c.query<{ seq: number; content: string }>('select seq::int as seq, content from messages where chat_room_id = $1 order by seq', [room.id])).rows;
      await c.end();
      expect(rows.map((r) => r.seq)).toEqual(range(1, rows.length));
      const stored = new Set(rows.map((r) => r.content));
      expect(acked.filter((content) => !stored.has(content))).toEqual([]);

      // Some of them were committed by A but never announced: B's sweep finds them.
      await sub.waitForMessages(rows.length, 10_000);
      expect(sub.seqs()).toEqual(range(1, rows.length));
      await vi.waitFor(() => expect(legacy.frames.filter((f) => f.action === 'new_message')).toHaveLength(rows.length), { timeout: 10_000, interval: 10 });
      const legacyContents = legacy.frames.flatMap((f) => (f.action === 'new_message' ? [f.message.content] : []));
      expect(new Set(legacyContents)).toEqual(stored);
      legacy.close();
      await bob.close();
    },
  );

  it.skipIf(engine === 'redis' && !hasRedisServer)(
    'an instance frozen (SIGSTOP) for 5 s under load: sends through the other keep succeeding, and once resumed its subscriber catches up exactly',
    async () => {
      db ??= await createTestDatabase(`processes_${engine}`);
      // No sweep: what the frozen instance missed must come from the engine's own queue.
      const a = await startInstanceProcess({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '3600000', ...env() });
      const b = await startInstanceProcess({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '3600000', ...env() });
      servers.push(a, b);
      const carol = createChatClient({ url: b.url, token: await token('carol') });
      const room = await carol.rooms.open.mutate({ otherUserId: 'dave' });
      const sub = record(carol, room.id, '0');
      await sub.started;
      const daveToken = await token('dave');
      const outcomes: number[] = [];
      let frozen = false;
      let stop = false;
      const send = async () => {
        while (!stop) {
          const res = await fetch(`${a.url}/${room.id}/messages/`, {
            method: 'POST',
            headers: { authorization: `Bearer ${daveToken}`, 'content-type': 'application/json' },
            body: JSON.stringify({ content: `f${outcomes.length}${frozen ? ' frozen' : ''}`, chat_room: room.id, sender: 'dave' }),
          });
          outcomes.push(res.status);
        }
      };
      const senders = Promise.all(range(1, 4).map(send));
      await vi.waitFor(() => expect(outcomes.length).toBeGreaterThanOrEqual(50), { timeout: 20_000, interval: 5 });
      b.child.kill('SIGSTOP');
      frozen = true;
      const atFreeze = outcomes.length;
      await new Promise((r) => setTimeout(r, 5_000));
      const duringFreeze = outcomes.length - atFreeze;
      b.child.kill('SIGCONT');
      stop = true;
      await senders;
      expect(duringFreeze).toBeGreaterThan(0);
      expect(outcomes.every((status) => status === 201)).toBe(true);
      await sub.waitForMessages(outcomes.length, 20_000);
      expect(sub.seqs()).toEqual(range(1, outcomes.length));
      await carol.close();
    },
  );
});
