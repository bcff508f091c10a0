/**
 * Interleaved rounds for A/B send-throughput comparisons: this shared machine's speed drifts by
 * ±15 % from one 2 s round to the next, so every variant runs once per round, the order turning
 * each round, and a ratio is the median of the rounds' ratios (each of neighbours in time).
 */
import { ratio, summarize } from './stats.ts';
import { runWorker } from './workers.ts';
import type { LoadResult, Loop } from './scenarios/send-throughput.ts';
import type { BenchContext } from './report.ts';

export async function interleave<K extends string>(rounds: number, variants: Record<K, () => Promise<number>>): Promise<Record<K, number[]>> {
  const order = Object.keys(variants) as K[];
  const runs = Object.fromEntries(order.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < order.length; i++) {
      const name = order[(i + round) % order.length]!;
      runs[name].push(await variants[name]());
    }
  }
  return runs;
}

export const roundRatio = (xs: number[], ys: number[]) => summarize(xs.map((x, i) => ratio(x, ys[i]!))).p50;

export const listRates = (xs: number[]) => `${xs.map((x) => x.toFixed(0)).join(' / ')} msg/s`;

/** One closed-loop tRPC WebSocket send load against `baseUrl`, in a fresh load process; msg/s. */
export async function sendRate(ctx: BenchContext, what: string, baseUrl: string, loops: Loop[], durationMs: number, extra: Record<string, unknown> = {}): Promise<number> {
  return (await sendRound(ctx, what, baseUrl, loops, durationMs, extra)).msgsPerSec;
}

/** As {@link sendRate}, with the sends made and the machine's CPU over the timed window. */
export async function sendRound(ctx: BenchContext, what: string, baseUrl: string, loops: Loop[], durationMs: number, extra: Record<string, unknown> = {}): Promise<LoadResult> {
  const [r] = await runWorker<LoadResult[]>(
    'sendLoad',
    { modes: ['trpc-ws'], loops, insertLoops: [], durationMs, baseUrl, secret: ctx.secret, dbUrl: ctx.dbUrl, poolMax: ctx.poolMax, ...extra },
    60_000,
  );
  if (r!.errors) ctx.problems.push(`${what}: ${r!.errors} send errors (${r!.firstError})`);
  return r!;
}
