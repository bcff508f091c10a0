/**
 * The inbox and the change log. `rooms.list` for a user with 1,000 rooms
 * (first page and every page, `unread` computed exactly), then markRead and edit throughput.
 * Baseline: the same inbox statement's cost is what it is; the figure to watch is that sends do
 * not slow down, measured with and without the features by the `inbox-features` section
 * (features-send-cost.ts), which `--only=inbox` runs too.
 */
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { signToken } from '../../server/identity/sign-token.ts';
import type { BenchContext, Row } from '../report.ts';
import { summarize } from '../stats.ts';

const USER = 'inbox-bench-owner';

/** 1,000 rooms for USER, each with `perRoom` messages alternating sender (USER's own ones editable), activity spread in time. */
async function seed(ctx: BenchContext, rooms: number, perRoom: number) {
  await ctx.pool.query(`insert into users (id) select 'inbox-peer-' || i from generate_series(1, $1) i union all select $2 on conflict do nothing`, [rooms, USER]);
  const { rows } = await ctx.pool.query<{ id: string }>(
    // Conversations the user has answered: rooms.list's inbox leaves unanswered requests out.
    `insert into chat_rooms (id, participant1_id, participant2_id, last_seq, last_message_at, accepted_at)
     select gen_random_uuid(), 'inbox-peer-' || i, $2, $3, now() - make_interval(secs => i), now() from generate_series(1, $1) i
     returning id`,
    [rooms, USER, perRoom],
  );
  await ctx.pool.query(
    `insert into messages (id, chat_room_id, sender_id, content, seq)
     select gen_random_uuid(), r.id, case when s % 2 = 0 then $2 else r.participant1_id end, 'inbox message ' || s, s
       from chat_rooms r, generate_series(1, $1) s where r.participant2_id = $2`,
    [perRoom, USER],
  );
  return rows.map((r) => r.id);
}

async function timed(n: number, concurrency: number, call: (i: number) => Promise<unknown>) {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        await call(i);
        latencies.push(performance.now() - s);
      }
    }),
  );
  return { perSecond: n / ((performance.now() - t0) / 1000), ...summarize(latencies) };
}

export async function runInbox(ctx: BenchContext): Promise<Row[]> {
  const rooms = 1000;
  const perRoom = 10;
  const roomIds = await seed(ctx, rooms, perRoom);
  const chat: ChatClient = createChatClient({ url: ctx.baseUrl, token: await signToken({ secret: ctx.secret, userId: USER, expiresIn: '1h' }) });
  try {
    const firstPage = await timed(ctx.quick ? 20 : 200, 1, () => chat.rooms.list.query({ limit: 50 }));
    const walk = await timed(ctx.quick ? 3 : 20, 1, async () => {
      let cursor: string | undefined;
      let seen = 0;
      do {
        const page = await chat.rooms.list.query({ limit: 500, ...(cursor ? { cursor } : {}) });
        seen += page.items.length;
        if (page.items.some((r) => r.unread !== perRoom / 2)) ctx.failures.push('inbox: an unread count is not exact');
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      if (seen !== rooms) ctx.failures.push(`inbox: walked ${seen} rooms of ${rooms}`);
    });
    const marks = ctx.quick ? 200 : rooms;
    const markRead = await timed(marks, 16, (i) => chat.messages.markRead.mutate({ roomId: roomIds[i % rooms]!, seq: perRoom }));
    const { rows: own } = await ctx.pool.query<{ id: string; chat_room_id: string }>('select id, chat_room_id from messages where sender_id = $1 limit $2', [USER, ctx.quick ? 200 : 2000]);
    const edit = await timed(own.length, 16, (i) => chat.messages.edit.mutate({ roomId: own[i]!.chat_room_id, messageId: own[i]!.id, content: `edited ${i}` }));
    const row = (surface: string, params: string, s: Awaited<ReturnType<typeof timed>>, extra = ''): Row => ({
      scenario: 'inbox',
      surface,
      params,
      result: `${s.perSecond.toFixed(0)}/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms${extra}`,
      baseline: '—',
      ratio: NaN,
      data: { ...s },
    });
    return [
      row('trpc-http rooms.list', `${rooms} rooms, first page of 50, unread exact`, firstPage),
      row('trpc-http rooms.list', `${rooms} rooms, every page (2 × 500)`, walk),
      row('trpc-http messages.markRead', `c=16, ${marks} calls over ${rooms} rooms`, markRead),
      row('trpc-http messages.edit', `c=16, ${own.length} edits`, edit),
    ];
  } finally {
    await chat.close();
  }
}
