/**
 * Scenario 1: persisted send throughput. Closed loop: `conc` virtual users each send, wait for the
 * server's acknowledgement, send again. Many rooms = one room per user; hot room = all in one room.
 */
import pg from 'pg';
import { signToken } from '../../server/identity/sign-token.ts';
import { rawPgSender } from '../baselines/raw-pg.ts';
import { connect, type Surface } from '../clients.ts';
import type { Pair } from '../db.ts';
import { seedPairs } from '../db.ts';
import type { BenchContext, Row } from '../report.ts';
import { machineCpuMs } from '../proc.ts';
import { ratio, summarize, type Summary } from '../stats.ts';
import { runWorker } from '../workers.ts';

type Mode = Surface | 'pg-send-sql' | 'pg-insert';
const PARLEY: Surface[] = ['trpc-http', 'trpc-http-wire', 'trpc-ws', 'rest', 'legacy-ws'];

export interface Loop {
  roomId: string;
  user: string;
  other: string;
}
interface LoadParams {
  modes: Mode[];
  loops: Loop[];
  /** Rooms of their own for the plain INSERT: its made-up seqs would confuse live feeds of shared rooms. */
  insertLoops: Loop[];
  durationMs: number;
  baseUrl: string;
  secret: string;
  dbUrl: string;
  poolMax: number;
}
export interface LoadResult {
  mode: Mode;
  ops: number;
  errors: number;
  firstError?: string;
  msgsPerSec: number;
  latency: Summary;
  /** The whole machine's CPU over the timed window, ms (/proc/stat). */
  machineMs: number;
}

const MAX_OPS = 200_000;

/** Worker side: each mode in turn, same loops, same duration. */
export async function sendLoad(p: LoadParams): Promise<LoadResult[]> {
  const tokens = new Map<string, string>();
  for (const l of p.loops) if (!tokens.has(l.user)) tokens.set(l.user, await signToken({ secret: p.secret, userId: l.user, expiresIn: '1h' }));
  const out: LoadResult[] = [];
  for (const mode of p.modes) {
    out.push(await runMode(mode, p, tokens));
    if (process.env.BENCH_VERBOSE) console.error(`  ${mode} c=${p.loops.length}: ${JSON.stringify(out.at(-1))}`);
  }
  return out;
}

async function runMode(mode: Mode, p: LoadParams, tokens: Map<string, string>): Promise<LoadResult> {
  const pool = mode.startsWith('pg-') ? new pg.Pool({ connectionString: p.dbUrl, max: Math.min(p.loops.length, p.poolMax) }) : undefined;
  const clients = await Promise.all(
    (mode === 'pg-insert' ? p.insertLoops : p.loops).map(async (l) => {
      if (pool) return { send: rawPgSender(pool, mode as 'pg-send-sql', l.roomId, l.user), close: async () => {} };
      const c = await connect(mode as Surface, { baseUrl: p.baseUrl, token: tokens.get(l.user)!, ...l });
      return { send: (s: string) => c.send(s), close: () => c.close() };
    }),
  );
  const latencies = new Float64Array(MAX_OPS);
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  try {
    // Warm-up opens connections and JIT-compiles the path; it is not measured.
    await Promise.all(clients.map(async (c, i) => { for (let n = 0; n < 3; n++) await c.send(`warm ${mode} ${i} ${n}`); }));
    const machine0 = machineCpuMs();
    const start = performance.now();
    const deadline = start + p.durationMs;
    await Promise.all(
      clients.map(async (c, i) => {
        for (let n = 0; performance.now() < deadline && ops < MAX_OPS && errors < 100; n++) {
          const t0 = performance.now();
          try {
            await c.send(`bench ${mode} ${i} ${n}`);
            latencies[ops++] = performance.now() - t0;
          } catch (err) {
            errors++;
            firstError ??= err instanceof Error ? err.message : String(err);
          }
        }
      }),
    );
    const elapsed = performance.now() - start;
    return { mode, ops, errors, firstError, msgsPerSec: (ops / elapsed) * 1000, latency: summarize(latencies.subarray(0, ops)), machineMs: machineCpuMs() - machine0 };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await pool?.end();
  }
}

/** Parent side: the matrix of concurrency × room layout, each cell in a fresh load process. */
export async function runSendThroughput(ctx: BenchContext): Promise<Row[]> {
  const concs = ctx.quick ? [1, 64] : [1, 16, 64];
  const many = await seedPairs(ctx.pool, 'tp', 64);
  const [hot] = await seedPairs(ctx.pool, 'hot', 1);
  const insertMany = await seedPairs(ctx.pool, 'ins', 64);
  const [insertHot] = await seedPairs(ctx.pool, 'inshot', 1);
  const parley = PARLEY.filter((s) => !ctx.surfaces || ctx.surfaces.includes(s));
  const rows: Row[] = [];
  for (const conc of concs) {
    for (const layout of conc === 1 ? ['many rooms'] : ['many rooms', 'hot room']) {
      const loopsOf = (rooms: Pair[], hotRoom: Pair): Loop[] => Array.from({ length: conc }, (_, i) => {
        const pair: Pair = layout === 'hot room' ? hotRoom : rooms[i]!;
        // In the hot room both participants send, as in a real conversation.
        return i % 2 === 0 || layout !== 'hot room' ? { roomId: pair.roomId, user: pair.a, other: pair.b } : { roomId: pair.roomId, user: pair.b, other: pair.a };
      });
      const loops = loopsOf(many, hot!);
      const insertLoops = loopsOf(insertMany, insertHot!);
      const durationMs = ctx.quick ? 300 : 1500;
      const results = await runWorker<LoadResult[]>(
        'sendLoad',
        { modes: ['pg-send-sql', 'pg-insert', ...parley], loops, insertLoops, durationMs, baseUrl: ctx.baseUrl, secret: ctx.secret, dbUrl: ctx.dbUrl, poolMax: ctx.poolMax },
        60_000,
      );
      const base = results.find((r) => r.mode === 'pg-send-sql')!;
      const insert = results.find((r) => r.mode === 'pg-insert')!;
      for (const r of results) {
        if (r.errors) ctx.problems.push(`send ${r.mode} c=${conc} ${layout}: ${r.errors} errors (${r.firstError})`);
        const baseline = r.mode === 'pg-send-sql' ? insert : base;
        rows.push({
          scenario: 'send throughput',
          surface: r.mode,
          params: `c=${conc}, ${layout}`,
          result: `${r.msgsPerSec.toFixed(0)} msg/s, p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms`,
          baseline: r.mode === 'pg-insert' ? '—' : `${baseline.mode} ${baseline.msgsPerSec.toFixed(0)} msg/s`,
          ratio: r.mode === 'pg-insert' ? NaN : ratio(r.msgsPerSec, baseline.msgsPerSec),
          data: { conc, layout, ...r },
        });
      }
    }
  }
  return rows;
}
