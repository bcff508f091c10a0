/**
 * Scenario 2: live delivery. 100 pairs; user a of each pair sends at a fixed total rate (open
 * loop), user b is subscribed; latency is send start → arrival at b, measured in one process so
 * both ends read the same clock. Every message sent must arrive exactly once.
 */
import WebSocket from 'ws';
import { signToken } from '../../server/identity/sign-token.ts';
import { connect, type SurfaceClient } from '../clients.ts';
import { seedPairs, type Pair } from '../db.ts';
import { cpuMs, sleep } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio, summarize, type Summary } from '../stats.ts';
import { runWorker } from '../workers.ts';
import { formatStatementTimes } from '../statement-times.ts';
import { formatProbe } from '../server-window.ts';
import type { ProbeWindow } from '../server-probe.ts';

/** `trpc-wire`: tRPC's protocol from a plain `ws` client (see bench/clients.ts), the server's surface without the official client's cost. */
export type Variant = 'raw-ws relay' | 'trpc' | 'trpc-wire' | 'legacy-ws';
interface DeliveryParams {
  variant: Variant;
  rate: number;
  durationMs: number;
  pairs: Pair[];
  baseUrl: string;
  /** Where senders connect, when not `baseUrl` (receivers): another instance. */
  senderUrl?: string;
  /** Several instances: pair i sends through instance i mod n and receives on the next one, always another. */
  mesh?: string[];
  relayUrl: string;
  secret: string;
  /** Senders on another surface than receivers (`variant`), to tell the send path's cost from the delivery path's. */
  senderSurface?: 'trpc-ws' | 'legacy-ws';
  /** The process serving the receivers, whose CPU share is reported. */
  serverPid?: number;
  /** How long to wait for stragglers after the last send before counting them lost; default 5 s. */
  drainMs?: number;
  /** Return the slowest 1 % of messages (`slowest`). */
  keepTail?: boolean;
}
export interface DeliveryResult {
  variant: Variant;
  rate: number;
  sent: number;
  sendErrors: number;
  firstError?: string;
  /** Sends skipped because too many were unanswered: the system could not keep up. */
  shed: number;
  received: number;
  lost: number;
  duplicated: number;
  deliveredPerSec: number;
  latency: Summary;
  /**
   * From the storing transaction's start (`created_at`, ms precision) to arrival: the server's
   * part — commit, fan-out, socket write — and the receiving client's, without the send path.
   */
  fromStored?: Summary;
  /** CPU used during the timed part, as a share of one core: this generator and the server. */
  cpu: { generator: number; server: number };
  /** The server's CPU time over the timed part, ms: per message, it is what contention on the machine does not change. */
  serverCpuMs?: number;
  /** With `keepTail`: the slowest 1 % of messages, each as [sent at, ms since the epoch; latency, ms]. */
  slowest?: Array<[number, number]>;
}

async function relayClient(url: string): Promise<SurfaceClient> {
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const self: SurfaceClient = {
    send: async (content) => socket.send(content),
    subscribe: async () => {},
    close: async () => socket.close(),
  };
  socket.on('message', (raw) => self.onMessage?.(String(raw), ''));
  return self;
}

async function endpoints(p: DeliveryParams, pair: Pair, i: number): Promise<[SurfaceClient, SurfaceClient]> {
  if (p.variant === 'raw-ws relay') return [await relayClient(`${p.relayUrl}/${i}/a`), await relayClient(`${p.relayUrl}/${i}/b`)];
  const surface = p.variant === 'trpc' ? 'trpc-ws' : p.variant === 'trpc-wire' ? 'trpc-wire' : 'legacy-ws';
  const senderSurface = p.senderSurface ?? surface;
  const tokenA = await signToken({ secret: p.secret, userId: pair.a, expiresIn: '1h' });
  const tokenB = await signToken({ secret: p.secret, userId: pair.b, expiresIn: '1h' });
  const [senderUrl, receiverUrl] = p.mesh ? [p.mesh[i % p.mesh.length]!, p.mesh[(i + 1) % p.mesh.length]!] : [p.senderUrl ?? p.baseUrl, p.baseUrl];
  const receiver = await connect(surface, { baseUrl: receiverUrl, token: tokenB, user: pair.b, other: pair.a, roomId: pair.roomId });
  await receiver.subscribe();
  const sender = await connect(senderSurface, { baseUrl: senderUrl, token: tokenA, user: pair.a, other: pair.b, roomId: pair.roomId });
  return [sender, receiver];
}

