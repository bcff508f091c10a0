import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ADMIN_URL, dropTestDatabase } from './test-app.ts';

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
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${dbName} with (force)`);
  await admin.query(`create database ${dbName}`);
  await admin.end();
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.pathname = `/${dbName}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'parley-e2e-'));
  const { JWT_SECRET: _secret, ...inherited } = process.env;
  let child: ChildProcess | undefined;
  let port = '0';

  const start = async () => {
    const proc = spawn(process.execPath, ['server/main.ts'], {
      env: { ...inherited, NODE_ENV: 'development', PORT: port, LOG_LEVEL: 'info', DATABASE_URL: databaseUrl.href, DATA_DIR: dataDir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let output = '';
    proc.stderr!.on('data', (d) => (output += d));
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        output += d;
        const match = /Parley serving on (http:\/\/[^\s"]+)/.exec(output);
        if (match) resolve(match[1]!);
      });
      proc.once('exit', (code) => reject(new Error(`server exited ${code}: ${output}`)));
    });
    port = new URL(url).port;
    server.url = url;
  };
  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  const server: RestartableServer = {
    url: '',
    start,
    stop,
    async close() {
      await stop();
      await dropTestDatabase(dbName);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  await start();
  return server;
}
