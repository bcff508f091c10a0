import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { runnableBinaries } from './binary-cache.ts';
import { ownedServer, spawnOnCluster, untilReady } from './cluster-process.ts';
import { EmbeddedDatabaseError } from './embedded-errors.ts';
import { postgresBinaries, postgresUser } from './postgres-binaries.ts';
import { freePort, startPostgresServer, type PostgresServer } from './postgres-server.ts';

const run = promisify(execFile);

/** A throwaway primary and one hot standby streaming from it, both on loopback; for tests and benchmarks. */
export interface ReplicaPair {
  /** Superuser URLs (database `postgres`). */
  primaryUrl: string;
  replicaUrl: string;
  /** The postmasters' process ids: their backends are their children. */
  primaryPid: number;
  replicaPid: number;
  /** Runs one statement on the replica (`select pg_wal_replay_pause()`, say). */
  onReplica<T extends pg.QueryResultRow = Record<string, unknown>>(text: string): Promise<T[]>;
  onPrimary<T extends pg.QueryResultRow = Record<string, unknown>>(text: string): Promise<T[]>;
  /** Resolves once the replica has replayed everything the primary had written when called. */
  caughtUp(): Promise<void>;
  stopReplica(): Promise<void>;
  /** Stops both and removes their data. */
  stop(): Promise<void>;
}

const STANDBY_READY = 'database system is ready to accept read-only connections';

/**
 * Made from the npm package's programs alone (it has no pg_basebackup): the primary is created,
 * stopped cleanly, and its data directory copied while it is down, which is a consistent base
 * backup; the copy starts as a standby (`standby.signal`, `primary_conninfo`) and streams from the
 * primary, started again, from that checkpoint on.
 */
export async function startReplicaPair(settings: Record<string, string | number> = {}): Promise<ReplicaPair> {
  const root = await mkdtemp(join(tmpdir(), 'parley-replica-pair-'));
  const primaryDir = join(root, 'primary');
  const replicaDir = join(root, 'replica');
  const password = randomBytes(24).toString('hex');
  // Room for the standby to start from the copy's checkpoint after the primary has moved on.
  const primarySettings = { wal_level: 'replica', max_wal_senders: 4, wal_keep_size: '256MB', ...settings };
  let primary: PostgresServer | undefined;
  let replica: { url: string; pid: number; stop(): Promise<void> } | undefined;
  try {
    await (await startPostgresServer({ dir: primaryDir, password, settings: primarySettings, throwaway: true })).stop();
    // -a keeps the owner (user postgres, when run as root) and the 0700 mode PostgreSQL insists on.
    await run('cp', ['-a', primaryDir, replicaDir]);
    primary = await startPostgresServer({ dir: primaryDir, password, settings: primarySettings, throwaway: true });
    // The primary's pg_hba.conf is rewritten at each start (cluster-auth.ts) and allows no replication connection.
    await appendFile(join(primaryDir, 'pg_hba.conf'), 'host replication postgres 127.0.0.1/32 scram-sha-256\n');
    await query(primary.url, 'select pg_reload_conf()');
    const { port } = new URL(primary.url);
    await writeFile(join(replicaDir, 'standby.signal'), '');
    await appendFile(join(replicaDir, 'postgresql.auto.conf'), `primary_conninfo = 'host=127.0.0.1 port=${port} user=postgres password=${password} application_name=parley_replica'\n`);
    replica = await startStandby(replicaDir, password, settings);
  } catch (err) {
    await replica?.stop();
    await primary?.stop();
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  const p = primary;
  const r = replica;
  const pair: ReplicaPair = {
    primaryUrl: p.url,
    replicaUrl: r.url,
    primaryPid: p.pid,
    replicaPid: r.pid,
    onReplica: (text) => query(r.url, text),
    onPrimary: (text) => query(p.url, text),
    async caughtUp() {
      const [{ lsn }] = (await query<{ lsn: string }>(p.url, 'select pg_current_wal_insert_lsn()::text as lsn')) as [{ lsn: string }];
      for (;;) {
        const [row] = await query<{ done: boolean }>(r.url, `select pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn as done`);
        if (row?.done) return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    stopReplica: () => r.stop(),
    async stop() {
      await r.stop();
      await p.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
  return pair;
}

/** The copy, started as it is: its password and settings came with it, and secureCluster's single-user mode cannot run a standby. */
async function startStandby(dir: string, password: string, settings: Record<string, string | number>) {
  const runAs = await postgresUser();
  const bin = await runnableBinaries(await postgresBinaries(), runAs);
  const port = await freePort();
  const all = { listen_addresses: '127.0.0.1', unix_socket_directories: '', lc_messages: 'C', hot_standby: 'on', ...settings };
  const child = spawnOnCluster(bin.postgres, (dataDir) => ['-D', dataDir, '-p', String(port), ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])], {
    dir,
    runAs,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  await untilReady(child, bin.postgres, runAs, STANDBY_READY, 'the standby');
  return ownedServer(child, `postgres://postgres:${password}@127.0.0.1:${port}/postgres`);
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}
