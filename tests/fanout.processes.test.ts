import { afterAll, describe, expect, it, vi } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { engineCases } from './support/engine-cases.ts';
import { instanceFleet } from './support/instance-process.ts';
import { range, record } from './support/subscription.ts';
import { TEST_SECRET } from './support/test-app.ts';

const engines = engineCases();
const fleet = instanceFleet();
afterAll(() => fleet.dispose());

const token = (userId: string) => signToken({ secret: TEST_SECRET, userId });

describe.each(engines)('an instance in a process of its own and a second instance, $engine engine', ({ engine, env, skip }) => {
  it.skipIf(skip)(
    'SIGKILL of one instance while clients send to it: every acknowledged send is stored, seqs are dense, the other instance’s subscribers get every stored message once',
    async () => {
      const db = await fleet.database(`processes_${engine}`);
      // A is killed, so it runs as a process; B, which survives it, runs in this one.
      const a = await fleet.start({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '300', ...env() });
      const b = await fleet.startInProcess({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '300', ...env() });
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

      const rows = await db.messages(room.id);
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
});
