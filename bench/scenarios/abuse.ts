/**
 * One ordinary account against an instance of its own, at full size: an attacker holding 10,000
 * rooms (seeded by SQL) opens two sockets of 1,000 `rooms.onEvent` each, then opens and closes
 * tRPC sockets in a loop. Reports the server's peak RSS and, during and after the attack, /healthz
 * p99 and a bystander's send p99 (REST, one every 50 ms), with the production limits on.
 */
import WebSocket from 'ws';
import { signToken } from '../../server/identity/sign-token.ts';
import { seedPairs } from '../db.ts';
import { startInstance } from '../instance-process.ts';
import { rssBytes, sleep } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { summarize } from '../stats.ts';
import { PER_USER_CAPS_DEFAULT } from '../load-env.ts';

const ROOMS = 10_000;
const MiB = 1024 * 1024;

const within = <T>(ms: number, p: Promise<T>) => Promise.race([p, sleep(ms).then(() => undefined)]);

async function openSocket(url: string) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return ws;
}

export async function runAbuse(ctx: BenchContext): Promise<Row[]> {
  const attacker = `abuse-mallory-${process.pid}`;
  await ctx.pool.query(`insert into users (id) select $1::text || '-v' || g from generate_series(1, $2::int) g union all select $1::text`, [attacker, ROOMS]);
  await ctx.pool.query(`insert into chat_rooms (id, participant1_id, participant2_id) select gen_random_uuid(), $1::text, $1::text || '-v' || g from generate_series(1, $2::int) g`, [attacker, ROOMS]);
  const [pair] = await seedPairs(ctx.pool, 'abuse', 1);
  // The defaults an operator runs with: every limit on.
  const server = await startInstance(ctx, { ...PER_USER_CAPS_DEFAULT, ROOM_OPEN_RATE_PER_SEC: '1', ROOMS_OPEN_PER_DAY: '200', LOG_LEVEL: 'error' });
  const wsBase = server.url.replace(/^http/, 'ws');
  const token = await signToken({ secret: ctx.secret, userId: attacker, expiresIn: '1h' });
  const bystander = await signToken({ secret: ctx.secret, userId: pair!.a, expiresIn: '1h' });
  let phase: 'during' | 'after' = 'during';
  const by = { during: { health: [] as number[], send: [] as number[] }, after: { health: [] as number[], send: [] as number[] } };
  let peak = rssBytes(server.pid);
  let stopped = false;
  const probe = async (kind: 'health' | 'send', call: () => Promise<Response>) => {
    while (!stopped) {
      const t0 = performance.now();
      await within(15_000, call().then((r) => r.arrayBuffer()).catch(() => undefined));
      const ms = performance.now() - t0;
      by[phase][kind].push(ms);
      peak = Math.max(peak, rssBytes(server.pid));
      await sleep(50);
    }
  };
  const body = JSON.stringify({ content: 'bystander', chat_room: pair!.roomId, sender: pair!.a });
  const probes = Promise.all([
    probe('health', () => fetch(`${server.url}/healthz`)),
    probe('send', () => fetch(`${server.url}/${pair!.roomId}/messages/`, { method: 'POST', headers: { authorization: `Bearer ${bystander}`, 'content-type': 'application/json' }, body })),
  ]);
  let cycles = 0;
  let alive = true;
  try {
    const streams = await Promise.all(
      [1, 2].map(async () => {
        const ws = await openSocket(`${wsBase}/trpc?token=${token}`);
        ws.send(JSON.stringify(Array.from({ length: 1_000 }, (_, id) => ({ id, method: 'subscription', params: { path: 'rooms.onEvent' } }))));
        return ws;
      }),
    );
    await sleep(ctx.quick ? 2_000 : 5_000);
    for (const ws of streams) ws.terminate();
    const until = Date.now() + (ctx.quick ? 6_000 : 24_000);
    while (Date.now() < until) {
      const ws = await within(5_000, openSocket(`${wsBase}/trpc?token=${token}`).catch(() => undefined));
      if (!ws) {
        alive = false;
        break;
      }
      await within(5_000, new Promise<void>((resolve) => {
        ws.once('message', () => resolve());
        ws.send(JSON.stringify({ id: 1, method: 'query', params: { path: 'rooms.list', input: { limit: 1 } } }));
      }));
      ws.terminate();
      cycles++;
    }
    phase = 'after';
    await sleep(ctx.quick ? 3_000 : 10_000);
  } finally {
    stopped = true;
    await probes;
    await server.stop();
  }
  const p99 = (xs: number[]) => summarize(xs).p99.toFixed(1);
  return [
    {
      scenario: 'abuse: one account, 10,000 rooms',
      surface: 'trpc-ws',
      params: `2 sockets × 1,000 rooms.onEvent, then ${cycles} socket open/close cycles; default limits`,
      result:
        `peak RSS ${(peak / MiB).toFixed(0)} MiB${alive ? '' : ' (server stopped answering)'}; /healthz p99 ${p99(by.during.health)} ms during, ${p99(by.after.health)} ms after; ` +
        `bystander send p99 ${p99(by.during.send)} ms during, ${p99(by.after.send)} ms after`,
      baseline: '—',
      ratio: NaN,
      data: { peakRssBytes: peak, cycles, alive, during: { health: summarize(by.during.health), send: summarize(by.during.send) }, after: { health: summarize(by.after.health), send: summarize(by.after.send) } },
    },
  ];
}
