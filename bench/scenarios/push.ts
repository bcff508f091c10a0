/**
 * What push notifications and webhooks cost, and how fast the job queue sends them. Servers on
 * the bench database, all FANOUT=local: `off` (PUSH=off, no WEBHOOK_URL), `default` (PUSH=on with
 * VAPID keys and a webhook receiver, at the product's coalescing window) and `on` (the same with
 * PUSH_COALESCE_MS=0), the last two never at once (each instance with push on takes jobs from the
 * shared queue, which would blur what each costs). The push service and the webhook receiver are loopback HTTP
 * servers in this process that accept at once (201, 204) and decrypt nothing; the server still
 * encrypts (aes128gcm) and signs (VAPID) every notification as in production, for devices whose
 * P-256 keys are made here. PUSH_COALESCE_MS=0 on `on`: every message to an offline recipient
 * makes a push (one pending job per room and recipient at a time), the most work a send can cause.
 *
 * 1. Send throughput, tRPC WebSocket c=64 over 64 rooms (each server its own), interleaved rounds
 *    on `default` and `off`: push and webhooks as a server runs them. Every
 *    recipient has a device; half are offline, half hold an inbox stream on each server (presence
 *    online: their jobs are put off once, then dropped). After each `default` round the queue is
 *    left to empty (its pushes come due a window later) before the next round, so a backlog weighs
 *    on no round but its own. Beside it, the floor any webhook sender has on this machine: the
 *    machine's CPU for one plain POST (undici, the server's webhook client) of an event-sized
 *    signed body to the same receiver, against the machine's CPU per send of `off`.
 * 2. (`on` from here.) Drain: jobs for many offline recipients with an unread message written straight into the
 *    queue at once; notifications per second from the first request to the last.
 * 3. Commit to push request: open-loop sends at 1,000 msg/s to offline recipients, each room
 *    written at most once every 2 s (so a request is the push of one message); to the push
 *    request's arrival from the message's created_at (its statement's now(), a little before the
 *    commit: the target's figure), and from the send's start (which adds the time a busy server
 *    took to take the send up). PUSH_COALESCE_MS=0 here too: the product's window (2 s by default)
 *    holds the first push of a burst by design, and the row says so rather than hiding it.
 *
 * Besides the rates, each server's CPU per message over the interleaved rounds, and the
 * machine's: what push and webhooks add to a send, less moved by this shared machine's drift than
 * a rate.
 *
 * And in the same rounds, the floor of the target: `off`'s sends while a process of its own makes
 * one bare event POST to the same receiver for each send the target asks for (0.9× of the last
 * `off` round's rate, open loop). No webhook sender makes less than one POST per event, and this
 * one has no queue, no database and nothing on the server's event loop: if the sends do not reach
 * 0.9× beside it, no implementation does on this machine, whose two cores also run the receiver.
 */
import { createECDH, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import webpush from 'web-push';
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { signToken } from '../../server/identity/sign-token.ts';
import { signWebhook } from '../../server/webhooks/webhook-delivery.ts';
import { seedPairs } from '../db.ts';
import { startInstance, type Instance } from '../instance-process.ts';
import { cpuMs, machineCpuMs, postgresCpuMs, sleep } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { interleave, listRates, roundRatio, sendRate, sendRound } from '../rounds.ts';
import { summarize } from '../stats.ts';
import { runWorker, startWorker } from '../workers.ts';
import type { Loop } from './send-throughput.ts';

const CONC = 64;
const RATE = 1_000;
/** Rooms of the latency part: at RATE, each is written once every ROOMS / RATE seconds. */
const ROOMS = 2_000;
const now = () => performance.timeOrigin + performance.now();

async function listen(server: Server) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Accepts every notification at once; keeps each request's arrival time and Topic (the room). */
async function acceptingPushService() {
  const arrivals: Array<{ at: number; topic: string }> = [];
  let encrypted = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrivals.push({ at: now(), topic: String(req.headers.topic ?? '') });
      if (req.headers['content-encoding'] === 'aes128gcm' && String(req.headers.authorization).startsWith('vapid ')) encrypted++;
      res.writeHead(201).end();
    });
  });
  const base = await listen(server);
  return { base, arrivals, encrypted: () => encrypted, close: () => (server.closeAllConnections(), new Promise((r) => server.close(r))) };
}

