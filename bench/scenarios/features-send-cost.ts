/**
 * Issue 13's "does not slow sends", measured in one run: tRPC WebSocket send throughput at c=16
 * over 16 rooms without the chat features, then with them in use (both participants of every room
 * on an inbox subscription, `rooms.onEvent`, and each recipient moving its read marker as messages
 * arrive), alternating so drift on this shared machine hits both sides alike. BENCH_MARK_EVERY_MS=0
 * marks after every message (the worst case: markRead takes the room row lock that sends take).
 */
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { signToken } from '../../server/auth/sign-token.ts';
import { seedPairs, type Pair } from '../db.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { runWorker } from '../workers.ts';
import type { LoadResult, Loop } from './send-throughput.ts';

const CONC = 16;
/**
 * A recipient's client marks read what it has shown, at most this often per room: a screen
 * re-renders a few times a second, not once per message of a room receiving ~50 msg/s.
 */
const MARK_EVERY_MS = Number(process.env.BENCH_MARK_EVERY_MS ?? 250);

/**
 * `inbox`: inbox streams for both participants; a recipient marks read the newest message it saw,
 * one call in flight per room, at most every MARK_EVERY_MS. `rooms`: what a client did before
 * issue 13, a room subscription per participant: as many deliveries per send, no new features.
 */
async function listen(ctx: BenchContext, pairs: Pair[], listeners: 'inbox' | 'rooms') {
  const clients: ChatClient[] = [];
  const open = async (user: string) => {
    const c = createChatClient({ url: ctx.baseUrl, token: await signToken({ secret: ctx.secret, userId: user, expiresIn: '1h' }) });
    clients.push(c);
    return c;
  };
  let marks = 0;
  let errors = 0;
  const ready: Promise<void>[] = [];
  for (const pair of pairs) {
    for (const user of [pair.a, pair.b]) {
      const c = await open(user);
      let newest = 0;
      let marking = false;
      const mark = async () => {
        marking = true;
        for (let seq = newest; seq > 0; seq = newest) {
          const started = performance.now();
          await c.messages.markRead.mutate({ roomId: pair.roomId, seq }).then(() => marks++, () => errors++);
          if (newest === seq) break;
          await new Promise((r) => setTimeout(r, Math.max(0, MARK_EVERY_MS - (performance.now() - started))));
        }
        marking = false;
      };
      ready.push(
        new Promise((resolve) => {
          if (listeners === 'rooms') return void c.messages.onEvent.subscribe({ roomId: pair.roomId }, { onStarted: () => resolve(), onData: () => {} });
          c.rooms.onEvent.subscribe(undefined, {
            onData: (e) => {
              if (e.type === 'ready') resolve();
              if (e.type !== 'message' || e.message.sender === user) return;
              newest = Math.max(newest, e.message.seq);
              if (!marking) void mark();
            },
          });
        }),
      );
    }
  }
  await Promise.all(ready);
  return {
    async stop() {
      await Promise.all(clients.map((c) => c.close()));
      return { marks, errors };
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
      marks += done.marks;
      if (done.errors) ctx.problems.push(`features send cost: ${done.errors} markRead errors`);
    }
  };
  const alone: number[] = [];
  const rooms: number[] = [];
  const inbox: number[] = [];
  let marks = 0;
  // Interleaved rounds: drift on this shared machine hits every variant alike.
  for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
    alone.push(await sendRate());
    rooms.push(await listening('rooms'));
    inbox.push(await listening('inbox'));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const list = (xs: number[]) => `${xs.map((x) => x.toFixed(0)).join(' / ')} msg/s`;
  const vsRooms = ratio(mean(inbox), mean(rooms));
  if (!ctx.quick && vsRooms < 0.9) ctx.problems.push(`features send cost: sends with inbox streams and read markers ran at ${vsRooms.toFixed(2)}× of sends with room streams (issue 13 allows 0.90×)`);
  const row = (params: string, result: string, baseline: string, r: number): Row => ({
    scenario: 'inbox',
    surface: 'trpc-ws messages.send',
    params: `c=${CONC}, ${CONC} rooms; ${params}`,
    result,
    baseline,
    ratio: r,
    data: { alone, rooms, inbox, marks, durationMs, markEveryMs: MARK_EVERY_MS },
  });
  const withFeatures = `with ${CONC * 2} inbox streams + markRead ≤ 1 per ${MARK_EVERY_MS} ms per room`;
  return [
    row(`${withFeatures} vs no listeners`, `${list(inbox)} (${marks} markRead calls)`, `no listeners ${list(alone)}`, ratio(mean(inbox), mean(alone))),
    row(`${withFeatures} vs ${CONC * 2} room streams (pre-issue-13 client)`, list(inbox), `room streams ${list(rooms)}`, vsRooms),
  ];
}
