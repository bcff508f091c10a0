import { afterAll, describe, expect, it, vi } from 'vitest';
import { createChatClient, type ChatClient, type ConnectionStatus } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { engineCases } from './support/engine-cases.ts';
import { instanceFleet } from './support/instance-process.ts';
import { range, record } from './support/subscription.ts';
import { TEST_SECRET } from './support/test-app.ts';

// The cluster engine's own failover (a master killed, its replica promoted) is in fanout.outage;
// here, beside the other engines' cases, its 30 s drain overran the test's minute on a busy machine.
const engines = engineCases(['postgres', 'redis', 'nats']);
const fleet = instanceFleet();
const clients: ChatClient[] = [];
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await fleet.dispose();
});

describe.each(engines)('SDK clients given both instances, $engine engine', ({ engine, env, skip }) => {
  it.skipIf(skip)(
    'SIGTERM of the instance they use, under load: it drains and exits 0, the clients move to the other, sends are stored once each, subscriptions resume without gap or duplicate',
    async () => {
      const db = await fleet.database(`failover_${engine}`);
      // A gets SIGTERM, so it runs as a process; B, which takes its clients, runs in this one.
      const a = await fleet.start({ DATABASE_URL: db.url, ...env() });
      const b = await fleet.startInProcess({ DATABASE_URL: db.url, ...env() });
      // A first in every list: all clients start on A.
      const client = async (user: string) => {
        const c = createChatClient({ url: [a.url, b.url], token: await signToken({ secret: TEST_SECRET, userId: user }), retryDelayMs: () => 50 });
        clients.push(c);
        return c;
      };
      const bob = await client('bob');
      const room = await bob.rooms.open.mutate({ otherUserId: 'alice' });
      const watchers = [bob, await client('alice')];
      const subs = watchers.map((w) => record(w, room.id));
      await Promise.all(subs.map((s) => s.started));
      const statuses: ConnectionStatus[][] = watchers.map((w) => {
        const seen: ConnectionStatus[] = [];
        w.connection.subscribe((s) => seen.push(s.status));
        return seen;
      });

      // Four of alice's devices, each sending through its outbox (retried with its clientId).
      const senders = await Promise.all(range(1, 4).map(() => client('alice')));
      const acked: string[] = [];
      let stop = false;
      const loops = Promise.all(
        senders.map(async (s, n) => {
          for (let i = 0; !stop; i++) {
            const content = `d${n}-${i}`;
            await s.outbox.send(room.id, content);
            acked.push(content);
          }
        }),
      );
      await vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(100), { timeout: 20_000, interval: 5 });
      a.child.kill('SIGTERM');
      const atTerm = acked.length;
      expect(await a.ended, a.output().slice(-2000)).toBe(0);
      // Sends go on, now through B.
      await vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(atTerm + 100), { timeout: 20_000, interval: 5 });
      stop = true;
      await loops;

      const rows = await db.messages(room.id);
      expect(rows.map((r) => r.seq)).toEqual(range(1, rows.length));
      // Each send stored once, none stored that was not acknowledged.
      expect(rows.map((r) => r.content).sort()).toEqual([...acked].sort());

      for (const [i, sub] of subs.entries()) {
        await sub.waitForMessages(rows.length, 20_000);
        expect(sub.seqs()).toEqual(range(1, rows.length));
        expect(sub.events.flatMap((e) => (e.type === 'message' ? [e.message.content] : []))).toEqual(rows.map((r) => r.content));
        // They did lose A and come back (on B: A is gone).
        expect(statuses[i]).toContain('reconnecting');
        expect(watchers[i]!.connection.get().status).toBe('open');
      }
    },
  );
});
