import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { lockDataDir } from './data-dir-lock.ts';
import { startPostgresServer, stopStrayServer } from './postgres-server.ts';

export interface EmbeddedPostgres {
  /** A postgres:// URL on loopback. */
  url: string;
  close(): Promise<void>;
}

/**
 * A real PostgreSQL server (binaries from npm) on the cluster under `dataDir/postgres`,
 * held by this process alone: a second process on the same `dataDir` is refused.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  await mkdir(dataDir, { recursive: true });
  const lock = await lockDataDir(dataDir);
  try {
    const dir = resolve(dataDir, 'postgres');
    if (lock.tookOverFrom !== undefined) await stopStrayServer(dir);
    const server = await startPostgresServer({ dir });
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
