import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgresServer } from './postgres-server.ts';

export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ScratchPostgres {
  /** A superuser URL to create and drop databases with. */
  adminUrl: string;
  /** How the server was found, for the run's log. */
  source: 'configured' | 'local' | 'throwaway';
  stop(): Promise<void>;
}

/**
 * The server a test or benchmark run creates its databases on: the configured one; else the
 * one answering on 127.0.0.1:5432; else a throwaway server started here, in a temporary
 * directory removed by stop(). `settings` apply to the throwaway server only.
 */
export async function scratchPostgres(configuredUrl: string | undefined, settings: Record<string, string | number> = {}): Promise<ScratchPostgres> {
  const nothing = async () => undefined;
  if (configuredUrl) return { adminUrl: configuredUrl, source: 'configured', stop: nothing };
  if (await answers('127.0.0.1', 5432)) return { adminUrl: LOCAL_POSTGRES_URL, source: 'local', stop: nothing };
  const dir = await mkdtemp(join(tmpdir(), 'parley-pg-'));
  try {
    // When root, the server runs as user postgres, which must be able to enter the directory.
    await chmod(dir, 0o755);
    const server = await startPostgresServer({ dir: join(dir, 'cluster'), settings, throwaway: true });
    return {
      adminUrl: server.url,
      source: 'throwaway',
      async stop() {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
