import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface ConnectAttempt {
  connected: boolean;
  /** What the client printed or threw. */
  output: string;
}

/**
 * What any other local user can try on a loopback PostgreSQL port: connect as `postgres`
 * without knowing a password. Run as root with psql installed, it is psql run as user nobody;
 * otherwise a client of this process that offers no password, which a TCP server cannot tell
 * apart from another user's.
 */
export async function connectAsAnotherUser(port: number): Promise<ConnectAttempt> {
  const psql = findPsql();
  if (process.getuid?.() === 0 && psql) {
    const nobody = { uid: Number((await run('id', ['-u', 'nobody'])).stdout), gid: Number((await run('id', ['-g', 'nobody'])).stdout) };
    const args = ['-w', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-Atc', 'select rolsuper from pg_roles where rolname = current_user'];
    try {
      const { stdout, stderr } = await run(psql, args, { ...nobody, cwd: '/', env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent' } });
      return { connected: true, output: stdout + stderr };
    } catch (err) {
      const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
      return { connected: false, output: stdout + stderr };
    }
  }
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', password: '' });
  try {
    await client.connect();
    await client.end();
    return { connected: true, output: '' };
  } catch (err) {
    return { connected: false, output: (err as Error).message };
  }
}

function findPsql(): string | undefined {
  if (existsSync('/usr/bin/psql')) return '/usr/bin/psql';
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : [];
  return versions.map((v) => `/usr/lib/postgresql/${v}/bin/psql`).find((p) => existsSync(p));
}
