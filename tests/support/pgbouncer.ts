import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../server/infra/db/postgres-server.ts';
import { tempDataDir } from './temp-dir.ts';

const BINARY = ['/usr/sbin/pgbouncer', 'pgbouncer'].find((bin) => spawnSync(bin, ['--version']).status === 0);
/** Whether a `pgbouncer` binary is installed (Debian's puts it in /usr/sbin); tests say so plainly when it is not. */
export const hasPgBouncer = BINARY !== undefined;

export interface TestPgBouncer {
  host: string;
  port: number;
  /** `url` (a database of the server behind it) as reached through the pooler. */
  pooled(url: string): string;
  /** `SHOW <what>` on the admin console, e.g. `STATS` or `POOLS`. */
  show(what: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A PgBouncer of the test's own in transaction pooling in front of the server `adminUrl` is on,
 * for every database there (`*`). Few server connections (`poolSize`), so sessions are shared
 * by clients for real: a statement that needs its session would meet another client's.
 */
export async function startTestPgBouncer(adminUrl: string, { poolSize = 3 }: { poolSize?: number } = {}): Promise<TestPgBouncer> {
  const server = new URL(adminUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = await tempDataDir('parley-pgbouncer-');
  // Run as root it switches to an unprivileged user, which must be able to read its files.
  await chmod(dir, 0o755);
  const ini = join(dir, 'pgbouncer.ini');
  const users = join(dir, 'userlist.txt');
  await writeFile(users, `"${user}" "${password}"\n"pgbouncer" ""\n`, { mode: 0o644 });
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432} user=${user}${password ? ` password=${password}` : ''}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = trust',
      `auth_file = ${users}`,
      'admin_users = pgbouncer',
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      'server_reset_query =',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const proc: ChildProcess = spawn(BINARY!, [...(asRoot ? ['-u', 'nobody'] : []), ini], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const read = (d: Buffer) => {
      out += d;
      if (out.includes('process up')) resolve();
    };
    proc.stdout!.on('data', read);
    proc.stderr!.on('data', read);
    proc.once('exit', (code) => reject(new Error(`pgbouncer exited ${code}: ${out}`)));
  });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  };
  return {
    host: '127.0.0.1',
    port,
    pooled(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.href;
    },
    async show(what) {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'pgbouncer', database: 'pgbouncer' });
      await c.connect();
      try {
        return (await c.query({ text: `SHOW ${what}`, queryMode: 'simple' } as pg.QueryConfig)).rows;
      } finally {
        await c.end();
      }
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
