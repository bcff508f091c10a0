import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createChatClient, type ChatClient } from '../client-sdk/index.ts';
import { createApp, type ParleyApp } from '../server/app.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { startReplicaPair, type ReplicaPair } from '../server/infra/db/replica-pair.ts';
import { parsePrometheusText, valueOf } from './support/prometheus-text.ts';
import { range, record } from './support/subscription.ts';
import { TEST_SECRET, testConfig } from './support/test-app.ts';

// A primary and a hot standby of this file's own, made from the npm PostgreSQL: the same in
// every environment, and replay can be paused without touching anyone else's server.
let pair: ReplicaPair;
let app: ParleyApp;
let url: string;
let alice: ChatClient;
let bob: ChatClient;
let roomId: string;
const clients: ChatClient[] = [];

const token = (userId: string) => signToken({ secret: TEST_SECRET, userId, expiresIn: '1h' });
async function client(userId: string) {
  const c = createChatClient({ url, token: await token(userId), deliveryReceipts: false });
  clients.push(c);
  return c;
}

async function metric(name: string, labels: Record<string, string> = {}) {
  const text = await (await fetch(app.metricsUrl!)).text();
  return valueOf(parsePrometheusText(text).samples, name, labels);
}
const replicaReads = (read: string) => metric('parley_db_reads_total', { read, server: 'replica' });
const fallbacks = (reason: string) => metric('parley_db_replica_fallbacks_total', { reason });

