import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { runMain, servingUrls, type MainProcess } from './main-process.ts';
import { ADMIN_URL, dropTestDatabase, freshDatabase, TEST_SECRET } from './test-app.ts';

export interface ServerProcess extends MainProcess {
  url: string;
  metricsUrl: string;
  databaseUrl: string;
  /** The server process's resident set size, in bytes (from /proc). */
  rss(): Promise<number>;
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * `npm start`'s entry point in a child process on a fresh database: for tests that measure the
 * server's own memory, or read its log, apart from the test's clients.
 */
export async function startServerProcess(tag: string, env: Record<string, string | undefined> = {}): Promise<ServerProcess> {
  const dbName = `parley_test_${tag}_${process.pid}`;
  await freshDatabase(dbName);
  const databaseUrl = new URL(ADMIN_URL);
  databaseUrl.pathname = `/${dbName}`;
  // Rate limits off, as for in-process test apps: the floods here must reach the socket rules.
  const main = runMain({ PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: databaseUrl.href, JWT_SECRET: TEST_SECRET, SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', PRESENCE_OFFLINE_DELAY_MS: '0', ...env });
  const { url, metricsUrl } = await servingUrls(main);
  const pool = new pg.Pool({ connectionString: databaseUrl.href, max: 2 });
  const close = async () => {
    if (main.child.exitCode === null) main.child.kill('SIGTERM');
    await main.exited;
    await pool.end();
    await dropTestDatabase(dbName);
  };
  return {
    ...main,
    url,
    metricsUrl: metricsUrl!,
    databaseUrl: databaseUrl.href,
    async rss() {
      const status = await readFile(`/proc/${main.child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },
    async sql(text, values) {
      return (await pool.query(text, values)).rows;
    },
    close,
    [Symbol.asyncDispose]: close,
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
