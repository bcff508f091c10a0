import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddedDatabaseError } from './embedded-errors.ts';
import { logLine, type LogFormat } from '../log-line.ts';

export interface DataDirLock {
  /** The previous holder died without releasing the lock (e.g. `kill -9`): its database may still be running. */
  tookOverFrom: number | undefined;
  release(): Promise<void>;
}

/**
 * One process per data directory: two servers on one embedded database lose writes.
 * The lock is `parley.pid`, created exclusively; a holder that no longer runs left a stale
 * lock, which is taken over. As PostgreSQL does for postmaster.pid, our own and our parent's
 * PID count as stale: after a container restart the same PIDs come round again.
 */
export async function lockDataDir(dataDir: string, logFormat: LogFormat = 'json'): Promise<DataDirLock> {
  const file = join(dataDir, 'parley.pid');
  let tookOverFrom: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      return {
        tookOverFrom,
        release: () => unlink(file).catch(() => undefined),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder > 0 && isRunning(holder)) {
      throw new EmbeddedDatabaseError(
        'DATA_DIR_IN_USE',
        `DATA_DIR ${dataDir} is in use by process ${holder} (another Parley server?): stop it, or run a second instance with its own DATA_DIR=<dir> or with DATABASE_URL=postgres://...`,
        holder,
      );
    }
    if (Number.isInteger(holder) && holder !== process.pid && holder !== process.ppid) tookOverFrom = holder;
    if (Number.isInteger(holder)) logLine(logFormat, 'warn', `DATA_DIR ${dataDir}: taking over its lock from process ${holder}, which is no longer running (a crash or kill -9?)`, { stalePid: holder });
    await unlink(file).catch(() => undefined);
  }
  throw new EmbeddedDatabaseError('DATA_DIR_IN_USE', `DATA_DIR ${dataDir}: could not take its lock file ${file}`);
}

function isRunning(pid: number): boolean {
  if (pid === process.pid || pid === process.ppid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