/** A POST of a body the size of a `message.created` event, signed as Parley signs them, through `pool`. */
function eventPoster(url: string, connections: number) {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections });
  const body = JSON.stringify({
    id: randomUUID(), type: 'message.created', created_at: new Date().toISOString(),
    data: { message: { id: randomUUID(), chat_room_id: randomUUID(), sender_id: 'push-on12a', content: 'push 12345 of a bench round', created_at: new Date().toISOString(), seq: 12345 } },
  });
  return {
    async post() {
      const timestamp = Math.floor(Date.now() / 1000);
      const res = await pool.request({
        path: target.pathname, method: 'POST', body,
        headers: { 'content-type': 'application/json', 'parley-webhook-id': randomUUID(), 'parley-webhook-timestamp': String(timestamp), 'parley-signature': signWebhook('bench', timestamp, body) },
      });
      await res.body.dump();
    },
    close: () => pool.destroy(),
  };
}

/**
 * Plain POSTs of an event to `url` for `ms`, 64 at a time over kept-alive connections, through
 * the client the server's webhooks use (an undici `Pool`, the cheapest of the clients measured
 * for it): what one POST costs the machine (this sender and the receiver), with no queue, no
 * database and no Parley.
 */
async function rawPostCost(url: string, ms: number) {
  const poster = eventPoster(url, 64);
  let posts = 0;
  const cpu0 = machineCpuMs();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (performance.now() - t0 < ms) {
      await poster.post();
      posts++;
    }
  }));
  const elapsed = performance.now() - t0;
  const machineMsPerPost = (machineCpuMs() - cpu0) / posts;
  await poster.close();
  return { posts, ms: elapsed, perSec: (posts / elapsed) * 1000, machineMsPerPost };
}

interface PostAtParams {
  url: string;
  rate: number;
  durationMs: number;
}

/**
 * Worker side: event POSTs at `rate` per second for `durationMs`, open loop, at most 256 waiting
 * for their answer (the rest queue here): the least any webhook sender does for sends at that
 * rate, in a process of its own, so none of it is on the server's event loop.
 */
export async function pushPostAt(p: PostAtParams) {
  const poster = eventPoster(p.url, 64);
  let issued = 0;
  let done = 0;
  const start = performance.now();
  const pending = new Set<Promise<void>>();
  while (performance.now() - start < p.durationMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * p.rate);
    while (issued < due && pending.size < 256) {
      issued++;
      const sent: Promise<void> = poster.post().then(() => void done++, () => undefined).finally(() => pending.delete(sent));
      pending.add(sent);
    }
    await sleep(2);
  }
  const elapsedMs = performance.now() - start;
  await Promise.all(pending);
  await poster.close();
  return { posted: done, perSec: (done / elapsedMs) * 1000 };
}

async function webhookReceiver() {
  let received = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(204).end();
    });
  });
  const url = `${await listen(server)}/hook`;
  return { url, received: () => received, close: () => (server.closeAllConnections(), new Promise((r) => server.close(r))) };
}

