/**
 * Scenario 3: idle authenticated subscriptions. Clients speak tRPC's WebSocket protocol directly
 * (connectionParams, then `subscription` calls) so thousands fit in a few light client processes.
 */
import WebSocket from 'ws';
import { signToken } from '../../server/identity/sign-token.ts';
import { seedPairs } from '../db.ts';
import { hardFileLimit, rssBytes, sleep } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { startWorker, type Control, type Worker } from '../workers.ts';

interface Sub {
  roomId: string;
  user: string;
  peer: string;
}
interface IdleParams {
  kind: 'trpc' | 'relay';
  url: string;
  secret: string;
  /** One socket per entry; each entry's subscriptions (tRPC: all to the same room). */
  sockets: Array<{ sub: Sub; count: number }>;
  probe: boolean;
}
interface Connected {
  sockets: number;
  subs: number;
  errors: number;
  firstError?: string;
}

function open(p: IdleParams, s: { sub: Sub; count: number }, token: string, onData: (content: string) => void, i: number) {
  return new Promise<WebSocket>((resolve, reject) => {
    const url = p.kind === 'relay' ? `${p.url}/${s.sub.user}/a` : `${p.url.replace(/^http/, 'ws')}/trpc?connectionParams=1`;
    const socket = new WebSocket(url, { perMessageDeflate: false });
    let started = 0;
    const timer = setTimeout(() => reject(new Error('subscribe timed out')), 30_000);
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    socket.on('open', () => {
      if (p.kind === 'relay') return void (clearTimeout(timer), resolve(socket));
      socket.send(JSON.stringify({ method: 'connectionParams', data: { token } }));
      for (let id = 1; id <= s.count; id++) {
        socket.send(JSON.stringify({ id, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId: s.sub.roomId } } }));
      }
    });
    socket.on('message', (raw) => {
      const text = String(raw);
      if (text === 'PING') return socket.send('PONG');
      const msg = JSON.parse(text);
      if (msg.error) return void (clearTimeout(timer), reject(new Error(JSON.stringify(msg.error.message ?? msg.error))));
      if (msg.result?.type === 'started' && ++started === s.count) (clearTimeout(timer), resolve(socket));
      // Tracked events arrive as `{ id, data: event }`.
      const event = msg.result?.type === 'data' ? (msg.result.data?.data ?? msg.result.data) : undefined;
      if (event?.type === 'message') onData(event.message.content);
    });
  });
}

