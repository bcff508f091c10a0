/**
 * A reconnect storm: many tRPC subscribers, each on a room of its own, lose their instance at
 * once (SIGKILL), messages are stored while it is down, and a new instance comes up on the same
 * port. Each client reconnects after a random delay within `STORM_SPREAD_MS` and resumes from its
 * last event id. Measured: how long each took from its reconnect to holding every message it
 * missed, whether any message came twice or not at all, the server's peak RSS, the database
 * connections the instance held, and the database transactions the storm cost (catch-up reads are
 * batched, so far fewer than one per client).
 */
import pg from 'pg';
import WebSocket from 'ws';
import { signToken } from '../../server/identity/sign-token.ts';
import { freePort } from '../../server/infra/db/postgres-server.ts';
import { STORE_MESSAGES_SQL, storeMessagesParam } from '../../server/messages/message-store.ts';
import { seedPairs, type Pair } from '../db.ts';
import { startInstance, type Instance } from '../instance-process.ts';
import { rssSampler, sleep } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { summarize } from '../stats.ts';
import { startWorker, type Control } from '../workers.ts';

/** Clients reconnect at a random moment within this long after losing their socket. */
const STORM_SPREAD_MS = 10_000;
/** The instance's pool connections' application_name (its fan-out sessions name themselves `parley-…`). */
const POOL_NAME = 'parley-storm-pool';
/** The most messages the send coalescer stores in one statement (its default batch). */
const STORE_CHUNK = 256;
/** Messages stored per room while the instance is down. */
const MISSED = 2;

interface StormParams {
  baseUrl: string;
  secret: string;
  rooms: Array<{ roomId: string; user: string }>;
}

export interface StormResult {
  clients: number;
  caughtUp: number;
  /** Per client that caught up: ms from its socket's reopening to holding every missed message. */
  catchUpMs: number[];
  /** The same, from the connection attempt that opened that socket: a connection the server's accept queue held adds its wait. */
  fromAttemptMs: number[];
  gaps: number;
  duplicates: number;
  /** Connection attempts refused while the instance was down. */
  refused: number;
  /** Sockets that closed after their subscription had started, while the storm was measured (each reconnects after a random delay). */
  dropped: number;
  /** Their close codes, by code. */
  dropCodes: Record<string, number>;
}

/** The clients' side, in a load-worker process: one socket and one subscription per room. */
export async function stormClients(p: StormParams, control: Control): Promise<StormResult> {
  const ws = p.baseUrl.replace(/^http/, 'ws');
  let expectSeq = 1;
  let storming = false;
  let refused = 0;
  let dropped = 0;
  const dropCodes: Record<string, number> = {};
  let gaps = 0;
  let duplicates = 0;
  const catchUpMs: number[] = [];
  const fromAttemptMs: number[] = [];
  let reached = 0;
  const clients = await Promise.all(
    p.rooms.map(async ({ roomId, user }) => {
      const token = await signToken({ secret: p.secret, userId: user, expiresIn: '1h' });
      const client = { last: 0, lastEventId: undefined as string | undefined, openedAt: 0, triedAt: 0, done: false };
      const open = () =>
        new Promise<void>((resolve) => {
          const triedAt = performance.now();
          const socket = new WebSocket(`${ws}/trpc?connectionParams=1`, { perMessageDeflate: false });
          let subscribed = false;
          socket.on('open', () => {
            client.openedAt = performance.now();
            client.triedAt = triedAt;
            socket.send(JSON.stringify({ method: 'connectionParams', data: { token } }));
            socket.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId }, ...(client.lastEventId && { lastEventId: client.lastEventId }) } }));
          });
          socket.on('message', (raw) => {
            const frame = JSON.parse(String(raw));
            if (frame.result?.type === 'started') {
              subscribed = true;
              return resolve();
            }
            if (frame.result?.type !== 'data') return;
            client.lastEventId = frame.result.id;
            const event = frame.result.data?.data;
            if (event?.type !== 'message') return;
            const seq: number = event.message.seq;
            if (seq <= client.last) duplicates++;
            else if (seq !== client.last + 1) gaps++;
            client.last = Math.max(client.last, seq);
            if (!client.done && client.last >= expectSeq) {
              client.done = true;
              reached++;
              if (storming) {
                catchUpMs.push(performance.now() - client.openedAt);
                fromAttemptMs.push(performance.now() - client.triedAt);
              }
            }
          });
          socket.on('error', () => {});
          socket.on('close', (code) => {
            if (!subscribed) refused++;
            else if (storming) {
              dropped++;
              dropCodes[code] = (dropCodes[code] ?? 0) + 1;
            }
            // Lost (the instance died) or refused (not back yet): again after a random delay, as
            // clients with jittered backoff do; at most the spread after the loss.
            const delay = subscribed ? Math.random() * STORM_SPREAD_MS : 200 + Math.random() * 300;
            setTimeout(() => void open(), delay);
            resolve();
          });
        });
      await open();
      return client;
    }),
  );
  control.post({ type: 'connected' });
  for (;;) {
    const cmd = await control.command<{ type: string; seq?: number; storm?: boolean; timeoutMs?: number }>('expect');
    if (cmd.seq === undefined) break;
    expectSeq = cmd.seq;
    storming = cmd.storm ?? false;
    reached = 0;
    for (const c of clients) c.done = c.last >= expectSeq;
    reached = clients.filter((c) => c.done).length;
    const until = performance.now() + (cmd.timeoutMs ?? 60_000);
    while (reached < clients.length && performance.now() < until) await sleep(50);
    control.post({ type: 'reached', reached });
  }
  return { clients: clients.length, caughtUp: clients.filter((c) => c.last >= expectSeq).length, catchUpMs, fromAttemptMs, gaps, duplicates, refused, dropped, dropCodes };
}

