/**
 * `node bench/live-ab.ts [--tree=/path/to/other/checkout] [--rates=500,2000] [--variants=trpc,legacy-ws,trpc/legacy-ws]
 *   [--reps=1] [--ms=3000] [--env="FANOUT:local;KEY:value"] [--profile]`
 *
 * Live delivery alone, for comparing two builds back to back: the server is loaded from `--tree`
 * (another checkout, its own `npm ci` done) while this checkout's load generator drives it, so
 * runs alternated by hand (A, B, A, B) differ only in the server. A variant `receivers/senders`
 * puts senders on another surface than receivers (`trpc/legacy-ws`: tRPC subscribers, `ws/chat`
 * senders), which tells the send path's cost from the delivery path's. Prints one line per run
 * with the server's and the generator's CPU; `--profile` writes the server's CPU profile to
 * bench/results/partial/ (read it with `node bench/profile-summary.ts <file>`).
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { createBenchDb, seedPairs } from './db.ts';
import { killChildren, nextMessage, spawnNode, BENCH_DIR } from './proc.ts';
import { RESULTS_DIR } from './report.ts';
import type { DeliveryResult, Variant } from './scenarios/live-delivery.ts';
import { runWorker } from './workers.ts';
import { formatStatementTimes, statementWindow } from './statement-times.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';

// Split at the first '=' only: an --env value may hold one (`--import=x`).
const args = Object.fromEntries(process.argv.slice(2).map((a) => /^--([^=]+)(?:=(.*))?$/s.exec(a)!.slice(1)));
const variants = (args.variants ?? 'trpc,legacy-ws').split(',');
const rates = (args.rates ?? '500,2000').split(',').map(Number);
const reps = Number(args.reps ?? 1);
const extraEnv: Record<string, string> = args.env ? Object.fromEntries(args.env.split(';').map((kv: string) => [kv.slice(0, kv.indexOf(':')), kv.slice(kv.indexOf(':') + 1)])) : {};

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL, { max_connections: 200 });
const db = await createBenchDb(postgres.adminUrl, `parley_ab_${process.pid}`);
const secret = randomBytes(32).toString('base64url');
const server = spawnNode(join(args.tree ? join(args.tree, 'bench') : BENCH_DIR, 'server-process.ts'), {
  nodeArgs: ['--max-semi-space-size=8', ...('profile' in args ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'partial')}`] : [])],
  env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: db.url, DB_POOL_MAX: '10', JWT_SECRET: secret, SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0', DATA_DIR: join(tmpdir(), `parley-ab-${process.pid}`), ...extraEnv },
});
try {
  const srv = await nextMessage<{ url: string; metricsUrl?: string; pid: number }>(server, (m) => m.type === 'ready', 60_000, 'server');
  // A `--tree` checkout without the metrics listener serves /metrics on the API port.
  const metricsUrl = srv.metricsUrl ?? `${srv.url}/metrics`;
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const pairs = await seedPairs(pool, 'live', 100);
  await pool.end();
  console.log(`server from ${args.tree ?? 'this checkout'}${args.env ? ` with ${args.env}` : ''}`);
  for (let r = 0; r < reps; r++)
    for (const rate of rates)
      for (const name of variants) {
        const [variant, senderSurface] = name.split('/') as [Variant, 'trpc-ws' | 'legacy-ws' | undefined];
        const statements = await statementWindow(metricsUrl);
        const x = await runWorker<DeliveryResult>('deliveryLoad', { variant, senderSurface, rate, durationMs: Number(args.ms ?? 3000), pairs, baseUrl: srv.url, relayUrl: '', secret, serverPid: srv.pid }, 90_000);
        const l = x.latency;
        const s = x.fromStored;
        const statement = formatStatementTimes(await statements.end());
        console.log(
          `${name.padEnd(16)} ${String(rate).padStart(5)} msg/s  p50 ${l.p50.toFixed(2)} / p90 ${l.p90.toFixed(2)} / p99 ${l.p99.toFixed(2)} ms` +
            `${s ? `  (stored → arrival p50 ${s.p50.toFixed(1)} / p99 ${s.p99.toFixed(1)}; ${statement})` : ''}  lost ${x.lost} dup ${x.duplicated} shed ${x.shed}` +
            `  CPU: generator ${(x.cpu.generator * 100).toFixed(0)} %, server ${(x.cpu.server * 100).toFixed(0)} %`,
        );
      }
  const stopped = new Promise((resolve) => server.once('exit', resolve));
  server.send({ type: 'stop' });
  await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000))]);
} finally {
  killChildren();
  await db.drop();
  await postgres.stop();
}