/** Worker side: open every socket (bounded concurrency), report, then probe and/or close on command. */
export async function idleConnections(p: IdleParams, control: Control) {
  const sockets: WebSocket[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const arrivals = new Map<string, number>();
  const tokens = p.kind === 'trpc' ? await Promise.all(p.sockets.map((s) => signToken({ secret: p.secret, userId: s.sub.user, expiresIn: '1h' }))) : [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < p.sockets.length) {
        const i = next++;
        try {
          sockets.push(await open(p, p.sockets[i]!, tokens[i] ?? '', (c) => arrivals.set(c, performance.now()), i));
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  control.post({ type: 'connected', sockets: sockets.length, subs: p.sockets.reduce((n, s) => n + s.count, 0), errors, firstError } satisfies Connected & { type: string });
  const probes: number[] = [];
  if (p.probe) {
    await control.command('probe');
    // The chosen subscriber is the last socket; its peer sends over tRPC HTTP.
    const { sub } = p.sockets.at(-1)!;
    const token = await signToken({ secret: p.secret, userId: sub.peer, expiresIn: '1h' });
    // Probe 0 warms the sender's path (token check, user and room caches) and is not counted.
    for (let n = 0; n < 6; n++) {
      const content = `probe ${n}`;
      const t0 = performance.now();
      const res = await fetch(`${p.url}/trpc/messages.send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ roomId: sub.roomId, content }),
      });
      const reply = await res.text();
      if (res.status !== 200) throw new Error(`probe send: HTTP ${res.status} ${reply.slice(0, 200)}`);
      for (let t = 0; !arrivals.has(content) && t < 200; t++) await sleep(1);
      if (n > 0) probes.push(arrivals.has(content) ? arrivals.get(content)! - t0 : -1);
      await sleep(20);
    }
  }
  await control.command('close');
  for (const s of sockets) s.terminate();
  return { probes };
}

async function measure(ctx: BenchContext, kind: 'trpc' | 'relay', subs: Sub[], socketCap: number) {
  const target = kind === 'trpc' ? 'server' : 'relay';
  const pid = kind === 'trpc' ? ctx.serverPid : ctx.relayPid;
  const socketCount = Math.min(subs.length, socketCap);
  // Past the cap, the first sockets carry a second subscription, so the subscription count is still met.
  const entries = subs.slice(0, socketCount).map((sub, i) => ({ sub, count: kind === 'trpc' && i < subs.length - socketCount ? 2 : 1 }));
  await ctx.gc(target);
  const before = rssBytes(pid);
  const nWorkers = Math.min(4, Math.ceil(socketCount / 2500));
  const per = Math.ceil(entries.length / nWorkers);
  const t0 = performance.now();
  const workers: Worker[] = [];
  for (let w = 0; w < nWorkers; w++) {
    const slice = entries.slice(w * per, (w + 1) * per);
    workers.push(await startWorker('idleConnections', { kind, url: kind === 'trpc' ? ctx.baseUrl : ctx.relayUrl, secret: ctx.secret, sockets: slice, probe: kind === 'trpc' && w === nWorkers - 1 }));
  }
  const connected = await Promise.all(workers.map((w) => w.next<Connected>('connected', 150_000)));
  const connectMs = performance.now() - t0;
  // tRPC acknowledges a subscription before its generator has joined the room bus: wait for that too.
  const expected = kind === 'trpc' ? entries.reduce((n, e) => n + e.count, 0) : socketCount;
  let listeners = await ctx.gc(target);
  for (let t = 0; t < 50 && listeners < expected; t++) (await sleep(100), (listeners = await ctx.gc(target)));
  const after = rssBytes(pid);
  let probes: number[] = [];
  if (kind === 'trpc') {
    workers.at(-1)!.command({ type: 'probe' });
  }
  for (const w of workers) w.command({ type: 'close' });
  const results = await Promise.all(workers.map((w) => w.result<{ probes: number[] }>(60_000)));
  probes = results.flatMap((r) => r.probes);
  // Wait for the server to drop the subscriptions, so the next size starts from the same state.
  let left = Infinity;
  for (let t = 0; t < 50 && (left = await ctx.gc(target)) > 0; t++) await sleep(100);
  if (process.env.BENCH_VERBOSE) console.error(`  ${kind} ${subs.length}: ${JSON.stringify({ connected, connectMs, listeners, left, probes })}`);
  const ok = connected.reduce((n, c) => n + c.sockets, 0);
  const errors = connected.reduce((n, c) => n + c.errors, 0);
  const subsOk = connected.reduce((n, c) => n + (c.errors ? 0 : c.subs), 0);
  return { kind, sockets: ok, subscriptions: subsOk, errors, firstError: connected.find((c) => c.firstError)?.firstError, listeners, connectMs, rssBefore: before, rssAfter: after, bytesPerSocket: (after - before) / Math.max(1, ok), bytesPerSub: (after - before) / Math.max(1, subs.length), probes };
}

export async function runConnections(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.quick ? [500] : [1000, 5000, 20000];
  const pairs = await seedPairs(ctx.pool, 'idle', Math.max(...sizes) / 2);
  const subs: Sub[] = pairs.flatMap((p) => [{ roomId: p.roomId, user: p.a, peer: p.b }, { roomId: p.roomId, user: p.b, peer: p.a }]);
  // The server holds one descriptor per socket plus its pool, logs and listener.
  const socketCap = hardFileLimit() - 300;
  // A discarded round first: code paths, caches and heap growth of a fresh process are not per-connection costs.
  await measure(ctx, 'relay', subs.slice(0, 200), socketCap);
  await measure(ctx, 'trpc', subs.slice(0, 200), socketCap);
  const rows: Row[] = [];
  for (const n of sizes) {
    const relay = await measure(ctx, 'relay', subs.slice(0, n), socketCap);
    const m = await measure(ctx, 'trpc', subs.slice(0, n), socketCap);
    if (m.errors) ctx.failures.push(`connections ${n}: ${m.errors} sockets failed (${m.firstError})`);
    if (m.listeners < n) ctx.failures.push(`connections ${n}: server holds ${m.listeners} live subscriptions, expected ${n}`);
    // -1 marks a probe that never arrived.
    const worstProbe = m.probes.includes(-1) || !m.probes.length ? Infinity : Math.max(...m.probes);
    if (worstProbe === Infinity) ctx.failures.push(`connections ${n}: a probe message never reached its subscriber`);
    else if (worstProbe > 50) ctx.problems.push(`connections ${n}: probe message took ${worstProbe.toFixed(1)} ms (> 50 ms)`);
    const kib = (b: number) => (b / 1024).toFixed(1);
    rows.push({
      scenario: 'idle connections',
      surface: 'trpc subscription',
      params: `${n} subs on ${m.sockets} sockets${m.sockets < n ? ` (fd limit ${hardFileLimit()})` : ''}`,
      result: `connect ${(m.connectMs / 1000).toFixed(1)} s; ${kib(m.bytesPerSub)} KiB RSS/sub (${kib(m.bytesPerSocket)} KiB/socket); probe ${m.probes.map((x) => x.toFixed(1)).join('/')} ms (≤ 50 ms: ${worstProbe <= 50 ? 'yes' : 'no'})`,
      baseline: `raw-ws ${kib(relay.bytesPerSocket)} KiB/socket, connect ${(relay.connectMs / 1000).toFixed(1)} s`,
      ratio: ratio(m.bytesPerSocket, relay.bytesPerSocket),
      data: { n, parley: m, relay },
    });
  }
  return rows;
}
