/**
 * What blocks cost a send: tRPC WebSocket and REST send throughput at c=64 over 64 rooms, with
 * no blocks stored and with 1,000 block pairs (the senders blocking others: the probes of the send
 * statement walk the same index pages the blocks fill), in alternating rounds so drift on a shared
 * machine hits both alike. Prints each round and the median of the rounds' ratios.
 *
 *   node bench/block-send-cost.ts [--rounds=6] [--ms=2000] [--modes=trpc-ws,rest]
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { createBenchDb, seedPairs } from './db.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';
import { BENCH_DIR, killChildren, nextMessage, spawnNode } from './proc.ts';
import type { LoadResult, Loop } from './scenarios/send-throughput.ts';
import { ratio, summarize } from './stats.ts';
import { runWorker } from './workers.ts';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const ROUNDS = Number(arg('rounds', '6'));
const DURATION_MS = Number(arg('ms', '2000'));
const MODES = arg('modes', 'trpc-ws,rest').split(',');
const CONC = 64;
const PAIRS = 1_000;

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL, { max_connections: 200 });
const db = await createBenchDb(postgres.adminUrl, `parley_bench_blocks_${process.pid}`);
const secret = randomBytes(32).toString('base64url');
const server = spawnNode(join(BENCH_DIR, 'server-process.ts'), {
  nodeArgs: ['--max-semi-space-size=8'],
  env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: 'off', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: db.url, DB_POOL_MAX: '10', JWT_SECRET: secret, SEND_RATE_PER_SEC: '0', FANOUT: 'local', DATA_DIR: join(tmpdir(), `parley-bench-blocks-${process.pid}`) },
});
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
try {
  const srv = await nextMessage<{ url: string }>(server, (m) => m.type === 'ready', 60_000, 'server');
  const pairs = await seedPairs(pool, 'blk', CONC);
  const loops: Loop[] = pairs.map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  await pool.query(`insert into users (id) select 'bystander' || i from generate_series(0, $1 - 1) i`, [PAIRS]);
  const setBlocks = async (on: boolean) => {
    await pool.query('truncate user_blocks');
    if (on) {
      await pool.query(
        `insert into user_blocks (blocker_id, blocked_id) select 'blk' || (i % $2) || (case when i % 2 = 0 then 'a' else 'b' end), 'bystander' || i from generate_series(0, $1 - 1) i`,
        [PAIRS, CONC],
      );
    }
    await pool.query('analyze user_blocks');
  };
  const rate = async (mode: string) => {
    const [r] = await runWorker<LoadResult[]>('sendLoad', { modes: [mode], loops, insertLoops: [], durationMs: DURATION_MS, baseUrl: srv.url, secret, dbUrl: db.url, poolMax: 10 }, 60_000);
    if (r!.errors) throw new Error(`${mode}: ${r!.errors} send errors (${r!.firstError})`);
    return r!.msgsPerSec;
  };
  for (const mode of MODES) {
    await setBlocks(false);
    await rate(mode); // warm-up
    const none: number[] = [];
    const blocked: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const on of round % 2 ? [true, false] : [false, true]) {
        await setBlocks(on);
        (on ? blocked : none).push(await rate(mode));
      }
      console.log(`${mode} round ${round + 1}: none ${none.at(-1)!.toFixed(0)} msg/s, ${PAIRS} pairs ${blocked.at(-1)!.toFixed(0)} msg/s`);
    }
    const r = summarize(blocked.map((b, i) => ratio(b, none[i]!))).p50;
    console.log(`${mode} c=${CONC}, ${CONC} rooms: with ${PAIRS} block pairs / none = ${r.toFixed(3)}× (median of ${ROUNDS} rounds of ${DURATION_MS} ms)`);
  }
} finally {
  await pool.end();
  killChildren();
  await db.drop().catch(() => undefined);
  await postgres.stop();
}
