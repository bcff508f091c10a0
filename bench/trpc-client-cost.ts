/**
 * `node bench/trpc-client-cost.ts` — what the tRPC WebSocket client adds to every call: the round
 * trip of one cheap mutation (`messages.typing`, no database write) through `@trpc/client`'s
 * `wsLink` against the same call written as a raw JSON-RPC frame on a plain `ws` socket, 2,000
 * each, alternating blocks of 200. The client holds each call for a `setTimeout(0)` (≥ 1 ms in
 * Node) to batch it with others of the same tick, then sends.
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import pg from 'pg';
import WebSocket from 'ws';
import { signToken } from '../server/identity/sign-token.ts';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import type { AppRouter } from '../server/transport/trpc/app.router.ts';
import { createBenchDb, seedPairs } from './db.ts';
import { killChildren, nextMessage, spawnNode, BENCH_DIR } from './proc.ts';
import { summarize } from './stats.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL, { max_connections: 200 });
const db = await createBenchDb(postgres.adminUrl, `parley_client_cost_${process.pid}`);
const secret = randomBytes(32).toString('base64url');
const server = spawnNode(join(BENCH_DIR, 'server-process.ts'), {
  env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: db.url, JWT_SECRET: secret, TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0', TYPING_THROTTLE_MS: '0', DATA_DIR: join(tmpdir(), `parley-client-cost-${process.pid}`) },
});
try {
  const srv = await nextMessage<{ url: string }>(server, (m) => m.type === 'ready', 60_000, 'server');
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  const [pair] = await seedPairs(pool, 'client', 1);
  await pool.end();
  const token = await signToken({ secret, userId: pair!.a, expiresIn: '1h' });
  const url = `${srv.url.replace(/^http/, 'ws')}/trpc`;
  const wsClient = createWSClient({ url, connectionParams: async () => ({ token }) });
  const client = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient })] });
  const raw = new WebSocket(`${url}?token=${token}`);
  await new Promise((resolve, reject) => raw.once('open', resolve).once('error', reject));
  const answers = new Map<number, () => void>();
  raw.on('message', (data) => answers.get((JSON.parse(String(data)) as { id: number }).id)?.());
  let id = 0;
  const input = { roomId: pair!.roomId };
  const calls = {
    '@trpc/client wsLink': async () => void (await client.messages.typing.mutate(input)),
    'raw JSON-RPC frame': () =>
      new Promise<void>((resolve) => {
        const n = ++id;
        answers.set(n, resolve);
        raw.send(JSON.stringify({ id: n, method: 'mutation', params: { path: 'messages.typing', input } }));
      }),
  };
  const times = Object.fromEntries(Object.keys(calls).map((name) => [name, [] as number[]]));
  for (let block = 0; block < 11; block++)
    for (const [name, call] of Object.entries(calls))
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await call();
        // The first block of each warms up.
        if (block > 0) times[name]!.push(performance.now() - t0);
      }
  for (const [name, t] of Object.entries(times)) {
    const s = summarize(t);
    console.log(`${name.padEnd(22)} round trip p50 ${s.p50.toFixed(3)} / p90 ${s.p90.toFixed(3)} / p99 ${s.p99.toFixed(3)} ms (${t.length} calls)`);
  }
  raw.close();
  wsClient.close();
} finally {
  killChildren();
  await db.drop();
  await postgres.stop();
}
process.exit(0);
