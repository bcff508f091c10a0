import { describe, expect, test, vi } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { hasPgBouncer, startTestPgBouncer, type TestPgBouncer } from './support/pgbouncer.ts';
import { range, record } from './support/subscription.ts';
import { ADMIN_URL, startTestApp, type TestApp } from './support/test-app.ts';

if (!hasPgBouncer) console.warn('SKIPPED the PgBouncer cases: no pgbouncer binary (CI installs it)');

// No sweep: live events must cross through the LISTEN session alone.
const NO_SWEEP = { FANOUT_SWEEP_MS: '3600000' };

const it = test.extend<{ $file: { bouncer: TestPgBouncer; a: TestApp; b: PeerApp } }>({
  bouncer: [
    async ({}, use) => {
      await using bouncer = await startTestPgBouncer(ADMIN_URL);
      await use(bouncer);
    },
    { scope: 'file' },
  ],
  a: [
    async ({ bouncer }, use) => {
      await using a = await startTestApp(import.meta.filename, { FANOUT: 'postgres', ...NO_SWEEP }, { pooler: bouncer });
      await use(a);
    },
    { scope: 'file' },
  ],
  b: [
    async ({ a, bouncer }, use) => {
      await using b = await startPeerApp(a, { FANOUT: 'postgres', ...NO_SWEEP, DATABASE_URL: bouncer.pooled(a.databaseUrl), DATABASE_DIRECT_URL: a.databaseUrl });
      await use(b);
    },
    { scope: 'file' },
  ],
});

describe.skipIf(!hasPgBouncer)('two instances through PgBouncer in transaction pooling (3 server connections for both)', () => {
  it('sends, history, edits, read markers, presence, blocks and live delivery across instances all work; only LISTEN holds a session', async ({ a, b, bouncer }) => {
    const aliceA = await a.client('alice');
    const bobB = await b.client('bob');
    const room = await aliceA.rooms.open.mutate({ otherUserId: 'bob' });
    const subA = record(aliceA, room.id);
    const subB = record(bobB, room.id);
    await Promise.all([subA.started, subB.started]);
    const legB = await openLegacySocket(b.url, 'bob', 'alice', await a.token('bob'));
    try {
      const sent = await Promise.all(range(1, 200).map((i) => (i % 2 ? aliceA : bobB).messages.send.mutate({ roomId: room.id, content: `m${i}` })));
      await Promise.all([subA.waitForMessages(200, 20_000), subB.waitForMessages(200, 20_000)]);
      expect(subA.seqs()).toEqual(range(1, 200));
      expect(subB.seqs()).toEqual(range(1, 200));
      await vi.waitFor(() => expect(legB.frames.filter((f) => f.action === 'new_message')).toHaveLength(200), { timeout: 10_000, interval: 10 });

      const page = await bobB.messages.list.query({ roomId: room.id, direction: 'backward', limit: 50 });
      expect(page.items.map((m) => m.seq)).toEqual(range(151, 200));
      // The two instances' sends interleave as they commit: the last page may hold none of alice's.
      const first = sent.find((m) => m.sender === 'alice')!;
      await aliceA.messages.edit.mutate({ roomId: room.id, messageId: first.id, content: 'edited' });
      await bobB.messages.markRead.mutate({ roomId: room.id, seq: 200 });
      await vi.waitFor(() => expect(subB.events.some((e) => e.type === 'message_updated')).toBe(true), { timeout: 5_000, interval: 10 });
      const list = await aliceA.rooms.list.query({});
      expect(list.items[0]).toMatchObject({ id: room.id, last_seq: 200 });

      await aliceA.users.block.mutate({ userId: 'bob' });
      await expect(bobB.messages.send.mutate({ roomId: room.id, content: 'blocked' })).rejects.toThrow();
      await aliceA.users.unblock.mutate({ userId: 'bob' });
      await bobB.messages.send.mutate({ roomId: room.id, content: 'after unblock' });
      await subA.waitForMessages(201, 5_000);

      // The pooler carried the work; its three server connections were shared by both instances' pools.
      const stats = await bouncer.show('STATS');
      const ours = stats.find((r) => r.database === new URL(a.databaseUrl).pathname.slice(1))!;
      expect(Number(ours.total_xact_count)).toBeGreaterThan(50);
      const pool = (await bouncer.show('POOLS')).find((r) => r.database === ours.database)!;
      expect(Number(pool.sv_active) + Number(pool.sv_idle) + Number(pool.sv_used)).toBeLessThanOrEqual(3);
      const sessions = await a.sql<{ application_name: string; n: number }>(
        `select application_name, count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() group by 1 order by 1`,
      );
      expect(sessions.find((s) => s.application_name === 'parley-listen')?.n).toBe(2);
    } finally {
      legB.close();
    }
  });
});
