import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMain, servingUrl, type MainProcess } from './main-process.ts';
import { ADMIN_URL, dropTestDatabase, freshDatabase } from './test-app.ts';

/** `npm start`'s entry point that a test can stop and start again on the same port, database and data directory. */
export interface RestartableServer {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * In development mode (no JWT_SECRET): the server generates its dev secret in a fresh data
 * directory, as after `npm ci && npm start`, and keeps it across restarts, so tokens stay valid.
 */
export async function startRestartableServer(tag: string, env: Record<string, string> = {}): Promise<RestartableServer> {
  const dbName = `parley_test_${tag}_${process.pid}`;
  await freshDatabase(dbName);
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.pathname = `/${dbName}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'parley-e2e-'));
  let main: MainProcess | undefined;
  let port = '0';

  const server: RestartableServer = {
    url: '',
    async start() {
      // No keys, even if this process has some: the server mints tokens with its generated secret.
      main = runMain({ NODE_ENV: 'development', JWT_SECRET: undefined, JWT_JWKS_URL: undefined, PORT: port, LOG_LEVEL: 'info', DATABASE_URL: databaseUrl.href, DATA_DIR: dataDir, ...env });
      server.url = await servingUrl(main);
      port = new URL(server.url).port;
    },
    async stop() {
      if (!main || main.child.exitCode !== null) return;
      main.child.kill('SIGTERM');
      await main.exited;
    },
    async close() {
      await server.stop();
      await dropTestDatabase(dbName);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
