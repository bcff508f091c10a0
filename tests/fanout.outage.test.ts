import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, test, vi } from 'vitest';
import { LISTEN_APPLICATION_NAME } from '../server/live/pg-notify-engine.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp } from './support/peer-app.ts';
import { hasNatsServer, startTestNats, type TestNats } from './support/nats-server.ts';
import { hasRedisCluster, startTestRedisCluster, type TestRedisCluster } from './support/redis-cluster.ts';
import { hasRedisServer, startTestRedis, type TestRedis } from './support/redis-server.ts';
import { range, record } from './support/subscription.ts';
import { startTestApp } from './support/test-app.ts';

// No periodic sweep here: recovery must come from the engine's reconnect, nothing else.
const NO_SWEEP = { FANOUT_SWEEP_MS: '3600000' };

/** Runs `cut` over and over while `work` runs; tells whether `probe` ever saw the engine down (503). */
async function whileCutting(cut: () => Promise<unknown>, work: () => Promise<void>, probe: () => Promise<number>) {
  let done = false;
  let seenDown = false;
  // A busy machine can finish the work before a probe lands inside one of the cuts: cutting goes
  // on after it until a probe has seen one (or for a bound of its own).
  const giveUpAt = Date.now() + 15_000;
  const cutting = (async () => {
    while (!(done && (seenDown || Date.now() > giveUpAt))) {
      await cut();
      if ((await probe()) === 503) seenDown = true;
    }
  })();
  try {
    await work();
  } finally {
    done = true;
    await cutting;
  }
  return seenDown;
}

async function twoInstances(tag: string, env: Record<string, string>) {
  const a = await startTestApp(`${import.meta.filename}-${tag}`, { ...NO_SWEEP, ...env });
  const b = await startPeerApp(a, { ...NO_SWEEP, ...env });
  const alice = await a.client('alice');
  const bob = await b.client('bob');
  const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
  const subA = record(alice, room.id);
  const subB = record(bob, room.id);
  await Promise.all([subA.started, subB.started]);
  const legacyB = await openLegacySocket(b.url, 'bob', 'alice', await a.token('bob'));
  let sent = 0;
  /** `n` sends from alice through A, `concurrency` at a time. */
  const sendThroughA = async (n: number, concurrency = 4) => {
    const from = sent;
    sent += n;
    let next = from;
    await Promise.all(range(1, concurrency).map(async () => {
      while (next < from + n) await alice.messages.send.mutate({ roomId: room.id, content: `m${++next}` });
    }));
  };
  /** Every subscriber has every message sent so far, exactly once, tRPC in seq order. */
  const expectAllDelivered = async () => {
    await Promise.all([subA.waitForMessages(sent, 10_000), subB.waitForMessages(sent, 10_000)]);
    await vi.waitFor(() => expect(legacyB.frames.filter((f) => f.action === 'new_message').length).toBeGreaterThanOrEqual(sent), { timeout: 10_000, interval: 10 });
    expect(subA.seqs()).toEqual(range(1, sent));
    expect(subB.seqs()).toEqual(range(1, sent));
    const ids = legacyB.frames.flatMap((f) => (f.action === 'new_message' ? [f.message.id] : []));
    expect(new Set(ids).size).toBe(sent);
    expect(ids).toHaveLength(sent);
  };
  const ready = async (url: string) => (await fetch(`${url}/readyz`)).status;
  return {
    a,
    b,
    roomId: room.id,
    sendThroughA,

    expectAllDelivered,
    ready,
    async [Symbol.asyncDispose]() {
      legacyB.close();
      await b.close();
      await a.close();
    },
  };
}
type TwoInstances = Awaited<ReturnType<typeof twoInstances>>;

const pgIt = test.extend<{ $file: { t: TwoInstances } }>({
  t: [
    async ({}, use) => {
      await using t = await twoInstances('pg', { FANOUT: 'postgres' });
      await use(t);
    },
    { scope: 'file' },
  ],
});

const redisIt = test.extend<{ $file: { redis: TestRedis; t: TwoInstances } }>({
  redis: [
    async ({}, use) => {
      await using redis = await startTestRedis();
      await use(redis);
    },
    { scope: 'file' },
  ],
  t: [
    async ({ redis }, use) => {
      await using t = await twoInstances('redis', { REDIS_URL: redis.url });
      await use(t);
    },
    { scope: 'file' },
  ],
});

const natsIt = test.extend<{ $file: { nats: TestNats; t: TwoInstances } }>({
  nats: [
    async ({}, use) => {
      await using nats = await startTestNats();
      await use(nats);
    },
    { scope: 'file' },
  ],
  t: [
    async ({ nats }, use) => {
      await using t = await twoInstances('nats', { FANOUT: 'nats', NATS_URL: nats.url });
      await use(t);
    },
    { scope: 'file' },
  ],
});

