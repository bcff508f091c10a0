/**
 * What NOTIFY costs a send: the same closed-loop load (tRPC WebSocket, c=64 over 64 rooms) against
 * one instance with `FANOUT=local` and one with `FANOUT=postgres`, in the same run. A send answers
 * after its group commit; with the PostgreSQL engine a NOTIFY statement follows each flushed batch
 * in a transaction of its own, so what it may cost the sender is commit contention on the
 * database (the notify queue lock), not a longer send transaction.
 */
import { seedPairs } from '../db.ts';
import { startInstance } from '../instance-process.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { startWorker } from '../workers.ts';

interface SendResult {
  msgsPerSec: number;
  errors: number;
  firstError?: string;
  latency: { p50: number; p99: number };
}

/** local, postgres, postgres, local: a load that drifts during the section weighs on both alike. */
const ORDER = ['local', 'postgres', 'postgres', 'local'] as const;

export async function runNotifyCost(ctx: BenchContext): Promise<Row[]> {
  const loops = (await seedPairs(ctx.pool, 'nc', 64)).map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  const durationMs = ctx.quick ? 500 : 2000;
  const runs: Record<(typeof ORDER)[number], SendResult[]> = { local: [], postgres: [] };
  for (const fanout of ctx.quick ? ORDER.slice(0, 2) : ORDER) {
    const server = await startInstance(ctx, { FANOUT: fanout });
    try {
      const load = await startWorker('sendLoad', { modes: ['trpc-ws'], loops, insertLoops: [], durationMs, baseUrl: server.url, secret: ctx.secret, dbUrl: ctx.dbUrl, poolMax: ctx.poolMax });
      const [r] = await load.result<SendResult[]>(60_000);
      if (r!.errors) ctx.problems.push(`notify cost FANOUT=${fanout}: ${r!.errors} send errors (${r!.firstError})`);
      runs[fanout].push(r!);
    } finally {
      await server.stop();
    }
  }
  const mean = (rs: SendResult[], pick: (r: SendResult) => number) => rs.reduce((sum, r) => sum + pick(r), 0) / rs.length;
  const local = mean(runs.local, (r) => r.latency.p99);
  return (['local', 'postgres'] as const).map((fanout) => {
    const rs = runs[fanout];
    const p99 = mean(rs, (r) => r.latency.p99);
    return {
      scenario: 'send latency with NOTIFY',
      surface: 'trpc-ws',
      params: `c=64, many rooms, FANOUT=${fanout}${fanout === 'postgres' ? ' (one NOTIFY per flushed batch, after its commit)' : ' (no NOTIFY)'}, mean of ${rs.length} runs`,
      result: `p50 ${mean(rs, (r) => r.latency.p50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; ${mean(rs, (r) => r.msgsPerSec).toFixed(0)} msg/s`,
      baseline: fanout === 'local' ? '—' : `FANOUT=local p99 ${local.toFixed(2)} ms`,
      ratio: fanout === 'local' ? NaN : ratio(p99, local),
      data: { fanout, runs: rs },
    };
  });
}