async function transactions(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('select xact_commit + xact_rollback as n from pg_stat_database where datname = current_database()');
  return Number(rows[0]!.n);
}

export async function runReconnectStorm(ctx: BenchContext): Promise<Row[]> {
  const clients = ctx.quick ? 1_000 : 10_000;
  const pairs: Pair[] = await seedPairs(ctx.pool, 'storm', clients);
  const port = await freePort();
  // Named, so the instance's pool connections can be told from the bench's own in pg_stat_activity.
  const dbUrl = new URL(ctx.dbUrl);
  dbUrl.searchParams.set('application_name', POOL_NAME);
  const env = { PORT: String(port), DATABASE_URL: dbUrl.toString() };
  let instance: Instance | undefined = await startInstance(ctx, env);
  const worker = await startWorker('stormClients', { baseUrl: instance.url, secret: ctx.secret, rooms: pairs.map((p) => ({ roomId: p.roomId, user: p.b })) } satisfies StormParams);
  try {
    await worker.next('connected', 300_000);
    // One message each, live: every client holds an event id to resume from.
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      for (let i = next++; i < pairs.length; i = next++) {
        const p = pairs[i]!;
        const token = await signToken({ secret: ctx.secret, userId: p.a, expiresIn: '1h' });
        const res = await fetch(`${instance!.url}/${p.roomId}/messages/`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ content: 'before', chat_room: p.roomId, sender: p.a }) });
        await res.arrayBuffer();
        if (res.status !== 201) throw new Error(`storm: a send answered HTTP ${res.status}`);
      }
    }));
    worker.command({ type: 'expect', seq: 1 });
    const live = await worker.next<{ reached: number }>('reached', 120_000);
    if (live.reached < clients) ctx.problems.push(`storm: ${clients - live.reached} clients never got their first message live`);

    process.kill(instance.pid, 'SIGKILL');
    const killedAt = performance.now();
    instance = undefined;
    // Stored while the instance is down, the way sends on other instances would store them: in
    // statements of at most the send coalescer's batch. One statement for all 20,000 took 8.5 s
    // (its join of messages to rooms grows with their product), and the instance then stayed down
    // past every client's reconnect delay: all of them came back in the same second.
    const missed = pairs.flatMap((p) => Array.from({ length: MISSED }, (_, k) => ({ roomId: p.roomId, sender: p.a, content: `storm ${k}` })));
    let chunk = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = chunk++ * STORE_CHUNK; i < missed.length; i = chunk++ * STORE_CHUNK) await ctx.pool.query(STORE_MESSAGES_SQL, [storeMessagesParam(missed.slice(i, i + STORE_CHUNK)).json]);
    }));
    const storedMs = performance.now() - killedAt;
    const tx0 = await transactions(ctx.pool);
    const { rows: [since] } = await ctx.pool.query<{ t: Date }>('select clock_timestamp() as t');
    const t0 = performance.now();
    instance = await startInstance(ctx, env);
    const upMs = performance.now() - t0;
    const downMs = performance.now() - killedAt;
    const rss = rssSampler(instance.pid, 50);
    let peakConnections = 0;
    /** The peak, by application_name: the pool's, and the fan-out engine's sessions. */
    const byName: Record<string, number> = {};
    const sampling = setInterval(() => {
      void ctx.pool
        // Opened since the restart began: the new instance's (the bench's main server idles meanwhile).
        .query<{ name: string; n: number }>("select application_name as name, count(*)::int as n from pg_stat_activity where datname = current_database() and backend_start >= $1 and application_name like 'parley-%' group by 1", [since!.t])
        .then(({ rows }) => {
          peakConnections = Math.max(peakConnections, rows.reduce((n, r) => n + r.n, 0));
          for (const r of rows) byName[r.name] = Math.max(byName[r.name] ?? 0, r.n);
        }, () => {});
    }, 100);
    worker.command({ type: 'expect', seq: 1 + MISSED, storm: true, timeoutMs: STORM_SPREAD_MS + 60_000 });
    const after = await worker.next<{ reached: number }>('reached', STORM_SPREAD_MS + 90_000);
    const wallMs = performance.now() - t0;
    clearInterval(sampling);
    const peakRss = rss.stop();
    const tx = (await transactions(ctx.pool)) - tx0;
    worker.command({ type: 'expect' });
    const r = await worker.result<StormResult>(60_000);
    if (r.gaps || r.duplicates) ctx.failures.push(`storm: ${r.gaps} gaps, ${r.duplicates} duplicates over ${clients} clients`);
    if (after.reached < clients) ctx.failures.push(`storm: ${clients - after.reached} of ${clients} clients did not catch up`);
    const t = summarize(r.catchUpMs);
    const a = summarize(r.fromAttemptMs);
    return [
      {
        scenario: 'reconnect storm',
        surface: 'trpc subscription (resume by last event id)',
        params: `${clients} clients, a room each; instance SIGKILLed, ${MISSED} messages per room stored meanwhile, a new instance on the same port; clients reconnect at random within ${STORM_SPREAD_MS / 1000} s (pool ${ctx.poolMax})`,
        result: `${r.caughtUp}/${clients} caught up, ${r.gaps} gaps, ${r.duplicates} duplicates; reconnect → caught up p50 ${t.p50.toFixed(0)} / p99 ${t.p99.toFixed(0)} / max ${t.max.toFixed(0)} ms (from the connection attempt: p50 ${a.p50.toFixed(0)} / p99 ${a.p99.toFixed(0)} / max ${a.max.toFixed(0)} ms); all caught up ${(wallMs / 1000).toFixed(1)} s after the restart began (down ${(downMs / 1000).toFixed(1)} s: missed messages stored ${(storedMs / 1000).toFixed(1)} s, start ${(upMs / 1000).toFixed(1)} s); server RSS peak ${(peakRss / 1024 / 1024).toFixed(0)} MiB; database connections the new instance opened: peak ${peakConnections} (${Object.entries(byName).map(([k, v]) => `${k === POOL_NAME ? 'pool' : k} ${v}`).join(', ')}); ${tx} database transactions (${(tx / clients).toFixed(2)} per client); ${r.dropped} sockets closed after their subscription started during the storm${r.dropped ? ` (close codes ${Object.entries(r.dropCodes).map(([c, n]) => `${c}: ${n}`).join(', ')})` : ''}`,
        baseline: '—',
        ratio: NaN,
        data: { clients, caughtUp: r.caughtUp, gaps: r.gaps, duplicates: r.duplicates, catchUp: t, fromAttempt: a, wallMs, upMs, downMs, storedMs, peakRssMiB: peakRss / 1024 / 1024, peakConnections, connectionsByName: byName, poolConnections: byName[POOL_NAME] ?? 0, poolMax: ctx.poolMax, transactions: tx, refused: r.refused, dropped: r.dropped, dropCodes: r.dropCodes },
      },
    ];
  } finally {
    worker.child.kill('SIGKILL');
    await instance?.stop();
  }
}