function slowestOf(latencies: Float64Array, sentAt: Float64Array): Array<[number, number]> {
  const order = [...latencies.keys()].sort((a, b) => latencies[b]! - latencies[a]!);
  return order.slice(0, Math.ceil(latencies.length / 100)).map((i) => [performance.timeOrigin + sentAt[i]!, latencies[i]!]);
}

export async function deliveryLoad(p: DeliveryParams): Promise<DeliveryResult> {
  const ends = await Promise.all(p.pairs.map((pair, i) => endpoints(p, pair, i)));
  const total = Math.round((p.rate * p.durationMs) / 1000);
  const sentAt = new Map<string, number>();
  const seen = new Set<string>();
  const latencies = new Float64Array(total);
  const sentAtOf = new Float64Array(total);
  const fromStored = new Float64Array(total);
  let stamped = 0;
  let received = 0, duplicated = 0, sent = 0, acked = 0, sendErrors = 0, shed = 0, lastArrival = 0;
  let firstError: string | undefined;
  let warm = 0;
  for (const [, receiver] of ends) {
    receiver.onMessage = (content, _id, createdAt) => {
      const now = performance.now();
      const wallNow = performance.timeOrigin + now;
      if (content.startsWith('warm')) return void warm++;
      const t0 = sentAt.get(content);
      if (t0 === undefined) return;
      if (seen.has(content)) return void duplicated++;
      seen.add(content);
      sentAtOf[received] = t0;
      latencies[received++] = now - t0;
      if (createdAt) fromStored[stamped++] = wallNow - Date.parse(createdAt);
      lastArrival = now;
    };
  }
  // One message per pair first: connections open, server paths warm, subscriptions proven live.
  await Promise.all(ends.map(([sender], i) => sender.send(`warm ${i}`)));
  for (let t = 0; warm < ends.length && t < 500; t++) await sleep(10);
  if (warm < ends.length) throw new Error(`warm-up: ${warm}/${ends.length} pairs delivered`);

  const maxOutstanding = Math.max(200, p.rate);
  const cpuBefore = { generator: process.cpuUsage(), server: p.serverPid ? cpuMs(p.serverPid) : NaN };
  const start = performance.now();
  while (sent + shed < total && performance.now() - start < p.durationMs + 2_000) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * p.rate));
    for (; sent + shed < due; ) {
      const outstanding = p.variant === 'raw-ws relay' ? sent - received : sent - acked - sendErrors;
      if (outstanding >= maxOutstanding) {
        shed++;
        continue;
      }
      const n = sent++;
      const content = `m ${n % ends.length} ${n}`;
      sentAt.set(content, performance.now());
      ends[n % ends.length]![0].send(content).then(
        () => acked++,
        (err: unknown) => {
          sendErrors++;
          sentAt.delete(content);
          firstError ??= err instanceof Error ? err.message : String(err);
        },
      );
    }
    await sleep(1);
  }
  const drainUntil = performance.now() + (p.drainMs ?? 5_000);
  while (received + sendErrors < sent && performance.now() < drainUntil) await sleep(5);
  const elapsed = performance.now() - start;
  const generatorCpu = process.cpuUsage(cpuBefore.generator);
  const serverCpuMs = p.serverPid ? cpuMs(p.serverPid) - cpuBefore.server : NaN;
  const cpu = { generator: (generatorCpu.user + generatorCpu.system) / 1000 / elapsed, server: serverCpuMs / elapsed };
  await sleep(100); // a late duplicate would arrive now
  await Promise.all(ends.flatMap(([a, b]) => [a.close(), b.close()]));
  return {
    variant: p.variant, rate: p.rate, sent, sendErrors, firstError, shed, received,
    lost: sent - sendErrors - received,
    duplicated,
    deliveredPerSec: received / (Math.max(1, lastArrival - start) / 1000),
    latency: summarize(latencies.subarray(0, received)),
    ...(stamped && { fromStored: summarize(fromStored.subarray(0, stamped)) }),
    cpu,
    ...(Number.isFinite(serverCpuMs) && { serverCpuMs }),
    ...(p.keepTail && { slowest: slowestOf(latencies.subarray(0, received), sentAtOf) }),
  };
}

