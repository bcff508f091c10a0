/**
 * History pages with 0 and 1 read replica: the same REST read of 100-message pages over 64 rooms
 * against two instances on one primary, one of them with DATABASE_REPLICA_URLS. The primary and
 * its streaming replica are the run's own (the npm PostgreSQL), so both rows read the same servers.
 * On a machine where both PostgreSQL servers, the instances and the load generator share the
 * cores, throughput says little on its own: the row gives the ratio of each alternated pair of
 * runs (their median and range), and the primary's CPU per request, which is what a replica
 * takes off it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { signToken } from '../../server/identity/sign-token.ts';
import { startReplicaPair } from '../../server/infra/db/replica-pair.ts';
import { seedHistory, seedPairs } from '../db.ts';
import { startInstance, type Instance } from '../instance-process.ts';
import { cpuMs } from '../proc.ts';
import type { BenchContext, Row } from '../report.ts';
import { runWorker } from '../workers.ts';
import type { cannonLoad } from './http-autocannon.ts';

type CannonResult = Awaited<ReturnType<typeof cannonLoad>>[number];
interface Run extends CannonResult {
  requests: number;
  /** CPU milliseconds of each PostgreSQL server (postmaster and backends) during the run. */
  primaryCpuMs: number;
  replicaCpuMs: number;
  /** The Parley instance's CPU milliseconds during the run. */
  serverCpuMs: number;
}

/**
 * A PostgreSQL server's CPU so far: its postmaster's and its children's (the backends). A backend
 * that has exited (a pool let an idle connection go) keeps the figure last seen, so the total
 * never falls; what it used after that sample, while idle, is lost.
 */
function clusterCpu(postmaster: number) {
  const seen = new Map<number, number>();
  return () => {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
        if (Number(fields[1]) === postmaster) seen.set(Number(entry), ((Number(fields[11]) + Number(fields[12])) * 1000) / 100);
      } catch {
        // Gone since the listing.
      }
    }
    return cpuMs(postmaster) + [...seen.values()].reduce((a, b) => a + b, 0);
  };
}

async function readsByServer(metricsUrl: string) {
  const text = await (await fetch(metricsUrl)).text();
  const count = (server: string) =>
    [...text.matchAll(new RegExp(`^parley_db_reads_total\\{[^}]*server="${server}"[^}]*\\} (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
  return { replica: count('replica'), primary: count('primary') };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function runHistoryReplicas(ctx: BenchContext): Promise<Row[]> {
  const durationSec = ctx.quick ? 2 : 4;
  const pairs = ctx.quick ? 1 : 4;
  const connections = 64;
  const pair = await startReplicaPair({ fsync: 'off', max_connections: 100 });
  const primaryCpu = clusterCpu(pair.primaryPid);
  const replicaCpu = clusterCpu(pair.replicaPid);
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
    const load = (instance: Instance, seconds: number) => runWorker<CannonResult[]>('cannonLoad', { baseUrl: instance.url, token, targets: [target], connections, durationSec: seconds }, 60_000);

    // Each instance's first seconds under load (JIT, pool growth, cold caches) are not what is compared.
    for (const instance of [none, one]) await load(instance, ctx.quick ? 1 : 3);
    const before = await readsByServer(one.metricsUrl);
    const runs: Record<0 | 1, Run[]> = { 0: [], 1: [] };
    // Alternated and mirrored pair by pair (none, one; one, none; ...), so a neighbour's load on
    // the shared machine weighs on both alike; each pair gives one ratio.
    for (let i = 0; i < pairs; i++) {
      const order = [[0, none], [1, one]] as const;
      for (const [replicas, instance] of i % 2 ? [...order].reverse() : order) {
        const cpu = [primaryCpu(), replicaCpu(), cpuMs(instance.pid)];
        const [result] = await load(instance, durationSec);
        runs[replicas].push({ ...result!, requests: result!.reqPerSec * durationSec, primaryCpuMs: primaryCpu() - cpu[0]!, replicaCpuMs: replicaCpu() - cpu[1]!, serverCpuMs: cpuMs(instance.pid) - cpu[2]! });
        if (result!.non2xx || result!.errors) ctx.problems.push(`history replicas=${replicas}: ${result!.non2xx} non-2xx, ${result!.errors} errors`);
      }
    }
    const after = await readsByServer(one.metricsUrl);
    const ratios = runs[1].map((r, i) => r.reqPerSec / runs[0][i]!.reqPerSec);
    const rate = (list: Run[]) => list.reduce((s, r) => s + r.reqPerSec, 0) / list.length;
    // PostgreSQL CPU per 1,000 requests, over all runs of a kind.
    const per1000 = (list: Run[], key: 'primaryCpuMs' | 'replicaCpuMs' | 'serverCpuMs') => (1000 * list.reduce((s, r) => s + r[key], 0)) / list.reduce((s, r) => s + r.requests, 0);
    const fromReplica = after.replica - before.replica;
    const fromPrimary = after.primary - before.primary;
    const replicaPct = (100 * fromReplica) / Math.max(1, fromReplica + fromPrimary);
    const postgres = String((await pair.onPrimary<{ v: string }>("select current_setting('server_version') as v"))[0]?.v);
    const cpu = {
      none: { primary: per1000(runs[0], 'primaryCpuMs'), parley: per1000(runs[0], 'serverCpuMs') },
      one: { primary: per1000(runs[1], 'primaryCpuMs'), replica: per1000(runs[1], 'replicaCpuMs'), parley: per1000(runs[1], 'serverCpuMs') },
    };
    return [
      {
        scenario: 'history: read replicas',
        surface: 'rest GET 100 messages, 64 rooms',
        params: `c=${connections}, ${pairs} alternated pairs of ${durationSec} s runs; PostgreSQL ${postgres} primary + 1 streaming replica, both on this host`,
        result:
          `1 replica / 0 replicas req/s: median ${median(ratios).toFixed(2)}× (pairs ${ratios.map((r) => r.toFixed(2)).join(', ')}); ` +
          `mean ${rate(runs[1]).toFixed(0)} vs ${rate(runs[0]).toFixed(0)} req/s; ${replicaPct.toFixed(0)} % of page statements on the replica; ` +
          `primary CPU per 1,000 requests ${cpu.one.primary.toFixed(0)} ms with the replica (replica ${cpu.one.replica.toFixed(0)} ms) vs ${cpu.none.primary.toFixed(0)} ms without; Parley CPU per 1,000 requests ${cpu.one.parley.toFixed(0)} vs ${cpu.none.parley.toFixed(0)} ms`,
        baseline: '0 replicas',
        ratio: median(ratios),
        data: { connections, durationSec, pairs, postgres, ratios, cpuMsPer1000Requests: cpu, noReplica: runs[0], oneReplica: runs[1], statementsOnReplica: fromReplica, statementsOnPrimary: fromPrimary },
      },
    ];
  } finally {
    for (const instance of instances) await instance.stop();
    await pair.stop();
  }
}
