/**
 * What a moderation hook costs a send: tRPC WebSocket send throughput at c=64 over 64 rooms
 * against two servers on one database, one without a hook and one whose hook (in this process,
 * over loopback HTTP) answers `allow` after 1 ms, in alternating rounds so drift on a shared
 * machine hits both alike. Prints each round and the median of the rounds' ratios.
 *
 *   node bench/moderation-cost.ts [--rounds=6] [--ms=2000] [--modes=trpc-ws,rest] [--delay-ms=1]
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { createBenchDb, seedPairs } from './db.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';
import { BENCH_DIR, killChildren, nextMessage, spawnNode } from './proc.ts';
import type { Loop, LoadResult } from './scenarios/send-throughput.ts';
import { ratio, summarize } from './stats.ts';
import { runWorker } from './workers.ts';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const ROUNDS = Number(arg('rounds', '6'));
const DURATION_MS = Number(arg('ms', '2000'));
const MODES = arg('modes', 'trpc-ws,rest').split(',');
const DELAY_MS = Number(arg('delay-ms', '1'));
const CONC = 64;

let calls = 0;
const hook = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    calls++;
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"verdict":"allow"}'), DELAY_MS);
  });
});
await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/moderate`;

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL, { max_connections: 200 });
const db = await createBenchDb(postgres.adminUrl, `parley_bench_moderation_${process.pid}`);
const secret = randomBytes(32).toString('base64url');
const start = (extra: Record<string, string>, tag: string) =>
  spawnNode(join(BENCH_DIR, 'server-process.ts'), {
    nodeArgs: ['--max-semi-space-size=8'],
    env: {
      ...PER_USER_CAPS_OFF,
      MAX_CONNECTIONS_PER_IP: '0',
      PORT: '0',
      METRICS_PORT: 'off',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DATABASE_URL: db.url,
      DB_POOL_MAX: '10',
      JWT_SECRET: secret,
      SEND_RATE_PER_SEC: '0',
      FANOUT: 'local',
      DATA_DIR: join(tmpdir(), `parley-bench-moderation-${tag}-${process.pid}`),
      ...extra,
    },
  });
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
try {
  // One after the other: the first start migrates the database.
  const plainSrv = await nextMessage<{ url: string }>(start({}, 'plain'), (m) => m.type === 'ready', 60_000, 'server');
  const hooked = start({ MODERATION_URL: hookUrl, MODERATION_SECRET: randomBytes(16).toString('hex') }, 'hooked');
  const hookedSrv = await nextMessage<{ url: string }>(hooked, (m) => m.type === 'ready', 60_000, 'server');
  const pairs = await seedPairs(pool, 'mod', CONC);
  const loops: Loop[] = pairs.map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  const rate = async (mode: string, baseUrl: string) => {
    const [r] = await runWorker<LoadResult[]>('sendLoad', { modes: [mode], loops, insertLoops: [], durationMs: DURATION_MS, baseUrl, secret, dbUrl: db.url, poolMax: 10 }, 60_000);
    if (r!.errors) throw new Error(`${mode}: ${r!.errors} send errors (${r!.firstError})`);
    return { rate: r!.msgsPerSec, p50: r!.latency.p50 as number | undefined };
  };
  for (const mode of MODES) {
    await rate(mode, plainSrv.url);
    await rate(mode, hookedSrv.url);
    const none: Array<{ rate: number; p50: number | undefined }> = [];
    const withHook: Array<{ rate: number; p50: number | undefined }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const on of round % 2 ? [true, false] : [false, true]) (on ? withHook : none).push(await rate(mode, on ? hookedSrv.url : plainSrv.url));
      const fmt = (x: { rate: number; p50: number | undefined }) => `${x.rate.toFixed(0)} msg/s${x.p50 === undefined ? '' : `, p50 ${x.p50.toFixed(2)} ms`}`;
      console.log(`${mode} round ${round + 1}: no hook ${fmt(none.at(-1)!)}; hook answering in ${DELAY_MS} ms ${fmt(withHook.at(-1)!)}`);
    }
    const r = summarize(withHook.map((b, i) => ratio(b.rate, none[i]!.rate))).p50;
    console.log(`${mode} c=${CONC}, ${CONC} rooms: hook (${DELAY_MS} ms) / none = ${r.toFixed(3)}× throughput (median of ${ROUNDS} rounds of ${DURATION_MS} ms); hook calls: ${calls}`);
  }
} finally {
  await pool.end();
  killChildren();
  hook.close();
  await db.drop().catch(() => undefined);
  await postgres.stop();
}
