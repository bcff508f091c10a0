import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { LogFormat } from '../log-line.ts';
import { lockDataDir } from './data-dir-lock.ts';
import type { PostgresBinaries } from './postgres-binaries.ts';
import { startPostgresServer, stopStrayServer } from './postgres-server.ts';

export interface EmbeddedPostgres {
  /** A postgres:// URL on loopback, with the password. */
  url: string;
  close(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** PostgreSQL's programs; by default those of the npm package for this platform. */
  binaries?: PostgresBinaries;
  /** How the takeover of a dead holder's lock is logged (LOG_FORMAT). */
  logFormat?: LogFormat;
}

/**
 * A real PostgreSQL server (binaries from npm) on the cluster under `dataDir/postgres`,
 * held by this process alone: a second process on the same `dataDir` is refused. Its
 * superuser's password is `dataDir/postgres-password`, readable by this user alone.
 */
export async function startEmbeddedPostgres(dataDir: string, { binaries, logFormat }: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
  await mkdir(dataDir, { recursive: true });
  const lock = await lockDataDir(dataDir, logFormat);
  try {
    const dir = resolve(dataDir, 'postgres');
    if (lock.tookOverFrom !== undefined) await stopStrayServer(dir, binaries);
    const server = await startPostgresServer({ dir, password: await loadOrCreatePassword(dataDir), binaries });
    return {
      url: server.url,
      async close() {
        await server.stop();
        await lock.release();
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** The cluster is given this password at every start, so the file is the one source of truth: deleted, a new one is made. */
async function loadOrCreatePassword(dataDir: string): Promise<string> {
  const file = join(dataDir, 'postgres-password');
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    // A copy of DATA_DIR (a backup restored, `cp -r`) can widen the file's mode.
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    if (existing) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const password = randomBytes(32).toString('hex');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return password;
}
