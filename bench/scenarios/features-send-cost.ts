/**
 * Do the chat features slow sends? Measured in one run: tRPC WebSocket send throughput at c=16
 * over 16 rooms without the chat features, then with them in use (both participants of every room
 * on an inbox subscription, `rooms.onEvent`, and each recipient moving its read marker as messages
 * arrive), alternating so drift on this shared machine hits both sides alike. Recipients mark
 * through the SDK's `reads.mark`, as an app does: the newest seq wins, a room's calls at most once
 * per second by default; BENCH_MARK_EVERY_MS sets that spacing (250 gives the marker traffic of a
 * client marking four times a second per room).
 */
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { signToken } from '../../server/identity/sign-token.ts';
import { seedPairs, type Pair } from '../db.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio, summarize } from '../stats.ts';
import { runWorker } from '../workers.ts';
import type { LoadResult, Loop } from './send-throughput.ts';

const CONC = 16;
/** The SDK's spacing of a room's markRead calls; unset, the SDK's default (1,000 ms). */
const MARK_EVERY_MS = process.env.BENCH_MARK_EVERY_MS === undefined ? undefined : Number(process.env.BENCH_MARK_EVERY_MS);

/**
 * `inbox`: inbox streams for both participants; a recipient marks read every message it gets
 * (`reads.mark` spaces the calls). `rooms`: a client without inbox streams, a room subscription
 * per participant: as many deliveries per send, no new features.
 */
async function listen(ctx: BenchContext, pairs: Pair[], listeners: 'inbox' | 'rooms') {
  const clients: ChatClient[] = [];
  const open = async (user: string) => {
    const c = createChatClient({ url: ctx.baseUrl, token: await signToken({ secret: ctx.secret, userId: user, expiresIn: '1h' }), markReadEveryMs: MARK_EVERY_MS });
    clients.push(c);
    return c;
  };
  let errors = 0;
  let stopping = false;
  const ready: Promise<void>[] = [];
  for (const pair of pairs) {
    for (const user of [pair.a, pair.b]) {
      const c = await open(user);
      ready.push(
        new Promise((resolve) => {
          if (listeners === 'rooms') return void c.messages.onEvent.subscribe({ roomId: pair.roomId }, { onStarted: () => resolve(), onData: () => {} });
          c.rooms.onEvent.subscribe(undefined, {
            onData: (e) => {
              if (e.type === 'ready') resolve();
              if (e.type !== 'message' || e.message.sender === user) return;
              // Marks still waiting when the clients close are dropped, not errors.
              c.reads.mark(pair.roomId, e.message.seq).catch(() => stopping || errors++);
            },
          });
        }),
      );
    }
  }
  await Promise.all(ready);
  return {
    async stop() {
      stopping = true;
      await Promise.all(clients.map((c) => c.close()));
      return { errors };
    },
  };
}

export async function runFeaturesSendCost(ctx: BenchContext): Promise<Row[]> {
  const pairs = await seedPairs(ctx.pool, 'feat', CONC);
  const loops: Loop[] = pairs.map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  const durationMs = ctx.quick ? 300 : 2_000;
  const sendRate = async () => {
    const [r] = await runWorker<LoadResult[]>(
      'sendLoad',
      { modes: ['trpc-ws'], loops, insertLoops: [], durationMs, baseUrl: ctx.baseUrl, secret: ctx.secret, dbUrl: ctx.dbUrl, poolMax: ctx.poolMax },
      60_000,
    );
    if (r!.errors) ctx.problems.push(`features send cost: ${r!.errors} send errors (${r!.firstError})`);
    return r!.msgsPerSec;
  };
  const listening = async (listeners: 'inbox' | 'rooms') => {
    const on = await listen(ctx, pairs, listeners);
    try {
      return await sendRate();
    } finally {
      const done = await on.stop();
      if (done.errors) ctx.problems.push(`features send cost: ${done.errors} markRead errors`);
    }
  };
  const storedMarks = async () =>
    Number((await ctx.pool.query<{ n: string }>(`select count(*) as n from room_changes where chat_room_id = any($1::uuid[]) and event->>'type' = 'read'`, [pairs.map((p) => p.roomId)])).rows[0]!.n);
  const marksBefore = await storedMarks();
  const runs = { alone: [] as number[], rooms: [] as number[], inbox: [] as number[] };
  const variants = {
    alone: sendRate,
    rooms: () => listening('rooms'),
    inbox: () => listening('inbox'),
  };
  const order = Object.keys(variants) as Array<keyof typeof variants>;
  // Interleaved rounds, the order turning each round: this shared machine's speed drifts by
  // ±15 % from one 2 s round to the next, and a fixed order put one variant always after another's
  // clients closed. The ratio is the median of the rounds' ratios, each of neighbours in time.
  for (let round = 0; round < (ctx.quick ? 1 : 6); round++) {
    for (let i = 0; i < order.length; i++) {
      const name = order[(i + round) % order.length]!;
      runs[name].push(await variants[name]());
    }
  }
  const { alone, rooms, inbox } = runs;
  const marks = (await storedMarks()) - marksBefore;
  const roundRatio = (xs: number[], ys: number[]) => summarize(xs.map((x, i) => ratio(x, ys[i]!))).p50;
  const list = (xs: number[]) => `${xs.map((x) => x.toFixed(0)).join(' / ')} msg/s`;
  const vsRooms = roundRatio(inbox, rooms);
  if (!ctx.quick && vsRooms < 0.9) ctx.problems.push(`features send cost: sends with inbox streams and read markers ran at ${vsRooms.toFixed(2)}× of sends with room streams (the target is at least 0.90×)`);
  const row = (params: string, result: string, baseline: string, r: number): Row => ({
    scenario: 'inbox',
    surface: 'trpc-ws messages.send',
    params: `c=${CONC}, ${CONC} rooms; ${params}`,
    result,
    baseline,
    ratio: r,
    data: { alone, rooms, inbox, marks, durationMs, markEveryMs: MARK_EVERY_MS ?? 'SDK default' },
  });
  const withFeatures = `with ${CONC * 2} inbox streams + every message marked read (reads.mark, ${MARK_EVERY_MS === undefined ? 'SDK default spacing' : `${MARK_EVERY_MS} ms apart`})`;
  return [
    row(`${withFeatures} vs no listeners`, `${list(inbox)} (${marks} markers stored)`, `no listeners ${list(alone)}`, roundRatio(inbox, alone)),
    row(`${withFeatures} vs ${CONC * 2} room streams (a client without inbox streams)`, list(inbox), `room streams ${list(rooms)}`, vsRooms),
  ];
}
