/**
 * `node bench/idle-heap.ts [--n=1000] [--kinds=trpc,legacy] [--keep]`
 *
 * What one idle socket holds in the server: a server process on a fresh database, N idle sockets
 * of a kind (tRPC with one subscription, or `ws/chat`), a heap snapshot, N more, another snapshot;
 * prints the difference per socket by constructor, the retained size of the per-socket objects,
 * and the RSS and heap growth per socket. The clients run in this process, the server alone in its.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { createBenchDb, seedPairs } from './db.ts';
import { heapDelta, summarizeHeap } from './heap-diff.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';
import { BENCH_DIR, killChildren, nextMessage, rssBytes, sleep, spawnNode } from './proc.ts';
import { openIdleSocket, type IdleKind } from './scenarios/idle-sockets.ts';
import type WebSocket from 'ws';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const N = Number(arg('n', '1000'));
const kinds = arg('kinds', 'trpc,legacy').split(',') as IdleKind[];
const RETAINED = ['WebSocket', 'Socket', 'IncomingMessage', 'Request', 'Reply', 'AbortController', 'AbortSignal', 'Timeout', 'TimersList', 'Receiver', 'Sender', 'EntityManager'];

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL);
const db = await createBenchDb(postgres.adminUrl, `parley_heap_${process.pid}`);
const secret = randomBytes(32).toString('base64url');
const server = spawnNode(join(BENCH_DIR, 'server-process.ts'), {
  nodeArgs: ['--expose-gc', '--max-semi-space-size=8'],
  env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: db.url, DB_POOL_MAX: '10', JWT_SECRET: secret, PUSH: 'off', SEND_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0', DATA_DIR: join(tmpdir(), `parley-heap-${process.pid}`) },
});
const pool = new pg.Pool({ connectionString: db.url, max: 2 });
try {
  const { url, pid } = await nextMessage<{ url: string; pid: number }>(server, (m) => m.type === 'ready', 60_000, 'server');
  const snapshot = async (name: string) => {
    const reply = nextMessage<{ file: string; memory: NodeJS.MemoryUsage }>(server, (m) => m.type === 'heap-done', 300_000, 'heap');
    server.send({ type: 'heap', file: join(tmpdir(), `parley-idle-${process.pid}-${name}.heapsnapshot`) });
    const { file, memory } = await reply;
    // The snapshot's own allocations are freed by now; the next collection shows the RSS without them.
    const gcDone = nextMessage(server, (m) => m.type === 'gc-done', 30_000, 'gc');
    server.send({ type: 'gc' });
    await gcDone;
    return { file, memory, rss: rssBytes(pid) };
  };
  for (const kind of kinds) {
    const pairs = await seedPairs(pool, `heap${kind}`, N + 100);
    const users = pairs.flatMap((p) => [{ user: p.a, peer: p.b, roomId: p.roomId }, { user: p.b, peer: p.a, roomId: p.roomId }]);
    const tokens = await Promise.all(users.map((u) => signToken({ secret, userId: u.user, expiresIn: '1h' })));
    const open = async (from: number, to: number) => {
      const sockets: WebSocket[] = [];
      let next = from;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < to) {
          const i = next++;
          sockets.push(await openIdleSocket({ kind, baseUrl: url, ...users[i]!, token: tokens[i]! }));
        }
      }));
      return sockets;
    };
    // A discarded round: code paths and caches of a fresh process are no per-socket cost.
    for (const s of await open(2 * N, 2 * N + 200)) s.terminate();
    await sleep(1000);
    const first = await open(0, N);
    await sleep(500);
    const a = await snapshot(`${kind}-a`);
    const second = await open(N, 2 * N);
    await sleep(500);
    const b = await snapshot(`${kind}-b`);
    for (const s of [...first, ...second]) s.terminate();
    const sa = summarizeHeap(a.file, RETAINED);
    const sb = summarizeHeap(b.file, RETAINED);
    if (args.includes('--keep')) console.log(`snapshots: ${a.file} ${b.file}`);
    else (rmSync(a.file), rmSync(b.file));
    const d = heapDelta(sa, sb, N, 45);
    const kib = (x: number) => (x / 1024).toFixed(2);
    console.log(`\n## ${kind}: ${N} → ${2 * N} idle sockets, per socket`);
    console.log(`RSS ${kib((b.rss - a.rss) / N)} KiB; snapshot heap ${kib(d.total)} KiB (${kib(d.total - d.code)} KiB without code objects); heapUsed ${kib((b.memory.heapUsed - a.memory.heapUsed) / N)} KiB; external ${kib((b.memory.external - a.memory.external) / N)} KiB (arrayBuffers ${kib((b.memory.arrayBuffers - a.memory.arrayBuffers) / N)} KiB)`);
    console.log('\n| kind | bytes/socket | objects/socket |\n|---|---:|---:|');
    for (const r of d.rows) console.log(`| ${r.kind.replaceAll('|', '\\|')} | ${r.bytes.toFixed(0)} | ${r.count.toFixed(2)} |`);
    console.log('\nclosures, their contexts and suspended async frames, by file:\n| file | bytes/socket |\n|---|---:|');
    for (const f of d.files) console.log(`| ${f.file} | ${f.bytes.toFixed(0)} |`);
    console.log('\nretained (outermost instances), per socket:\n| kind | bytes/socket | instances/socket |\n|---|---:|---:|');
    for (const k of RETAINED) {
      const x = sb.retained.get(k) ?? { size: 0, count: 0 };
      const y = sa.retained.get(k) ?? { size: 0, count: 0 };
      if (x.count !== y.count) console.log(`| ${k} | ${((x.size - y.size) / N).toFixed(0)} | ${((x.count - y.count) / N).toFixed(2)} |`);
    }
    await sleep(2000);
  }
} finally {
  await pool.end();
  killChildren();
  await db.drop();
  await postgres.stop();
}
