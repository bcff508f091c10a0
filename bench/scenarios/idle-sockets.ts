/**
 * Idle sockets of both surfaces: tRPC with one subscription and legacy `ws/chat`. The clients'
 * side of the `idle` section (and of bench/idle-heap.ts): opening them, holding them, and timing
 * a message to one room while they are all connected.
 */
import { join } from 'node:path';
import WebSocket from 'ws';
import { signToken } from '../../server/identity/sign-token.ts';
import { seedPairs } from '../db.ts';
import { PER_USER_CAPS_OFF } from '../load-env.ts';
import { BENCH_DIR, cpuMs, hardFileLimit, nextMessage, rssBytes, sleep, spawnNode } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio, summarize } from '../stats.ts';
import { startWorker, type Control, type Worker } from '../workers.ts';

export type IdleKind = 'trpc' | 'legacy';

export interface IdleSocketSpec {
  kind: IdleKind;
  baseUrl: string;
  user: string;
  peer: string;
  roomId: string;
  token: string;
  /** The client side's source address (127.0.0.x): one address has ~28k ephemeral ports towards one server port. */
  localAddress?: string;
  /** Hears the content of every message the socket is sent. */
  onMessage?: (content: string) => void;
}

/** Opens one socket; resolves once it is subscribed (tRPC: `started`; ws/chat: the upgrade, after which its feed is open). */
export function openIdleSocket(spec: IdleSocketSpec): Promise<WebSocket> {
  const ws = spec.baseUrl.replace(/^http/, 'ws');
  const url = spec.kind === 'trpc' ? `${ws}/trpc?connectionParams=1` : `${ws}/ws/chat/${spec.user}/${spec.peer}/?token=${encodeURIComponent(spec.token)}`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, ...(spec.localAddress ? { localAddress: spec.localAddress } : {}) });
    const timer = setTimeout(() => (socket.terminate(), reject(new Error(`${spec.kind} socket: not subscribed in 60 s`))), 60_000);
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    socket.once('unexpected-response', (_req, res) => (clearTimeout(timer), socket.terminate(), reject(new Error(`${spec.kind} upgrade refused: HTTP ${res.statusCode}`))));
    socket.on('open', () => {
      if (spec.kind === 'legacy') return void (clearTimeout(timer), resolve(socket));
      socket.send(JSON.stringify({ method: 'connectionParams', data: { token: spec.token } }));
      socket.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId: spec.roomId } } }));
    });
    socket.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (spec.kind === 'legacy') {
        if (msg.action === 'new_message') spec.onMessage?.(msg.message.content);
        return;
      }
      if (msg.error) return void (clearTimeout(timer), socket.terminate(), reject(new Error(JSON.stringify(msg.error.message ?? msg.error))));
      if (msg.result?.type === 'started') return void (clearTimeout(timer), resolve(socket));
      // Tracked events arrive as `{ id, data: event }`.
      const event = msg.result?.type === 'data' ? (msg.result.data?.data ?? msg.result.data) : undefined;
      if (event?.type === 'message') spec.onMessage?.(event.message.content);
    });
  });
}

export interface IdleWorkerParams {
  kind: IdleKind | 'relay';
  baseUrl: string;
  secret: string;
  /** One socket per entry. */
  sockets: Array<{ user: string; peer: string; roomId: string }>;
  localAddress: string;
  /** Entries whose messages are timed (the first sockets): the worker sends to their rooms as the peer. */
  probes: number;
}

interface Connected {
  sockets: number;
  errors: number;
  firstError?: string;
}

