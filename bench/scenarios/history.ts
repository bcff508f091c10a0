/**
 * Scenario 4: the legacy full-history GET of a large room. The server must stream it: its peak
 * RSS growth during the request is the figure that matters, beside time and throughput.
 */
import { signToken } from '../../server/identity/sign-token.ts';
import { seedHistory, seedPairs } from '../db.ts';
import { rssBytes, rssSampler } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';

export async function runHistory(ctx: BenchContext): Promise<Row[]> {
  const count = ctx.quick ? 10_000 : 100_000;
  const [pair] = await seedPairs(ctx.pool, 'hist', 1);
  const seedStart = performance.now();
  await seedHistory(ctx.pool, pair!, count);
  const seedMs = performance.now() - seedStart;

  // Baseline: the same rows straight from PostgreSQL, serialized the same way, no HTTP.
  const b0 = performance.now();
  const { rows } = await ctx.pool.query('select id, chat_room_id, sender_id, content, created_at, seq from messages where chat_room_id = $1 order by seq', [pair!.roomId]);
  const baseBytes = Buffer.byteLength(JSON.stringify(rows.map((r) => ({ id: r.id, chat_room: r.chat_room_id, sender: r.sender_id, content: r.content, created_at: r.created_at }))));
  const baseMs = performance.now() - b0;

  const token = await signToken({ secret: ctx.secret, userId: pair!.a, expiresIn: '1h' });
  await ctx.gc('server');
  const before = rssBytes(ctx.serverPid);
  const sampler = rssSampler(ctx.serverPid, 10);
  const t0 = performance.now();
  const res = await fetch(`${ctx.baseUrl}/${pair!.roomId}/messages/`, { headers: { authorization: `Bearer ${token}` } });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let firstByteMs = NaN;
  for await (const chunk of res.body!) {
    if (!bytes) firstByteMs = performance.now() - t0;
    bytes += chunk.byteLength;
    chunks.push(Buffer.from(chunk));
  }
  const totalMs = performance.now() - t0;
  const peak = sampler.stop();
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Array<{ id: string }>;
  if (res.status !== 200 || body.length !== count || new Set(body.map((m) => m.id)).size !== count) {
    ctx.failures.push(`history: HTTP ${res.status}, ${body.length} messages of ${count}`);
  }
  const growthMiB = (peak - before) / 2 ** 20;
  const mbps = bytes / 1e6 / (totalMs / 1000);
  return [
    {
      scenario: 'history',
      surface: 'rest GET',
      params: `${count} messages, ${(bytes / 1e6).toFixed(1)} MB`,
      result: `${totalMs.toFixed(0)} ms (first byte ${firstByteMs.toFixed(0)} ms), ${mbps.toFixed(1)} MB/s, peak RSS growth ${growthMiB.toFixed(1)} MiB`,
      baseline: `raw-pg query+JSON ${baseMs.toFixed(0)} ms`,
      ratio: ratio(totalMs, baseMs),
      data: { count, seedMs, bytes, totalMs, firstByteMs, mbps, rssBefore: before, rssPeak: peak, growthMiB, baseMs, baseBytes, received: body.length },
    },
  ];
}