export interface DeliveryRun extends DeliveryResult {
  /** The run's send statements as the server measured them (absent for the relay). */
  statementMs?: { p50?: number; p99?: number };
  /** The server's event-loop delay and GC pauses over the run. */
  serverLoop?: Omit<ProbeWindow, 'pauses'>;
}

export async function runLiveDelivery(ctx: BenchContext): Promise<{ rows: Row[]; results: DeliveryRun[] }> {
  const pairs = await seedPairs(ctx.pool, 'live', 100);
  const variants: Variant[] = ['raw-ws relay', 'trpc', 'trpc-wire', 'legacy-ws'];
  const results: DeliveryRun[] = [];
  const rows: Row[] = [];
  // Quick keeps the lowest and the overload rate: the loss check matters most where queues build up.
  for (const rate of ctx.quick ? [500, 5000] : [500, 2000, 5000]) {
    let base: DeliveryResult | undefined;
    for (const variant of variants) {
      const durationMs = ctx.quick ? 600 : 3000;
      // The database's share (how long the run's send statements took, commit included) and what
      // stalled the server's event loop meanwhile (GC pauses among it).
      const window = variant === 'raw-ws relay' ? undefined : await ctx.serverWindow();
      const r = await runWorker<DeliveryResult>('deliveryLoad', { variant, rate, durationMs, pairs, baseUrl: ctx.baseUrl, relayUrl: ctx.relayUrl, secret: ctx.secret, serverPid: variant === 'raw-ws relay' ? ctx.relayPid : ctx.serverPid }, 90_000);
      const server = await window?.end();
      const statement = server?.statement;
      // Each pause's time is for matching slow messages (live-ab); the results keep the totals.
      const serverLoop = server?.probe && (({ pauses: _, ...totals }) => totals)(server.probe);
      results.push({ ...r, ...(statement && { statementMs: statement }), ...(serverLoop && { serverLoop }) });
      if (variant === 'raw-ws relay') base = r;
      if (r.lost || r.duplicated) ctx.failures.push(`live delivery ${variant} @${rate}/s: ${r.lost} lost, ${r.duplicated} duplicated of ${r.sent - r.sendErrors}`);
      if (r.sendErrors) ctx.problems.push(`live delivery ${variant} @${rate}/s: ${r.sendErrors} send errors (${r.firstError})`);
      if (r.shed) ctx.problems.push(`live delivery ${variant} @${rate}/s: generator shed ${r.shed} sends (more than ${Math.max(200, rate)} unanswered)`);
      const l = r.latency;
      const stored = r.fromStored && ` (stored → arrival p50 ${r.fromStored.p50.toFixed(1)} / p99 ${r.fromStored.p99.toFixed(1)} ms)`;
      // What a message cost the server, which the machine's other load changes far less than latency.
      const perMessage = r.received && r.serverCpuMs !== undefined && serverLoop
        ? `; per message: server CPU ${((r.serverCpuMs * 1000) / r.received).toFixed(0)} µs, ${((serverLoop.gc.count * 1000) / r.received).toFixed(1)} GC pauses per 1,000`
        : '';
      const statementText = `${statement?.p50 === undefined ? '' : `; ${formatStatementTimes(statement)}`}${server?.probe ? `; ${formatProbe(server.probe)}` : ''}`;
      rows.push({
        scenario: 'live delivery',
        surface: variant,
        params: `${rate} msg/s, 100 pairs`,
        result: `p50 ${l.p50.toFixed(2)} / p90 ${l.p90.toFixed(2)} / p99 ${l.p99.toFixed(2)} / max ${l.max.toFixed(1)} ms${stored ?? ''}; ${r.deliveredPerSec.toFixed(0)} delivered/s; lost ${r.lost}, dup ${r.duplicated}${r.shed ? `, shed ${r.shed}` : ''}${statementText}; CPU: generator ${(r.cpu.generator * 100).toFixed(0)} %, server ${(r.cpu.server * 100).toFixed(0)} % of a core${perMessage}`,
        baseline: variant === 'raw-ws relay' ? '—' : `raw-ws p99 ${base!.latency.p99.toFixed(2)} ms`,
        ratio: variant === 'raw-ws relay' ? NaN : ratio(l.p99, base!.latency.p99),
        data: { ...r, ...(statement && { statementMs: statement }), ...(serverLoop && { serverLoop }) },
      });
    }
  }
  return { rows, results };
}
