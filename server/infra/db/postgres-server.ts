import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runnableBinaries } from './binary-cache.ts';
import { secureCluster } from './cluster-auth.ts';
import { collectStderr, exitCode, ownedServer, spawnOnCluster, untilReady } from './cluster-process.ts';
import { EmbeddedDatabaseError } from './embedded-errors.ts';
import { postgresBinaries, postgresUser, type PostgresBinaries, type RunAs } from './postgres-binaries.ts';

export interface PostgresServerOptions {
  /** The cluster's data directory; created and initialised on first use. */
  dir: string;
  /** The superuser's password, set at every start: clients must give it (see cluster-auth.ts). */
  password: string;
  /** Server settings, passed as `-c name=value`. */
  settings?: Record<string, string | number>;
  /** Skip initdb's fsync: for clusters deleted after the run. */
  throwaway?: boolean;
  /** PostgreSQL's programs; by default those of the npm package for this platform. */
  binaries?: PostgresBinaries;
}

/** A real PostgreSQL server, a child of this process, listening on a free loopback port. */
export interface PostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`; password authentication, loopback only. */
  url: string;
  pid: number;
  /** Fast shutdown (open sessions are ended); resolves once the server has exited. */
  stop(): Promise<void>;
}

const READY = 'database system is ready to accept connections';
const PORT_TAKEN = /could not bind|Address already in use/;

export async function startPostgresServer({ dir, password, settings = {}, throwaway = false, binaries }: PostgresServerOptions): Promise<PostgresServer> {
  const runAs = await postgresUser();
  const bin = await runnableBinaries(binaries ?? (await postgresBinaries()), runAs);
  if (!existsSync(join(dir, 'PG_VERSION'))) await initCluster(bin, dir, runAs, throwaway);
  await secureCluster(bin, dir, runAs, password);
  // The free port is found before postgres binds it, so another process can take it in between.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await spawnServer(bin, dir, port, runAs, settings, password);
    } catch (err) {
      if (!(err instanceof EmbeddedDatabaseError && PORT_TAKEN.test(err.message)) || attempt === 3) throw err;
    }
  }
}

/** initdb into a side directory, renamed into place when complete, so an interrupted init leaves nothing half-made. */
async function initCluster(bin: PostgresBinaries, dir: string, runAs: RunAs, throwaway: boolean) {
  const staging = `${dir}.init`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  if (runAs.uid !== undefined) await chown(staging, runAs.uid, runAs.gid!);
  // `reject` until secureCluster sets the password and writes the real pg_hba.conf.
  const args = (dataDir: string) => ['-D', dataDir, '-U', 'postgres', '--auth=reject', '-E', 'UTF8', '--locale=C', '--no-instructions', ...(throwaway ? ['--no-sync'] : [])];
  const child = spawnOnCluster(bin.initdb, args, { dir: staging, runAs, stdio: ['ignore', 'ignore', 'pipe'] });
  const output = collectStderr(child);
  const code = await exitCode(child, bin.initdb, runAs);
  if (code !== 0) throw new EmbeddedDatabaseError('POSTGRES_FAILED', `initdb failed (exit ${code}): ${output.text()}`);
  await rmdir(dir).catch(() => undefined);
  await rename(staging, dir);
}

async function spawnServer(bin: PostgresBinaries, dir: string, port: number, runAs: RunAs, settings: Record<string, string | number>, password: string): Promise<PostgresServer> {
  const all = { listen_addresses: '127.0.0.1', unix_socket_directories: '', lc_messages: 'C', ...settings };
  const args = (dataDir: string) => ['-D', dataDir, '-p', String(port), ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  // Its own process group: a terminal's Ctrl-C reaches only Node, which drains requests before stopping the database.
  const child = spawnOnCluster(bin.postgres, args, { dir, runAs, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  await untilReady(child, bin.postgres, runAs, READY, 'PostgreSQL');
  return ownedServer(child, `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`);
}

/**
 * A TCP port free on 127.0.0.1 right now, for a server started next. Taken below the range the
 * kernel hands outgoing connections their local ports from: a port from that range (what listening
 * on port 0 gives) can be taken by any connection opened before the server binds it, and on a busy
 * machine one was ("Address already in use").
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  // Above the ports services are known by (PostgreSQL's, Redis', Parley's own 3000s and 9000s).
  const from = low > 21_000 ? 20_000 : 1024;
  for (let i = 0; i < 50 && low > from + 1; i++) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (await canListen(port)) return port;
  }
  return listenOn(0);
}

/** The first port of the kernel's range for outgoing connections (Linux' default when unreadable). */
export function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

const canListen = (port: number) => listenOn(port).then(() => true, () => false);

async function listenOn(port: number): Promise<number> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  const bound = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return bound;
}

/**
 * Stops a server left running on `dir` by a process that died without stopping it (its
 * postgres child outlives a `kill -9`), so the next start does not find postmaster.pid taken.
 * pg_ctl exits non-zero when nothing runs there; that is the usual case and not an error.
 */
export async function stopStrayServer(dir: string, binaries?: PostgresBinaries): Promise<void> {
  if (!existsSync(join(dir, 'postmaster.pid'))) return;
  const runAs = await postgresUser();
  const bin = await runnableBinaries(binaries ?? (await postgresBinaries()), runAs);
  const child = spawnOnCluster(bin.pg_ctl, (dataDir) => ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60'], { dir, runAs, stdio: 'ignore' });
  await exitCode(child, bin.pg_ctl, runAs);
}
