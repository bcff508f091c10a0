/**
 * The send statements' share of a block's cost, isolated from the machine's drift: two databases
 * on one PostgreSQL, the same 64 rooms in each, 1,000 block pairs in one of them; every loop sends
 * to both in turn (statement by statement), so both see the same load at the same moment. Times
 * the one-message statement and the 64-message group-commit statement.
 *
 *   node bench/block-statement-cost.ts [--n=2000] [--conc=8] [--aa]
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createOrm, migrate } from '../server/infra/db/orm.ts';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { STORE_MESSAGES_SQL, STORE_ONE_MESSAGE_SQL, storeMessagesParam } from '../server/messages/message-store.ts';
import { createBenchDb, seedPairs, type Pair } from './db.ts';
import { summarize } from './stats.ts';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const N = Number(arg('n', '2000'));
const CONC = Number(arg('conc', '8'));
/** 64 rooms per loop: the coalescer never puts one room in two statements at once, so neither do the loops. */
const ROOMS = 64 * Number(arg('conc', '8'));
const PAIRS = 1_000;
/** `--aa`: no blocks on either side, to see what the two databases differ by without them. */
const AA = process.argv.includes('--aa');

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL);
const dbs = await Promise.all(['none', 'pairs'].map((k) => createBenchDb(postgres.adminUrl, `parley_bench_blockstmt_${k}_${process.pid}`)));
const pools: pg.Pool[] = [];
try {
  const sides = await Promise.all(
    dbs.map(async (db, i) => {
      const orm = await createOrm({ clientUrl: db.url, poolMax: 1 });
      await migrate(orm);
      await orm.close(true);
      const pool = new pg.Pool({ connectionString: db.url, max: CONC });
      pools.push(pool);
      const pairs = await seedPairs(pool, 'blk', ROOMS);
      // Both have the bystanders: only the blocks differ (the users index is probed by every insert).
      await pool.query(`insert into users (id) select 'bystander' || i from generate_series(0, $1 - 1) i`, [PAIRS]);
      if (i === 1 && !AA) {
        await pool.query(
          `insert into user_blocks (blocker_id, blocked_id) select 'blk' || (i % $2) || (case when (i / $2) % 2 = 0 then 'a' else 'b' end), 'bystander' || i from generate_series(0, $1 - 1) i`,
          [PAIRS, ROOMS],
        );
      }
      await pool.query('vacuum analyze');
      return { pool, pairs };
    }),
  );
  const one = STORE_ONE_MESSAGE_SQL.replace(/\$(\d)/g, (_, d: string) => `$${d}`);
  const time = async (pool: pg.Pool, text: string, values: unknown[]) => {
    const started = performance.now();
    await pool.query(text, values);
    return performance.now() - started;
  };
  const loopRooms = (pairs: Pair[], loop: number) => pairs.slice(loop * 64, loop * 64 + 64);
  const single = (pool: pg.Pool, pair: Pair) => time(pool, one, [pair.roomId, randomUUID(), pair.a, 'hello']);
  const batch = (pool: pg.Pool, pairs: Pair[]) => time(pool, STORE_MESSAGES_SQL, [storeMessagesParam(pairs.map((p) => ({ roomId: p.roomId, sender: p.a, content: 'hello' }))).json]);
  for (const [name, run, count] of [
    ['one message per statement', (side: (typeof sides)[number], k: number, loop: number) => single(side.pool, loopRooms(side.pairs, loop)[k % 64]!), N],
    ['64 messages per statement (64 rooms)', (side: (typeof sides)[number], _k: number, loop: number) => batch(side.pool, loopRooms(side.pairs, loop)), N / 10],
  ] as const) {
    const ms: number[][] = [[], []];
    await Promise.all(
      Array.from({ length: CONC }, async (_, loop) => {
        for (let k = loop; k < count; k += CONC) {
          // Each loop turns the order every step, so neither side always goes first.
          const order = k % 2 ? [1, 0] : [0, 1];
          for (const i of order) ms[i]!.push(await run(sides[i]!, k, loop));
        }
      }),
    );
    const [none, pairs] = ms.map((xs) => summarize(xs));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(
      `${name}, c=${CONC}: none mean ${mean(ms[0]!).toFixed(3)} ms (p50 ${none!.p50.toFixed(3)}), ${PAIRS} pairs mean ${mean(ms[1]!).toFixed(3)} ms (p50 ${pairs!.p50.toFixed(3)}); throughput ratio pairs/none = ${(mean(ms[0]!) / mean(ms[1]!)).toFixed(3)}×`,
    );
  }
} finally {
  await Promise.all(pools.map((p) => p.end()));
  for (const db of dbs) await db.drop().catch(() => undefined);
  await postgres.stop();
}