/** The legacy REST history, as a client of that surface reads it. */
async function restHistory(userId: string) {
  const res = await fetch(`${url}/${roomId}/messages/`, { headers: { authorization: `Bearer ${await token(userId)}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Array<{ id: string; content: string }>;
}

const onReplica = async (sql: string) => Number((await pair.onReplica<{ n: string }>(sql))[0]!.n);

beforeAll(async () => {
  pair = await startReplicaPair({ fsync: 'off' });
  app = await createApp(testConfig(pair.primaryUrl, { DATABASE_REPLICA_URLS: pair.replicaUrl }));
  url = await app.listen();
  alice = await client('alice');
  bob = await client('bob');
  roomId = (await alice.rooms.open.mutate({ otherUserId: 'bob' })).id;
  for (const i of range(1, 3)) await alice.messages.send.mutate({ roomId, content: `before ${i}` });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await app?.close();
  await pair?.stop();
});

describe('with replay paused on the replica', () => {
  beforeAll(async () => {
    await pair.caughtUp();
    await pair.onReplica('select pg_wal_replay_pause()');
  });

  it('a send then an immediate history read and room list by the sender show it', async () => {
    const behind = await fallbacks('behind');
    const sent = await alice.messages.send.mutate({ roomId, content: 'just sent' });
    // The replica really lacks it: what follows is read-your-writes, not luck.
    expect(await onReplica(`select count(*) as n from messages where id = '${sent.id}'`)).toBe(0);

    const page = await alice.messages.list.query({ roomId });
    expect(page.items.at(-1)).toMatchObject({ id: sent.id, content: 'just sent', seq: 4 });
    expect((await restHistory('alice')).at(-1)).toMatchObject({ id: sent.id, content: 'just sent' });
    const rooms = await alice.rooms.list.query();
    expect(rooms.items[0]).toMatchObject({ id: roomId, last_seq: 4, last_message: { id: sent.id } });
    // The other participant (to whom the room is still a request) sees it as soon as it was acknowledged too.
    expect((await bob.rooms.list.query({ filter: 'all' })).items[0]).toMatchObject({ id: roomId, last_seq: 4, unread: 4 });
    expect(await fallbacks('behind')).toBeGreaterThan(behind);
  });

  it('an edit is in the next page its author reads', async () => {
    const [first] = (await alice.messages.list.query({ roomId, limit: 1, direction: 'forward' })).items;
    await alice.messages.edit.mutate({ roomId, messageId: first!.id, content: 'before 1, edited' });
    expect((await alice.messages.list.query({ roomId, limit: 1, direction: 'forward' })).items[0]).toMatchObject({ id: first!.id, content: 'before 1, edited' });
  });

  it('a resume from a seq past the replica’s replay reads the rest from the primary, with no gap', async () => {
    for (const i of range(1, 5)) await alice.messages.send.mutate({ roomId, content: `while paused ${i}` });
    expect(await onReplica(`select coalesce(max(seq), 0) as n from messages where chat_room_id = '${roomId}'`)).toBe(3);
    // Seq 5 is past what the replica has replayed (3): the catch-up must still bring 6..9.
    const resumed = record(bob, roomId, '5');
    await resumed.started;
    await resumed.waitForMessages(4);
    expect(resumed.seqs()).toEqual([6, 7, 8, 9]);
    resumed.unsubscribe();
    // From before the pause too: every message once, in order.
    const fromStart = record(bob, roomId, '1');
    await fromStart.started;
    await fromStart.waitForMessages(8);
    expect(fromStart.seqs()).toEqual(range(2, 9));
    fromStart.unsubscribe();
  });
});

describe('with replay resumed', () => {
  beforeAll(async () => {
    await pair.onReplica('select pg_wal_replay_resume()');
    await pair.caughtUp();
  });

  // The server's own background writes (presence, jobs) can put the primary a little ahead at
  // any moment, so a read may still fall back: repeat until one is answered by the replica.
  it('history pages, room lists and feed catch-up are answered by the replica again', async () => {
    const before = { history: await replicaReads('history'), rooms: await replicaReads('rooms'), feed: await replicaReads('feed') };
    await vi.waitFor(
      async () => {
        const page = await bob.messages.list.query({ roomId });
        expect(page.items.map((m) => m.seq)).toEqual(range(1, 9));
        expect(await replicaReads('history')).toBeGreaterThan(before.history);
      },
      { timeout: 30_000, interval: 50 },
    );
    await vi.waitFor(
      async () => {
        expect((await bob.rooms.list.query({ filter: 'all' })).items[0]).toMatchObject({ id: roomId, last_seq: 9 });
        expect(await replicaReads('rooms')).toBeGreaterThan(before.rooms);
      },
      { timeout: 30_000, interval: 50 },
    );
    await vi.waitFor(
      async () => {
        const resumed = record(bob, roomId, '7');
        await resumed.started;
        await resumed.waitForMessages(2);
        resumed.unsubscribe();
        expect(resumed.seqs()).toEqual([8, 9]);
        expect(await replicaReads('feed')).toBeGreaterThan(before.feed);
      },
      { timeout: 30_000, interval: 50 },
    );
  });
});

describe('with the replica stopped', () => {
  beforeAll(() => pair.stopReplica());

  it('reads still answer, from the primary, and the server stays ready', async () => {
    const down = (await fallbacks('down')) + (await fallbacks('error'));
    const sent = await alice.messages.send.mutate({ roomId, content: 'after the replica stopped' });
    expect((await bob.messages.list.query({ roomId })).items.at(-1)).toMatchObject({ id: sent.id, seq: 10 });
    expect((await restHistory('bob')).map((m) => m.content)).toContain('after the replica stopped');
    expect((await bob.rooms.list.query({ filter: 'all' })).items[0]).toMatchObject({ id: roomId, last_seq: 10 });
    const resumed = record(bob, roomId, '8');
    await resumed.started;
    await resumed.waitForMessages(2);
    resumed.unsubscribe();
    expect(resumed.seqs()).toEqual([9, 10]);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fallbacks('down')) + (await fallbacks('error'))).toBeGreaterThan(down);
  });

  it('an instance started while its replica is down starts, serves reads from the primary and is ready', async () => {
    const second = await createApp(testConfig(pair.primaryUrl, { DATABASE_REPLICA_URLS: pair.replicaUrl }));
    let c: ChatClient | undefined;
    try {
      const secondUrl = await second.listen();
      c = createChatClient({ url: secondUrl, token: await token('bob'), deliveryReceipts: false });
      expect((await c.messages.list.query({ roomId })).items.map((m) => m.seq)).toEqual(range(1, 10));
      expect((await fetch(`${secondUrl}/readyz`)).status).toBe(200);
    } finally {
      await c?.close();
      await second.close();
    }
  });
});
