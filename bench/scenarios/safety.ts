/**
 * What blocks and the moderation hook cost a send: tRPC WebSocket send throughput at c=64 over 64
 * rooms, interleaved rounds of three variants on one database: no blocks and no hook (the main
 * server); 1,000 block pairs stored, the senders blocking bystanders, so the send statement's
 * `not exists` probes walk the index pages the blocks fill (the main server, blocks written
 * before the round, removed before the others); and a second server whose moderation hook, a
 * loopback HTTP server in this process, answers `allow` after 1 ms (no blocks stored).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seedPairs } from '../db.ts';
import { startInstance } from '../instance-process.ts';
import type { BenchContext, Row } from '../report.ts';
import { interleave, listRates, roundRatio, sendRate } from '../rounds.ts';
import type { Loop } from './send-throughput.ts';

const CONC = 64;
const BLOCK_PAIRS = 1_000;
const HOOK_DELAY_MS = 1;

export async function runSafety(ctx: BenchContext): Promise<Row[]> {
  const pairs = await seedPairs(ctx.pool, 'safe', CONC);
  const loops: Loop[] = pairs.map((p) => ({ roomId: p.roomId, user: p.a, other: p.b }));
  await ctx.pool.query(`insert into users (id) select 'safe-bystander' || i from generate_series(0, $1 - 1) i on conflict do nothing`, [BLOCK_PAIRS]);
  const setBlocks = async (on: boolean) => {
    await ctx.pool.query('delete from user_blocks');
    if (on) {
      await ctx.pool.query(
        `insert into user_blocks (blocker_id, blocked_id)
         select 'safe' || (i % $2) || (case when (i / $2) % 2 = 0 then 'a' else 'b' end), 'safe-bystander' || i from generate_series(0, $1 - 1) i`,
        [BLOCK_PAIRS, CONC],
      );
    }
    await ctx.pool.query('analyze user_blocks');
  };

  let hookCalls = 0;
  const hook = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hookCalls++;
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"verdict":"allow"}'), HOOK_DELAY_MS);
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const hooked = await startInstance(ctx, { MODERATION_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/moderate`, MODERATION_SECRET: randomBytes(16).toString('hex'), FANOUT: 'local' });
  const durationMs = ctx.quick ? 400 : 2_000;
  const rate = (url: string) => sendRate(ctx, 'safety', url, loops, durationMs);
  let runs;
  try {
    // Warm both servers' send paths before anything is timed.
    await rate(ctx.baseUrl);
    await rate(hooked.url);
    runs = await interleave(ctx.quick ? 1 : 6, {
      none: async () => (await setBlocks(false), rate(ctx.baseUrl)),
      blocks: async () => {
        await setBlocks(true);
        try {
          return await rate(ctx.baseUrl);
        } finally {
          await setBlocks(false);
        }
      },
      hook: () => rate(hooked.url),
    });
  } finally {
    await hooked.stop();
    hook.close();
  }
  const { none, blocks, hook: withHook } = runs;
  const data = { none, blocks, hook: withHook, durationMs, blockPairs: BLOCK_PAIRS, hookDelayMs: HOOK_DELAY_MS, hookCalls };
  const blockRatio = roundRatio(blocks, none);
  if (!ctx.quick && blockRatio < 0.95) ctx.problems.push(`safety: sends with ${BLOCK_PAIRS} block pairs ran at ${blockRatio.toFixed(2)}× of none (target ≥ 0.95×)`);
  const params = `c=${CONC}, ${CONC} rooms, ${none.length} interleaved rounds of ${durationMs} ms`;
  return [
    {
      scenario: 'safety: blocks',
      surface: 'trpc-ws messages.send',
      params: `${params}; ${BLOCK_PAIRS.toLocaleString('en')} block pairs stored (senders blocking bystanders), no moderation hook`,
      result: listRates(blocks),
      baseline: `no blocks ${listRates(none)}`,
      ratio: blockRatio,
      data,
    },
    {
      scenario: 'safety: moderation hook',
      surface: 'trpc-ws messages.send',
      params: `${params}; loopback hook answering allow after ${HOOK_DELAY_MS} ms (a second server), no blocks; ${hookCalls} hook calls`,
      result: listRates(withHook),
      baseline: `no hook ${listRates(none)}`,
      ratio: roundRatio(withHook, none),
      data,
    },
  ];
}