const clusterIt = test.extend<{ $file: { cluster: TestRedisCluster; t: TwoInstances; quiet: TwoInstances } }>({
  cluster: [
    async ({}, use) => {
      await using cluster = await startTestRedisCluster();
      await use(cluster);
    },
    { scope: 'file' },
  ],
  t: [
    async ({ cluster }, use) => {
      // A failover loses what was published to the dead master and what its subscribers had not
      // read: the sweep is what repairs that, so it runs here.
      await using t = await twoInstances('cluster', { FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.nodes, FANOUT_SWEEP_MS: '300' });
      await use(t);
    },
    { scope: 'file' },
  ],
  // Without the sweep: what the subscriptions' return must bring by itself.
  quiet: [
    async ({ cluster }, use) => {
      await using t = await twoInstances('cluster-quiet', { FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: cluster.nodes });
      await use(t);
    },
    { scope: 'file' },
  ],
});

describe('PostgreSQL engine', () => {
  pgIt('the LISTEN backends terminated mid-stream (pg_terminate_backend): after reconnect nothing is lost or duplicated', async ({ t }) => {
    const admin = new pg.Client({ connectionString: t.a.databaseUrl });
    await admin.connect();
    const listeners = async () =>
      (await admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and application_name = $1', [LISTEN_APPLICATION_NAME])).rows.map((r) => r.pid);
    try {
      // One LISTEN session per instance; a session just closed may linger a moment in pg_stat_activity.
      await vi.waitFor(async () => expect(await listeners()).toHaveLength(2), { timeout: 5_000, interval: 20 });
      const before = await listeners();
      const stream = t.sendThroughA(200);
      await admin.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [before]);
      await stream;
      // The tail goes out while every new LISTEN session is cut again, and nothing follows it to
      // reveal a gap: only the resync after the reconnect can bring it.
      const seenDown = await whileCutting(() => admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = $1', [LISTEN_APPLICATION_NAME]), () => t.sendThroughA(20), () => t.ready(t.b.url));
      expect(seenDown).toBe(true);
      await t.expectAllDelivered();
      await vi.waitFor(async () => expect(await listeners()).toHaveLength(2), { timeout: 5_000, interval: 20 });
      expect((await listeners()).some((pid) => before.includes(pid))).toBe(false);
      // A new session is listed a moment before its LISTEN is confirmed and the engine says it is up.
      await vi.waitFor(async () => expect([await t.ready(t.a.url), await t.ready(t.b.url)]).toEqual([200, 200]), { timeout: 5_000, interval: 20 });
    } finally {
      await admin.end();
    }
  });
});

describe.skipIf(!hasRedisServer)('Redis engine (a Redis server of the test’s own)', () => {
  redisIt('Redis stopped mid-stream: sends still succeed, /readyz says the engine is down; once it is back, every subscriber has everything once', async ({ redis, t }) => {
    await t.sendThroughA(50);
    await t.expectAllDelivered();
    await redis.stop();
    await vi.waitFor(async () => expect(await t.ready(t.b.url)).toBe(503), { timeout: 5_000, interval: 20 });
    const body = (await (await fetch(`${t.b.url}/readyz`)).json()) as { detail: string };
    expect(body.detail).toMatch(/redis/);
    // Sent while B cannot hear them, and nothing is sent after them to reveal the gap.
    await t.sendThroughA(30);
    await redis.start();
    await vi.waitFor(async () => expect([await t.ready(t.a.url), await t.ready(t.b.url)]).toEqual([200, 200]), { timeout: 10_000, interval: 50 });
    await t.expectAllDelivered();
  });

  redisIt('the subscriber connections killed (CLIENT KILL TYPE pubsub) mid-stream: subscriptions come back, nothing lost or duplicated', async ({ redis, t }) => {
    const admin = new Redis(redis.url);
    try {
      const stream = t.sendThroughA(150);
      expect(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2);
      await stream;
      const seenDown = await whileCutting(() => admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'), () => t.sendThroughA(20), () => t.ready(t.b.url));
      expect(seenDown).toBe(true);
      await t.expectAllDelivered();
      // Both instances are subscribed to the room's channel again. The last cut can land after the
      // last send, once everything was delivered: the subscriptions are then still on their way back.
      await vi.waitFor(async () => expect(await admin.pubsub('NUMSUB', `parley:room:${t.roomId}`)).toEqual([`parley:room:${t.roomId}`, 2]), { timeout: 5_000, interval: 20 });
    } finally {
      admin.disconnect();
    }
  });
});

if (!hasNatsServer) console.warn('SKIPPED the NATS outage cases: no nats-server binary on PATH (CI has one)');

describe.skipIf(!hasNatsServer)('NATS engine (a NATS server of the test’s own)', () => {
  natsIt('the NATS server restarted mid-stream: every send succeeds, and every stream (tRPC on both instances, ws/chat) has everything once, in order', async ({ nats, t }) => {
    await t.sendThroughA(50);
    await t.expectAllDelivered();
    const stream = t.sendThroughA(300);
    await new Promise((r) => setTimeout(r, 150));
    await nats.stop();
    await vi.waitFor(async () => expect(await t.ready(t.b.url)).toBe(503), { timeout: 5_000, interval: 20 });
    await nats.start();
    await stream;
    await vi.waitFor(async () => expect([await t.ready(t.a.url), await t.ready(t.b.url)]).toEqual([200, 200]), { timeout: 10_000, interval: 50 });
    await t.expectAllDelivered();
  });

  natsIt('sent while NATS is down and nothing after: once it is back, the reconnect alone brings them to every stream', async ({ nats, t }) => {
    await t.expectAllDelivered();
    await nats.stop();
    await vi.waitFor(async () => expect(await t.ready(t.b.url)).toBe(503), { timeout: 5_000, interval: 20 });
    const body = (await (await fetch(`${t.b.url}/readyz`)).json()) as { detail: string };
    expect(body.detail).toMatch(/nats/);
    await t.sendThroughA(30);
    await nats.start();
    await vi.waitFor(async () => expect([await t.ready(t.a.url), await t.ready(t.b.url)]).toEqual([200, 200]), { timeout: 10_000, interval: 50 });
    await t.expectAllDelivered();
  });
});

if (!hasRedisCluster) console.warn('SKIPPED the Redis Cluster outage case: no redis-server 7+ and redis-cli on PATH (CI has them)');

// Six Redis servers and a failover: a machine busy with other work needs more than the default minute.
describe.skipIf(!hasRedisCluster)('Redis Cluster engine (3 masters, 3 replicas of the test’s own)', { timeout: 120_000 }, () => {
  clusterIt('the master holding the room’s channel killed mid-stream: its replica takes over, every send succeeds, every stream has everything once, in order', async ({ cluster, t }) => {
    await t.sendThroughA(50);
    await t.expectAllDelivered();
    const master = await cluster.masterOf(`parley:room:${t.roomId}`);
    const stream = t.sendThroughA(300);
    await new Promise((r) => setTimeout(r, 150));
    await cluster.killMaster(master);
    await stream;
    expect(await cluster.masterOf(`parley:room:${t.roomId}`)).not.toBe(master);
    await t.sendThroughA(20);
    await t.expectAllDelivered();
    await vi.waitFor(async () => expect([await t.ready(t.a.url), await t.ready(t.b.url)]).toEqual([200, 200]), { timeout: 10_000, interval: 50 });
  });

  clusterIt('the sharded subscriber connections killed (CLIENT KILL TYPE pubsub on every node) mid-stream and over and over while the tail goes out: subscriptions come back, and their return alone brings every message once', async ({ cluster, quiet: t }) => {
    const channel = `parley:room:${t.roomId}`;
    const master = new Redis({ port: await cluster.masterOf(channel) });
    const nodes = cluster.livePorts().map((port) => new Redis({ port }));
    const cut = () => Promise.all(nodes.map((r) => r.call('CLIENT', 'KILL', 'TYPE', 'pubsub')));
    try {
      await vi.waitFor(async () => expect(await master.call('PUBSUB', 'SHARDNUMSUB', channel)).toEqual([channel, 2]), { timeout: 5_000, interval: 20 });
      const stream = t.sendThroughA(150);
      await cut();
      await stream;
      // Nothing follows the tail to reveal a gap, and no sweep runs: only the resync after the
      // subscriptions are back can bring it.
      const seenDown = await whileCutting(cut, () => t.sendThroughA(20), () => t.ready(t.b.url));
      expect(seenDown).toBe(true);
      await t.expectAllDelivered();
      await vi.waitFor(async () => expect(await master.call('PUBSUB', 'SHARDNUMSUB', channel)).toEqual([channel, 2]), { timeout: 10_000, interval: 50 });
      await vi.waitFor(async () => expect([await t.ready(t.a.url), await t.ready(t.b.url)]).toEqual([200, 200]), { timeout: 10_000, interval: 50 });
    } finally {
      master.disconnect();
      for (const r of nodes) r.disconnect();
    }
  });
});
