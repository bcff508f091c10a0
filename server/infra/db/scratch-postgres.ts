import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
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
  return startThrowawayPostgres(settings);
}

/** A server in a new temporary directory, removed by stop(); its password lives in memory only. */
export async function startThrowawayPostgres(settings: Record<string, string | number> = {}): Promise<ScratchPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-pg-'));
  try {
    const server = await startPostgresServer({ dir: join(dir, 'cluster'), password: randomBytes(32).toString('hex'), settings, throwaway: true });
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