/** One device per user, keys made as a browser would (ECDH P-256, a 16-byte auth secret). */
async function subscribe(ctx: BenchContext, users: string[], endpointBase: string) {
  const rows = users.map((user) => {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    return { user, endpoint: `${endpointBase}/push/${user}`, p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
  });
  await ctx.pool.query(
    `insert into push_subscriptions (user_id, endpoint, p256dh, auth) select r.user, r.endpoint, r.p256dh, r.auth from json_to_recordset($1::json) as r("user" text, endpoint text, p256dh text, auth text)`,
    [JSON.stringify(rows)],
  );
}

/** Messages stored so far in these rooms. */
async function storedIn(ctx: BenchContext, rooms: string[]) {
  const { rows } = await ctx.pool.query<{ n: string }>('select coalesce(sum(last_seq), 0) as n from chat_rooms where id = any($1::uuid[])', [rooms]);
  return Number(rows[0]!.n);
}

/** Waits until no job is due (a recipient found online leaves one due later); how long it took. */
async function queueEmpty(ctx: BenchContext, limitMs: number) {
  const t0 = performance.now();
  for (;;) {
    const { rows } = await ctx.pool.query<{ n: string }>('select count(*) as n from jobs where run_at <= now()');
    if (rows[0]!.n === '0' || performance.now() - t0 > limitMs) return { ms: performance.now() - t0, left: Number(rows[0]!.n) };
    await sleep(50);
  }
}

interface SendAtParams {
  baseUrl: string;
  secret: string;
  sender: string;
  rooms: string[];
  rate: number;
  durationMs: number;
}

/** Worker side: open-loop sends at `rate` over a few sockets, the rooms in turn; each send's start. */
export async function pushSendAt(p: SendAtParams) {
  const token = await signToken({ secret: p.secret, userId: p.sender, expiresIn: '1h' });
  const clients = Array.from({ length: 8 }, () => createChatClient({ url: p.baseUrl, token }));
  await Promise.all(clients.map((c) => c.rooms.list.query({ limit: 1 })));
  const sends: Array<{ room: number; at: number; acked?: number; stored?: number }> = [];
  const pending: Promise<unknown>[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  while (performance.now() - start < p.durationMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * p.rate);
    while (sends.length < due) {
      const room = sends.length % p.rooms.length;
      const send: { room: number; at: number; acked?: number; stored?: number } = { room, at: now() };
      sends.push(send);
      pending.push(
        clients[sends.length % clients.length]!.messages.send.mutate({ roomId: p.rooms[room]!, content: `push ${sends.length}` }).then((m) => {
          send.acked = now();
          // The statement's now(): the commit follows it by the statement's own duration.
          send.stored = Date.parse(m.created_at);
        }, (err: unknown) => {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }),
      );
    }
    await sleep(2);
  }
  const elapsedMs = performance.now() - start;
  await Promise.all(pending);
  await Promise.all(clients.map((c) => c.close()));
  return { sends, errors, firstError, elapsedMs };
}

export async function runPush(ctx: BenchContext): Promise<Row[]> {
  const service = await acceptingPushService();
  const hooks = await webhookReceiver();
  const vapid = webpush.generateVAPIDKeys();
  const instances: Instance[] = [];
  const listeners: ChatClient[] = [];
  try {
    // Rooms of their own per server: a pass of \`on\` over a room would otherwise also make the
    // jobs of what \`off\` stored there meanwhile, work no deployment has (all its instances agree).
    const pairsOf = { on: await seedPairs(ctx.pool, 'push-on', CONC), off: await seedPairs(ctx.pool, 'push-off', CONC) };
    // `on` stands for `default` in part 1, with rooms of its own there.
    const loopsOf = { on: pairsOf.on.map((p): Loop => ({ roomId: p.roomId, user: p.a, other: p.b })), off: pairsOf.off.map((p): Loop => ({ roomId: p.roomId, user: p.a, other: p.b })) };
    // The queue's rooms: one sender writing to ROOMS recipients, each with one unread message.
    const sender = 'pushq-sender';
    await ctx.pool.query(`insert into users (id) select 'pushq' || i from generate_series(0, $1::int - 1) i union all select $2::text`, [ROOMS, sender]);
    const { rows: queueRooms } = await ctx.pool.query<{ id: string; user: string }>(
      `insert into chat_rooms (id, participant1_id, participant2_id, last_seq, last_message_at) select gen_random_uuid(), $2::text, 'pushq' || i, 1, now() from generate_series(0, $1::int - 1) i returning id, participant2_id as user`,
      [ROOMS, sender],
    );
    await ctx.pool.query(`insert into messages (id, chat_room_id, sender_id, content, seq, created_at) select gen_random_uuid(), r.id, $1::text, 'waiting', 1, now() from chat_rooms r where r.participant1_id = $1::text`, [sender]);
    // Messages seeded here are history, not sends: their rooms' job cursors start past them.
    await ctx.pool.query('insert into message_job_cursors (chat_room_id, seq) select id, last_seq from chat_rooms on conflict (chat_room_id) do update set seq = excluded.seq');
    await subscribe(ctx, [...pairsOf.on.map((p) => p.b), ...pairsOf.off.map((p) => p.b), ...queueRooms.map((r) => r.user)], service.base);

    const pushOn = {
      PUSH: 'on', VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey, VAPID_SUBJECT: 'mailto:bench@example.com',
      PUSH_ALLOW_LOCAL_ENDPOINTS: 'true', PUSH_TIMEOUT_MS: '5000',
      WEBHOOK_URL: hooks.url, WEBHOOK_SECRET: randomBytes(16).toString('hex'), FANOUT: 'local',
    };
    const atDefault = await startInstance(ctx, pushOn);
    instances.push(atDefault);
    const off = await startInstance(ctx, { PUSH: 'off', FANOUT: 'local' });
    instances.push(off);

    // Half the recipients online on both servers, so each server's presence says so.
    for (const [server, pairs] of [[atDefault, pairsOf.on], [off, pairsOf.off]] as const) {
      for (const pair of pairs.filter((_, i) => i % 2 === 0)) {
        const c = createChatClient({ url: server.url, token: await signToken({ secret: ctx.secret, userId: pair.b, expiresIn: '1h' }) });
        listeners.push(c);
        await new Promise<void>((resolve) => c.rooms.onEvent.subscribe(undefined, { onData: (e) => e.type === 'ready' && resolve() }));
      }
    }

    // 1. Send throughput, on against off.
    const durationMs = ctx.quick ? 400 : 2_000;
    const drainLimitMs = ctx.quick ? 2_500 : 30_000;
    const backlog: Array<{ left: number; drainMs: number }> = [];
    const pushesBefore = service.arrivals.length;
    await sendRate(ctx, 'push', atDefault.url, loopsOf.on, durationMs);
    let lastOff = await sendRate(ctx, 'push', off.url, loopsOf.off, durationMs);
    await queueEmpty(ctx, drainLimitMs);
    // Each server's CPU per message over the rounds (the `on` server's drains included): what push
    // and webhooks cost the server, a figure this shared machine's drift moves less than a rate.
    const roomsOf = { on: pairsOf.on.map((p) => p.roomId), off: pairsOf.off.map((p) => p.roomId) };
    const cpuFrom = { on: cpuMs(atDefault.pid), off: cpuMs(off.pid), onMsgs: await storedIn(ctx, roomsOf.on), offMsgs: await storedIn(ctx, roomsOf.off) };
    // The machine's CPU per message, and PostgreSQL's share of it: each round's
    // timed window (the load process measures the machine over it) and what follows it until the
    // queue is empty, at least the coalescing window (the work its messages left), alike for both.
    // The sends alone: the timed windows of `off`.
    const machine = { on: { ms: 0, msgs: 0 }, off: { ms: 0, msgs: 0 }, sendsAlone: { ms: 0, msgs: 0, windowMs: 0 } };
    const postgres = { on: 0, off: 0 };
    const round = async (kind: 'on' | 'off') => {
      const pg0 = postgresCpuMs();
      const r = await sendRound(ctx, `push (${kind})`, (kind === 'on' ? atDefault : off).url, loopsOf[kind], durationMs);
      const after = machineCpuMs();
      // The round's pushes come due a window after their messages: they run here, not in the next round.
      await sleep(2_100);
      const { rows } = await ctx.pool.query<{ n: string }>('select count(*) as n from jobs where run_at <= now()');
      const drained = await queueEmpty(ctx, drainLimitMs);
      if (kind === 'on') backlog.push({ left: Number(rows[0]!.n), drainMs: Math.round(drained.ms) });
      else machine.sendsAlone = { ms: machine.sendsAlone.ms + r.machineMs, msgs: machine.sendsAlone.msgs + r.ops, windowMs: machine.sendsAlone.windowMs + (r.ops / r.msgsPerSec) * 1000 };
      machine[kind] = { ms: machine[kind].ms + r.machineMs + machineCpuMs() - after, msgs: machine[kind].msgs + r.ops };
      postgres[kind] += postgresCpuMs() - pg0;
      if (kind === 'off') lastOff = r.msgsPerSec;
      return r.msgsPerSec;
    };
    // The floor: \`off\`'s sends beside the least a webhook sender does for them, one bare POST
    // per send at the target's rate (0.9× of the last \`off\` round), from a process of its own.
    const floorPosts: number[] = [];
    let floorHooks = 0;
    const floorRound = async () => {
      const hooks0 = hooks.received();
      const poster = await startWorker('pushPostAt', { url: hooks.url, rate: 0.9 * lastOff, durationMs: durationMs + 3_000 } satisfies PostAtParams);
      const rate = await sendRate(ctx, 'push (floor)', off.url, loopsOf.off, durationMs);
      floorPosts.push((await poster.result<{ posted: number; perSec: number }>(60_000)).perSec);
      await sleep(2_100);
      floorHooks += hooks.received() - hooks0;
      return rate;
    };
    const runs = await interleave(ctx.quick ? 1 : 10, { off: () => round('off'), on: () => round('on'), floor: floorRound });
    const throughputPushes = service.arrivals.length - pushesBefore;
    const throughputHooks = hooks.received() - floorHooks;
    const cpuPerMsg = {
      on: (cpuMs(atDefault.pid) - cpuFrom.on) / ((await storedIn(ctx, roomsOf.on)) - cpuFrom.onMsgs),
      off: (cpuMs(off.pid) - cpuFrom.off) / ((await storedIn(ctx, roomsOf.off)) - cpuFrom.offMsgs),
    };
    for (const c of listeners.splice(0)) await c.close();
    await queueEmpty(ctx, drainLimitMs);
    const machinePerMsg = { on: machine.on.ms / machine.on.msgs, off: machine.off.ms / machine.off.msgs };
    const postgresPerMsg = { on: postgres.on / machine.on.msgs, off: postgres.off / machine.off.msgs };
    const sendAloneMs = machine.sendsAlone.ms / machine.sendsAlone.msgs;
    // How busy `off`'s sends kept the machine: what was left beside them, in CPU (the floor rounds
    // measure what of it sends beside POSTs actually get).
    const busy = machine.sendsAlone.ms / (availableParallelism() * machine.sendsAlone.windowMs);
    const rawPost = await rawPostCost(hooks.url, ctx.quick ? 400 : 2_000);

    // The rest with PUSH_COALESCE_MS=0, alone on the queue.
    await atDefault.stop();
    instances.splice(instances.indexOf(atDefault), 1);
    const on = await startInstance(ctx, { ...pushOn, PUSH_COALESCE_MS: '0' });
    instances.push(on);
    // Its push path warmed as `default`'s was by its rounds: a round of sends, every recipient offline now.
    await sendRate(ctx, 'push (warm-up)', on.url, loopsOf.on, durationMs);
    await queueEmpty(ctx, drainLimitMs);

    // 2. Drain: jobs for `drainJobs` offline recipients written at once; the server's poll finds them.
    const drainJobs = ctx.quick ? 300 : ROOMS;
    const topics = new Set(queueRooms.slice(0, drainJobs).map((r) => r.id.replaceAll('-', '')));
    const drainFrom = service.arrivals.length;
    await ctx.pool.query(
      `insert into jobs (kind, key, payload, run_at) select 'push', r.id || ':' || r.user, jsonb_build_object('room', r.id, 'user', r.user), now() from json_to_recordset($1::json) as r(id text, "user" text)`,
      [JSON.stringify(queueRooms.slice(0, drainJobs))],
    );
    const drainT0 = now();
    for (const until = performance.now() + drainLimitMs; performance.now() < until; await sleep(20)) {
      if (service.arrivals.slice(drainFrom).filter((a) => topics.has(a.topic)).length >= drainJobs) break;
    }
    const drained = service.arrivals.slice(drainFrom).filter((a) => topics.has(a.topic));
    const first = drained[0]?.at ?? NaN;
    const last = drained.at(-1)?.at ?? NaN;
    const perSec = drained.length > 1 ? ((drained.length - 1) / (last - first)) * 1000 : NaN;
    await queueEmpty(ctx, drainLimitMs);

    // 3. Commit to push request at RATE.
    const lagMs = ctx.quick ? 1_000 : 6_000;
    const lagFrom = service.arrivals.length;
    const sent = await runWorker<{ sends: Array<{ room: number; at: number; acked?: number; stored?: number }>; errors: number; firstError?: string; elapsedMs: number }>(
      'pushSendAt',
      { baseUrl: on.url, secret: ctx.secret, sender, rooms: queueRooms.map((r) => r.id), rate: RATE, durationMs: lagMs } satisfies SendAtParams,
      60_000,
    );
    if (sent.errors) ctx.problems.push(`push: ${sent.errors} send errors at ${RATE} msg/s (${sent.firstError})`);
    await queueEmpty(ctx, drainLimitMs);
    await sleep(200);
    const byTopic = new Map<string, number[]>();
    for (const a of service.arrivals.slice(lagFrom)) (byTopic.get(a.topic) ?? byTopic.set(a.topic, []).get(a.topic)!).push(a.at);
    const lags: number[] = [];
    const fromStored: number[] = [];
    let missing = 0;
    for (const s of sent.sends) {
      const at = byTopic.get(queueRooms[s.room]!.id.replaceAll('-', ''))?.find((t) => t >= s.at);
      if (at === undefined) missing++;
      else {
        lags.push(at - s.at);
        if (s.stored !== undefined) fromStored.push(at - s.stored);
      }
    }
    // From the send's start: also the time the send waited in a busy server before its statement.
    const lag = summarize(lags);
    // From the stored message's created_at (its statement's now(), on this machine's clock): the
    // commit is later by the statement's duration, so this is still an upper bound, and the target's figure.
    const commitLag = summarize(fromStored);
    const pushedAt = service.arrivals.slice(lagFrom).map((a) => a.at);
    const pushedPerSec = pushedAt.length > 1 ? ((pushedAt.length - 1) / (pushedAt.at(-1)! - pushedAt[0]!)) * 1000 : NaN;
    // How much of it the send itself took (start to its answer, the commit between them).
    const ack = summarize(sent.sends.flatMap((s) => (s.acked === undefined ? [] : [s.acked - s.at])));
    const offeredPerSec = (sent.sends.length / sent.elapsedMs) * 1000;

    const { off: offRates, on: onRates, floor: floorRates } = runs;
    const sendRatio = roundRatio(onRates, offRates);
    const floorRatio = roundRatio(floorRates, offRates);
    if (!ctx.quick && sendRatio < 0.9) ctx.problems.push(`push: sends with push and webhooks on ran at ${sendRatio.toFixed(2)}× of off (target ≥ 0.90×); beside bare POSTs at the target's rate, off's sends ran at ${floorRatio.toFixed(2)}×`);
    return [
      {
        scenario: 'push: send throughput',
        surface: 'trpc-ws messages.send',
        params: `c=${CONC}, ${CONC} rooms, ${onRates.length} interleaved rounds of ${durationMs} ms; push on (at the default PUSH_COALESCE_MS, every recipient a device, half offline) and webhooks on vs both off; queue emptied after each round`,
        result: `${listRates(onRates)}; ${throughputPushes} pushes and ${throughputHooks} webhook POSTs sent; due jobs a window after the round ${backlog.map((b) => b.left).join(' / ')}, emptied in ${backlog.map((b) => (b.drainMs / 1000).toFixed(1)).join(' / ')} s; server CPU per message ${cpuPerMsg.on.toFixed(3)} ms (off ${cpuPerMsg.off.toFixed(3)} ms, ${(cpuPerMsg.on / cpuPerMsg.off).toFixed(2)}×); machine CPU per message ${machinePerMsg.on.toFixed(3)} ms (off ${machinePerMsg.off.toFixed(3)} ms), of which PostgreSQL ${postgresPerMsg.on.toFixed(3)} ms (off ${postgresPerMsg.off.toFixed(3)} ms)`,
        baseline: `off ${listRates(offRates)}`,
        ratio: sendRatio,
        data: { on: onRates, off: offRates, durationMs, backlog, pushes: throughputPushes, webhooks: throughputHooks, cpuPerMsg, machinePerMsg, postgresPerMsg },
      },
      {
        scenario: 'push: a bare webhook POST',
        surface: 'undici → webhook receiver',
        params: `plain undici POSTs (the server's webhook client) of an event-sized body with its signature header to the same loopback receiver, kept-alive, c=64, ${rawPost.ms.toFixed(0)} ms; the machine's CPU (sender and receiver) per POST, against the machine's CPU per send of \`off\` above (its timed windows)`,
        result: `${rawPost.posts} POSTs, ${rawPost.perSec.toFixed(0)}/s; machine CPU per POST ${rawPost.machineMsPerPost.toFixed(3)} ms, ${((rawPost.machineMsPerPost / sendAloneMs) * 100).toFixed(0)} % of a send's ${sendAloneMs.toFixed(3)} ms; \`off\`'s sends kept the machine ${(busy * 100).toFixed(0)} % busy (the next row measures sends beside such POSTs); what push and webhooks added per message: ${(machinePerMsg.on - machinePerMsg.off).toFixed(3)} ms`,
        baseline: '—',
        ratio: NaN,
        data: { ...rawPost, sendMachineMs: sendAloneMs, busy, addedMachineMs: machinePerMsg.on - machinePerMsg.off },
      },
      {
        scenario: 'push: sends beside bare POSTs',
        surface: 'trpc-ws messages.send + undici → webhook receiver',
        params: `the floor of the first row's target, in its rounds: \`off\`'s sends (push and webhooks off) while a process of its own makes one bare event POST (as the row above) per send the target asks for, open loop at 0.9× of the last \`off\` round's rate, to the same receiver: the least any webhook sender adds at that rate, none of it on the server's event loop, no queue and no database`,
        result: `${listRates(floorRates)}, beside ${floorPosts.map((x) => x.toFixed(0)).join(' / ')} POSTs/s; \`on\` against this floor: ${roundRatio(onRates, floorRates).toFixed(2)}×`,
        baseline: `off ${listRates(offRates)}`,
        ratio: floorRatio,
        data: { floor: floorRates, posts: floorPosts, off: offRates, onAgainstFloor: roundRatio(onRates, floorRates) },
      },
      {
        scenario: 'push: queue drain',
        surface: 'job queue → web-push',
        params: `${drainJobs} push jobs due at once, offline recipients with one unread message each; loopback push service answering 201 at once`,
        result: `${perSec.toFixed(0)} notifications/s (${drained.length} sent, first request ${(first - drainT0).toFixed(0)} ms after the jobs were written)`,
        baseline: '—',
        ratio: NaN,
        data: { jobs: drainJobs, sent: drained.length, perSec, firstAfterMs: first - drainT0, spanMs: last - first },
      },
      {
        scenario: 'push: commit to push request',
        surface: 'trpc-ws messages.send → web-push',
        params: `open loop at ${RATE} msg/s for ${lagMs / 1000} s over ${ROOMS} rooms (each written every ${ROOMS / RATE} s, so no push waits for another message of its room), offline recipients, webhooks on; PUSH_COALESCE_MS=0 (the product's default, 2,000 ms, holds the first push of a room's burst that long by design: add it to these figures for a server left at the default); from the stored message's created_at (its statement's now(), before the commit), and from the send's start`,
        result: `from created_at p50 ${commitLag.p50.toFixed(0)} ms, p90 ${commitLag.p90.toFixed(0)} ms, p99 ${commitLag.p99.toFixed(0)} ms, max ${commitLag.max.toFixed(0)} ms; from the send's start p50 ${lag.p50.toFixed(0)} ms, p99 ${lag.p99.toFixed(0)} ms (the send's own answer p50 ${ack.p50.toFixed(0)} ms, p99 ${ack.p99.toFixed(0)} ms); ${lags.length} of ${sent.sends.length} pushed${missing ? `, ${missing} missing` : ''}, ${pushedPerSec.toFixed(0)} pushes/s`,
        baseline: '—',
        ratio: NaN,
        data: { offeredPerSec, pushedPerSec, sends: sent.sends.length, pushed: lags.length, missing, p99Ms: commitLag.p99, latency: commitLag, fromStart: lag, ack, encrypted: service.encrypted(), requests: service.arrivals.length },
      },
    ];
  } finally {
    for (const c of listeners) await c.close().catch(() => undefined);
    for (const i of instances) await i.stop();
    // Devices left behind would make later sections' servers write push jobs.
    await ctx.pool.query('delete from push_subscriptions').catch(() => undefined);
    await ctx.pool.query('delete from jobs').catch(() => undefined);
    await service.close();
    await hooks.close();
  }
}
