/**
 * HTTP at full speed: the same procedure over REST and tRPC HTTP, and a REST history read,
 * driven by autocannon (a pipelined generator far cheaper per request than fetch or the tRPC
 * client), so the figure is the server's, not the load generator's. Each row reports the
 * generator's and the server's CPU share (of one core) beside the throughput.
 */
import autocannon from 'autocannon';
import { signToken } from '../../server/identity/sign-token.ts';
import { seedHistory, seedPairs } from '../db.ts';
import { cpuMs } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { runWorker } from '../workers.ts';

interface Target {
  name: 'rest POST' | 'trpc-http POST (batch of 1)' | 'rest GET 100 messages' | 'rest GET 100 messages, 64 rooms';
  path: string;
  method: 'GET' | 'POST';
  body?: string;
  /** Requests each connection cycles through, each with its own user's token (instead of `path`). */
  rotate?: Array<{ path: string; token: string }>;
}
interface CannonParams {
  baseUrl: string;
  token: string;
  targets: Target[];
  connections: number;
  durationSec: number;
}
interface CannonResult {
  name: Target['name'];
  reqPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  generatorCpu: number;
}

/** Worker side: each target in turn, measuring this process's own CPU. */
export async function cannonLoad(p: CannonParams): Promise<CannonResult[]> {
  const out: CannonResult[] = [];
  const headers = { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' };
  for (const t of p.targets) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const requests = t.rotate?.map((r) => ({ method: t.method, path: r.path, headers: { ...headers, authorization: `Bearer ${r.token}` } }));
    const r = await autocannon({
      url: p.baseUrl + t.path,
      method: t.method,
      headers,
      connections: p.connections,
      duration: p.durationSec,
      ...(t.body ? { body: t.body } : {}),
      ...(requests ? { requests } : {}),
    });
    const used = process.cpuUsage(cpu);
    out.push({
      name: t.name,
      reqPerSec: r.requests.average,
      p50: r.latency.p50,
      p99: r.latency.p99,
      non2xx: r.non2xx,
      errors: r.errors,
      generatorCpu: (used.user + used.system) / 1000 / (performance.now() - start),
    });
  }
  return out;
}

export async function runHttpAutocannon(ctx: BenchContext): Promise<Row[]> {
  const [hot] = await seedPairs(ctx.pool, 'cannon', 1);
  const [reader] = await seedPairs(ctx.pool, 'cannonread', 1);
  await seedHistory(ctx.pool, reader!, 100);
  // The same read over many rooms: concurrent requests seldom ask for the same page, so what is
  // measured is one statement per event-loop turn, not one answer shared by identical asks.
  const readers = await seedPairs(ctx.pool, 'cannonrooms', 64);
  for (const pair of readers) await seedHistory(ctx.pool, pair, 100);
  const rotate = await Promise.all(readers.map(async (pair, i) => ({ path: `/${pair.roomId}/messages/`, token: await signToken({ secret: ctx.secret, userId: i % 2 ? pair.a : pair.b, expiresIn: '1h' }) })));
  const rows: Row[] = [];
  const durationSec = ctx.quick ? 2 : 6;
  for (const connections of ctx.quick ? [64] : [16, 64]) {
    const results: CannonResult[] = [];
    const serverCpu = new Map<string, number>();
    for (const target of [
      { name: 'rest POST', method: 'POST', path: `/${hot!.roomId}/messages/`, body: JSON.stringify({ content: 'autocannon', chat_room: hot!.roomId, sender: hot!.a }), user: hot!.a },
      { name: 'trpc-http POST (batch of 1)', method: 'POST', path: '/trpc/messages.send?batch=1', body: JSON.stringify({ 0: { roomId: hot!.roomId, content: 'autocannon' } }), user: hot!.a },
      { name: 'rest GET 100 messages', method: 'GET', path: `/${reader!.roomId}/messages/`, user: reader!.a },
      { name: 'rest GET 100 messages, 64 rooms', method: 'GET', path: '/', user: reader!.a, rotate },
    ] as const) {
      const token = await signToken({ secret: ctx.secret, userId: target.user, expiresIn: '1h' });
      const before = cpuMs(ctx.serverPid);
      const [result] = await runWorker<CannonResult[]>('cannonLoad', { baseUrl: ctx.baseUrl, token, targets: [target], connections, durationSec }, 60_000);
      serverCpu.set(target.name, (cpuMs(ctx.serverPid) - before) / 1000);
      results.push(result!);
    }
    const rest = results.find((r) => r.name === 'rest POST')!;
    for (const r of results) {
      if (r.non2xx || r.errors) ctx.problems.push(`http ${r.name} c=${connections}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      const isTrpc = r.name.startsWith('trpc');
      rows.push({
        scenario: 'http (autocannon)',
        surface: r.name,
        params: `c=${connections}, ${durationSec} s`,
        result: `${r.reqPerSec.toFixed(0)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms; CPU: generator ${(r.generatorCpu * 100).toFixed(0)} %, server ${((serverCpu.get(r.name)! / durationSec) * 100).toFixed(0)} % of a core`,
        baseline: isTrpc ? `rest POST ${rest.reqPerSec.toFixed(0)} req/s` : '—',
        ratio: isTrpc ? ratio(r.reqPerSec, rest.reqPerSec) : NaN,
        data: { connections, ...r, serverCpuSeconds: serverCpu.get(r.name) },
      });
    }
  }
  return rows;
}