/** Worker side: opens every socket (bounded concurrency), reports, then probes and/or closes on command. */
export async function idleSockets(p: IdleWorkerParams, control: Control) {
  const sockets: WebSocket[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const arrivals = new Map<string, number>();
  const onMessage = (content: string) => arrivals.set(content, performance.now());
  let next = 0;
  await Promise.all(
    Array.from({ length: 48 }, async () => {
      while (next < p.sockets.length) {
        const i = next++;
        const s = p.sockets[i]!;
        try {
          if (p.kind === 'relay') {
            const socket = new WebSocket(`${p.baseUrl}/${s.roomId}/${i % 2 ? 'b' : 'a'}`, { perMessageDeflate: false, localAddress: p.localAddress });
            await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
            sockets.push(socket);
          } else {
            const token = await signToken({ secret: p.secret, userId: s.user, expiresIn: '2h' });
            sockets.push(await openIdleSocket({ kind: p.kind, baseUrl: p.baseUrl, ...s, token, localAddress: p.localAddress, ...(i < p.probes ? { onMessage } : {}) }));
          }
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  control.post({ type: 'connected', sockets: sockets.length, errors, firstError } satisfies Connected & { type: string });
  const latencies: number[] = [];
  let missing = 0;
  const { rounds } = await control.command<{ rounds: number }>('probe');
  if (rounds && p.kind !== 'relay') {
    const probed = p.sockets.slice(0, p.probes);
    const tokens = await Promise.all(probed.map((s) => signToken({ secret: p.secret, userId: s.peer, expiresIn: '1h' })));
    // Round 0 warms the sender's path (token check, user and room caches) and is not counted.
    for (let round = 0; round <= rounds; round++) {
      for (const [k, s] of probed.entries()) {
        const content = `probe ${p.kind} ${k} ${round}`;
        const t0 = performance.now();
        const res = await fetch(`${p.baseUrl}/trpc/messages.send`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens[k]}`, 'content-type': 'application/json' },
          body: JSON.stringify({ roomId: s.roomId, content }),
        });
        const reply = await res.text();
        if (res.status !== 200) throw new Error(`probe send: HTTP ${res.status} ${reply.slice(0, 200)}`);
        for (let t = 0; !arrivals.has(content) && t < 1000; t++) await sleep(1);
        if (round > 0) {
          if (arrivals.has(content)) latencies.push(arrivals.get(content)! - t0);
          else missing++;
        }
        await sleep(10);
      }
    }
  }
  await control.command('close');
  for (const s of sockets) s.terminate();
  return { latencies, missing };
}

const MiB = 1024 * 1024;
/** The section's full size: half tRPC sockets with one subscription, half ws/chat. */
const FULL = 50_000;
const QUICK = 5_000;
/** Sockets per load process, each from a source address of its own (well within one address's ~28k ports). */
const PER_WORKER = 12_500;

interface Server {
  pid: number;
  url: string;
  send(msg: object): void;
  reply<T>(type: string, timeoutMs: number): Promise<T>;
  stop(): Promise<void>;
}

async function startServer(ctx: BenchContext): Promise<Server> {
  const child = spawnNode(join(BENCH_DIR, 'server-process.ts'), {
    nodeArgs: ['--expose-gc', '--max-semi-space-size=8'],
    env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: ctx.dbUrl, DB_POOL_MAX: String(ctx.poolMax), JWT_SECRET: ctx.secret, PUSH: 'off', SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0' },
  });
  const ready = await nextMessage<{ url: string; pid: number }>(child, (m) => m.type === 'ready', 60_000, 'idle server');
  return {
    ...ready,
    send: (msg) => child.send(msg),
    reply: (type, timeoutMs) => nextMessage(child, (m) => m.type === type, timeoutMs, `idle server (${type})`),
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      await Promise.race([exited, sleep(15_000)]);
    },
  };
}

/** Presence changes stored, garbage collected: what is left is what the sockets hold. RSS and V8's heap in use. */
async function quiesce(server: Server) {
  const settled = server.reply('settled', 300_000);
  server.send({ type: 'settle' });
  await settled;
  const collected = server.reply<{ heapUsed: number }>('gc-done', 30_000);
  server.send({ type: 'gc', lastResort: true });
  const { heapUsed } = await collected;
  return { rss: rssBytes(server.pid), heap: heapUsed };
}

type Entry = { user: string; peer: string; roomId: string };

/** Opens `entries` as sockets of a kind from as many load processes as they need; resolves once all are open. */
async function openMany(kind: IdleKind | 'relay', baseUrl: string, ctx: BenchContext, entries: Entry[], firstAddress: number, probes: number) {
  const workers: Worker[] = [];
  for (let w = 0; w * PER_WORKER < entries.length; w++) {
    const sockets = entries.slice(w * PER_WORKER, (w + 1) * PER_WORKER);
    workers.push(await startWorker('idleSockets', { kind, baseUrl, secret: ctx.secret, sockets, localAddress: `127.0.0.${firstAddress + w}`, probes: w === 0 ? probes : 0 } satisfies IdleWorkerParams));
  }
  const t0 = performance.now();
  const connected = await Promise.all(workers.map((w) => w.next<Connected>('connected', 600_000)));
  return {
    workers,
    connectMs: performance.now() - t0,
    sockets: connected.reduce((n, c) => n + c.sockets, 0),
    errors: connected.reduce((n, c) => n + c.errors, 0),
    firstError: connected.find((c) => c.firstError)?.firstError,
  };
}

async function closeMany(workers: Worker[], rounds = 0) {
  for (const w of workers) w.command({ type: 'probe', rounds });
  for (const w of workers) w.command({ type: 'close' });
  return Promise.all(workers.map((w) => w.result<{ latencies: number[]; missing: number }>(300_000)));
}

/**
 * The `idle` section: one server process holding 50,000 idle sockets (`--quick`: 5,000), half tRPC
 * with one subscription and half legacy `ws/chat`, each its own user. Reports what each kind adds
 * per socket, the total RSS, the server's CPU while they idle (a whole heartbeat interval in a
 * full run) and the send-to-receive time of messages to a few of their rooms meanwhile.
 *
 * A kind's cost per socket is what its second half adds to its first: V8 keeps the pages it grew
 * into for a while after collecting, so the first sockets of a fresh process partly fill memory
 * that is already counted in its RSS, while the second half has to grow it.
 */
export async function runIdleSockets(ctx: BenchContext): Promise<Row[]> {
  // The server holds one descriptor per socket plus its pool, logs and listener.
  const fdCap = hardFileLimit() - 300;
  const wanted = ctx.quick ? QUICK : FULL;
  const total = Math.min(wanted, fdCap) & ~7;
  const quarter = total / 4;
  const pairs = await seedPairs(ctx.pool, 'idle50k', total / 2);
  const entries = (from: number, to: number) => pairs.slice(from / 2, to / 2).flatMap((p) => [{ user: p.a, peer: p.b, roomId: p.roomId }, { user: p.b, peer: p.a, roomId: p.roomId }]);
  const probes = ctx.quick ? 2 : 5;
  const rounds = ctx.quick ? 10 : 20;
  const idleMs = ctx.quick ? 5_000 : 30_000;

  const server = await startServer(ctx);
  const all: Worker[] = [];
  // Every load process connects from an address of its own (127.0.0.2, .3, …).
  let address = 2;
  const open = async (kind: IdleKind, from: number, withProbes: boolean) => {
    const r = await openMany(kind, server.url, ctx, entries(from, from + quarter), address, withProbes ? probes : 0);
    address += r.workers.length;
    all.push(...r.workers);
    if (r.errors) ctx.failures.push(`idle sockets: ${r.errors} ${kind} sockets failed (${r.firstError})`);
    return { ...r, after: await quiesce(server) };
  };
  try {
    const start = await quiesce(server);
    const trpcA = await open('trpc', 0, true);
    const trpcB = await open('trpc', quarter, false);
    const legacyA = await open('legacy', 2 * quarter, true);
    const legacyB = await open('legacy', 3 * quarter, false);
    const end = legacyB.after;

    // Idle: nothing but heartbeats, over a whole interval (WS_PING_MS, 30 s by default) in a full run.
    await sleep(1_000);
    const cpu0 = cpuMs(server.pid);
    const t0 = performance.now();
    await sleep(idleMs);
    const idleCpu = (cpuMs(server.pid) - cpu0) / (performance.now() - t0);
    const peak = rssBytes(server.pid);

    const results = await closeMany(all, rounds);
    const latencies = results.flatMap((r) => r.latencies);
    const missing = results.reduce((n, r) => n + r.missing, 0);
    if (missing) ctx.failures.push(`idle sockets: ${missing} probe messages never reached their subscriber`);
    const probe = summarize(latencies);

    // The raw-ws relay, measured alike: the floor a socket costs in Node. Not in a quick run.
    let relayPer = NaN;
    if (!ctx.quick) {
      const relayRss = async () => (await ctx.gc('relay'), rssBytes(ctx.relayPid));
      const relayA = await openMany('relay', ctx.relayUrl, ctx, entries(0, quarter), address, 0);
      address += relayA.workers.length;
      const r1 = await relayRss();
      const relayB = await openMany('relay', ctx.relayUrl, ctx, entries(quarter, 2 * quarter), address, 0);
      const r2 = await relayRss();
      await closeMany([...relayA.workers, ...relayB.workers]);
      relayPer = (r2 - r1) / Math.max(1, relayB.sockets);
    }

    const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
    const per = (a: typeof trpcA, b: typeof trpcB) => ({ rss: (b.after.rss - a.after.rss) / Math.max(1, b.sockets), heap: (b.after.heap - a.after.heap) / Math.max(1, b.sockets) });
    const trpc = per(trpcA, trpcB);
    const legacy = per(legacyA, legacyB);
    const sockets = trpcA.sockets + trpcB.sockets + legacyA.sockets + legacyB.sockets;
    const limited = total < wanted ? ` (fd limit ${hardFileLimit()}: ${wanted.toLocaleString('en')} need about ${(wanted + 300).toLocaleString('en')} descriptors)` : '';
    const base = { n: sockets, wanted, fdLimit: hardFileLimit(), startRss: start.rss, endRss: end.rss, relayPer };
    const kindRow = (surface: string, kind: IdleKind, what: string, a: typeof trpcA, b: typeof trpcB, m: { rss: number; heap: number }): Row => ({
      scenario: 'idle sockets', surface,
      params: `${(a.sockets + b.sockets).toLocaleString('en')} sockets${what}, cost of the second ${b.sockets.toLocaleString('en')}${limited}`,
      result: `${kib(m.rss)} RSS/socket (V8 heap ${kib(m.heap)}); connect ${((a.connectMs + b.connectMs) / 1000).toFixed(1)} s`,
      baseline: Number.isFinite(relayPer) ? `raw-ws ${kib(relayPer)}/socket` : 'raw-ws not measured (--quick)',
      ratio: ratio(m.rss, relayPer),
      data: { ...base, kind, bytesPerSocket: m.rss, heapPerSocket: m.heap, sockets: a.sockets + b.sockets },
    });
    return [
      kindRow('trpc subscription', 'trpc', ', one subscription each', trpcA, trpcB, trpc),
      kindRow('legacy ws/chat', 'legacy', '', legacyA, legacyB, legacy),
      {
        scenario: 'idle sockets', surface: 'both', params: `${sockets.toLocaleString('en')} sockets in one process${limited}`,
        result: `RSS ${(end.rss / MiB).toFixed(0)} MiB (${(start.rss / MiB).toFixed(0)} MiB before the sockets); idle CPU ${(idleCpu * 100).toFixed(1)}% of a core over ${(idleMs / 1000).toFixed(0)} s; delivery p50 ${probe.p50.toFixed(1)} ms, p99 ${probe.p99.toFixed(1)} ms (${probe.n} messages)`,
        baseline: '', ratio: NaN,
        data: { ...base, rssBytes: end.rss, peakBytes: peak, idleCpu, idleMs, probe, missing, perTrpc: trpc.rss, perLegacy: legacy.rss },
      },
    ];
  } finally {
    for (const w of all) if (w.child.exitCode === null) w.child.kill();
    await server.stop();
  }
}
