/**
 * History pages with 0 and 1 read replica: the same REST read of 100-message pages over 64 rooms
 * against two instances on one primary, one of them with DATABASE_REPLICA_URLS. The primary and
 * its streaming replica are the run's own (the npm PostgreSQL), so both rows read the same servers.
 * On a machine where both PostgreSQL servers, the instances and the load generator share the
 * cores, the ratio between the rows is the figure; neither is a ceiling.
 */
import pg from 'pg';
import { signToken } from '../../server/identity/sign-token.ts';
import { startReplicaPair } from '../../server/infra/db/replica-pair.ts';
import { seedHistory, seedPairs } from '../db.ts';
import { startInstance, type Instance } from '../instance-process.ts';
import { cpuMs } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { ratio } from '../stats.ts';
import { runWorker } from '../workers.ts';
import type { cannonLoad } from './http-autocannon.ts';

type CannonResult = Awaited<ReturnType<typeof cannonLoad>>[number];

async function replicaShare(metricsUrl: string) {
  const text = await (await fetch(metricsUrl)).text();
  const count = (server: string) =>
    [...text.matchAll(new RegExp(`^parley_db_reads_total\\{[^}]*server="${server}"[^}]*\\} (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
  return { replica: count('replica'), primary: count('primary') };
}

export async function runHistoryReplicas(ctx: BenchContext): Promise<Row[]> {
  const durationSec = ctx.quick ? 2 : 5;
  const rounds = ctx.quick ? 1 : 2;
  const connections = 64;
  const pair = await startReplicaPair({ fsync: 'off', synchronous_commit: 'off', max_connections: 100 });
  const instances: Instance[] = [];
  try {
    // The first instance migrates the primary; the replica replays the schema with the seed.
    const none = await startInstance(ctx, { DATABASE_URL: pair.primaryUrl });
    instances.push(none);
    const pool = new pg.Pool({ connectionString: pair.primaryUrl, max: 2 });
    const readers = await seedPairs(pool, 'replicaread', 64);
    for (const room of readers) await seedHistory(pool, room, 100);
    await pool.query('analyze');
    await pool.end();
    await pair.caughtUp();
    const one = await startInstance(ctx, { DATABASE_URL: pair.primaryUrl, DATABASE_REPLICA_URLS: pair.replicaUrl });
    instances.push(one);
    const rotate = await Promise.all(readers.map(async (room, i) => ({ path: `/${room.roomId}/messages/`, token: await signToken({ secret: ctx.secret, userId: i % 2 ? room.a : room.b, expiresIn: '1h' }) })));
    const target = { name: 'rest GET 100 messages, 64 rooms', method: 'GET', path: '/', rotate } as const;
    const token = rotate[0]!.token;

    // Each instance's first seconds under load (JIT, pool growth, the replica's caches) are not
    // what is compared: in a first run without this, the instance measured first lost 4× to itself.
    for (const instance of [none, one]) await runWorker('cannonLoad', { baseUrl: instance.url, token, targets: [target], connections, durationSec: ctx.quick ? 1 : 3 }, 60_000);
    const runs = { 0: [] as Array<CannonResult & { serverCpu: number }>, 1: [] as Array<CannonResult & { serverCpu: number }> };
    const shareBefore = await replicaShare(one.metricsUrl);
    // Interleaved and mirrored (none, one, one, none), so a neighbour's load on the shared machine
    // and whatever warms up over the run weigh on both alike.
    for (let round = 0; round < rounds; round++) {
      const order = [[0, none], [1, one]] as const;
      for (const [replicas, instance] of round % 2 ? [...order].reverse() : order) {
        const before = cpuMs(instance.pid);
        const [result] = await runWorker<CannonResult[]>('cannonLoad', { baseUrl: instance.url, token, targets: [target], connections, durationSec }, 60_000);
        runs[replicas].push({ ...result!, serverCpu: (cpuMs(instance.pid) - before) / 1000 / durationSec });
        if (result!.non2xx || result!.errors) ctx.problems.push(`history replicas=${replicas}: ${result!.non2xx} non-2xx, ${result!.errors} errors`);
      }
    }
    const shareAfter = await replicaShare(one.metricsUrl);
    const mean = (list: CannonResult[]) => list.reduce((s, r) => s + r.reqPerSec, 0) / list.length;
    const [r0, r1] = [mean(runs[0]), mean(runs[1])];
    const fromReplica = shareAfter.replica - shareBefore.replica;
    const fromPrimary = shareAfter.primary - shareBefore.primary;
    const replicaPct = (100 * fromReplica) / Math.max(1, fromReplica + fromPrimary);
    const postgres = String((await pair.onPrimary<{ v: string }>("select current_setting('server_version') as v"))[0]?.v);
    return [
      {
        scenario: 'history: read replicas',
        surface: 'rest GET 100 messages, 64 rooms',
        params: `c=${connections}, ${rounds} × ${durationSec} s each, alternated; PostgreSQL ${postgres} primary + 1 streaming replica, both on this host`,
        result: `1 replica ${r1.toFixed(0)} req/s (${replicaPct.toFixed(0)} % of its page statements on the replica), 0 replicas ${r0.toFixed(0)} req/s; p99 ${Math.max(...runs[1].map((r) => r.p99))} vs ${Math.max(...runs[0].map((r) => r.p99))} ms`,
        baseline: '0 replicas',
        ratio: ratio(r1, r0),
        data: { connections, durationSec, rounds, postgres, noReplica: runs[0], oneReplica: runs[1], readsFromReplica: fromReplica, readsFromPrimary: fromPrimary },
      },
    ];
  } finally {
    for (const instance of instances) await instance.stop();
    await pair.stop();
  }
}
