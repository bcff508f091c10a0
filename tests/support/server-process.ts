import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { ADMIN_URL, dropTestDatabase, TEST_SECRET } from './test-app.ts';

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  databaseUrl: string;
  /** Every line the server logged so far (pino JSON). */
  output(): string;
  /** The server process's resident set size, in bytes (from /proc). */
  rss(): Promise<number>;
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

async function admin(sql: string) {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}

/**
 * `npm start`'s entry point in a child process on a fresh database: for tests that measure the
 * server's own memory, or read its log, apart from the test's clients.
 */
export async function startServerProcess(tag: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const dbName = `parley_test_${tag}_${process.pid}`;
  await admin(`drop database if exists ${dbName} with (force)`);
  await admin(`create database ${dbName}`);
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.pathname = `/${dbName}`;
  const child = spawn(process.execPath, ['--max-semi-space-size=8', 'server/main.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: databaseUrl.href, JWT_SECRET: TEST_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (d) => (output += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      output += d;
      const match = /Parley serving on (http:\/\/[^\s"]+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${output}`)));
  });
  const pool = new pg.Pool({ connectionString: databaseUrl.href, max: 2 });
  return {
    child,
    url,
    databaseUrl: databaseUrl.href,
    output: () => output,
    async rss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    async sql(text, values) {
      return (await pool.query(text, values)).rows;
    },
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await pool.end();
      await dropTestDatabase(dbName);
    },
  };
}

/** Samples `rss()` every 100 ms until stopped; resolves to the highest value seen. */
export function peakRss(server: ServerProcess) {
  let peak = 0;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      peak = Math.max(peak, await server.rss().catch(() => 0));
      await new Promise((r) => setTimeout(r, 100));
    }
    return peak;
  })();
  return { stop: () => ((stopped = true), done) };
}
