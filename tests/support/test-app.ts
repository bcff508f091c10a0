import { basename } from 'node:path';
import pg from 'pg';
import { inject, test } from 'vitest';
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { createApp, type ParleyApp } from '../../server/app.ts';
import { signToken } from '../../server/identity/sign-token.ts';
import { loadConfig } from '../../server/infra/config/config.ts';
import { adminQuery, createDatabaseFrom, databaseUrl as urlOf, releaseDatabase } from './template-database.ts';

/** The PostgreSQL server tests create their databases on (never the data itself). */
export const ADMIN_URL = inject('adminDatabaseUrl');
const TEMPLATE = inject('templateDatabase');
const TEMPLATE_STATE = inject('templateState');

/** A fresh database `name` at the current schema (any old one of that name dropped first). */
export const freshDatabase = (name: string) => createDatabaseFrom(ADMIN_URL, TEMPLATE, name);
export const TEST_SECRET = 'parley-test-secret-0123456789abcdefghijklmnop';

export interface TestApp {
  app: ParleyApp;
  url: string;
  /** Where its `/metrics` is scraped (its own listener, on a free port). */
  metricsUrl: string;
  databaseUrl: string;
  token(userId: string, expiresIn?: string): Promise<string>;
  /** An SDK client for `userId` that marks nothing delivered by itself; closed with the app. */
  client(userId: string): Promise<ChatClient>;
  /** Runs SQL against the test database directly, to check what was stored. */
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
  /** `await using t = await startTestApp(...)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Lets a test database go: set aside for the run's next fresh database when a reset makes it one, else dropped (see `releaseDatabase`). */
export const dropTestDatabase = (dbName: string) => releaseDatabase(ADMIN_URL, TEMPLATE, TEMPLATE_STATE, dbName);

/** Far past a normal close (under a second; the shutdown grace period is 10 s). */
const CLOSE_STUCK_MS = 20_000;

/**
 * A close stuck past the hook timeout would fail the file with no clue why. When a close takes
 * this long, print what the database's sessions are doing, then cancel their running statements:
 * a statement stuck on a lock fails instead, so a pool waiting for it can end (a cancel, unlike
 * terminating the session, leaves the connection usable, so pg raises no unhandled error). A close
 * stuck elsewhere still times out, now with this report beside it.
 */
async function reportStuckClose(tag: string, dbName: string, stage: string | undefined) {
  const rows = await adminQuery(
    ADMIN_URL,
    `select pid, application_name, state, wait_event_type, wait_event, now() - query_start as running, left(query, 300) as query,
            pg_cancel_backend(pid) as cancelled
       from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
    [dbName],
  );
  console.error(`test app of ${tag}: close() still running after ${CLOSE_STUCK_MS / 1000} s, waiting for: ${stage}; sessions of ${dbName} (running statements cancelled):`, rows);
}

/** The configuration of an in-process test server on `databaseUrl`, with `env` on top (`undefined` unsets a variable). */
export function testConfig(databaseUrl: string, env: Record<string, string | undefined> = {}) {
  return loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    METRICS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: databaseUrl,
    JWT_SECRET: TEST_SECRET,
    // Files run side by side against one PostgreSQL (100 connections by default), beside whatever
    // else the machine runs: a smaller pool each, which the tests' loads do not need larger.
    DB_POOL_MAX: '5',
    // Contract tests send bursts from one user; the rate-limit tests set their own limits.
    SEND_RATE_PER_SEC: '0',
    TYPING_RATE_PER_SEC: '0',
    MARK_READ_RATE_PER_SEC: '0',
    EDIT_RATE_PER_SEC: '0',
    DELETE_RATE_PER_SEC: '0',
    ROOM_OPEN_RATE_PER_SEC: '0',
    SAFETY_RATE_PER_SEC: '0',
    UPLOAD_RATE_PER_SEC: '0',
    // Presence tests watch transitions as they happen; the debounce has tests of its own.
    PRESENCE_OFFLINE_DELAY_MS: '0',
    ...env,
  });
}

/**
 * A fresh database `parley_test_<file>_<pid>` and a server on port 0, built by the real `createApp`.
 * A suffix after the file's name (`${import.meta.filename}-dev`) stays in the database's name: a
 * file's apps can be open at once, and one must not drop another's database.
 */
export async function startTestApp(
  testFile: string,
  env: Record<string, string | undefined> = {},
  /** A connection pooler in front of the database: the app's DATABASE_URL goes through it, DATABASE_DIRECT_URL does not. */
  { pooler }: { pooler?: { pooled(url: string): string } } = {},
): Promise<TestApp> {
  const tag = basename(testFile).replace(/\.test\.[cm]?[jt]s/, '').replace(/\W/g, '_').toLowerCase();
  const dbName = `parley_test_${tag}_${process.pid}`;
  await freshDatabase(dbName);
  const databaseUrl = urlOf(ADMIN_URL, dbName);
  const app = await createApp(testConfig(databaseUrl, pooler ? { DATABASE_URL: pooler.pooled(databaseUrl), DATABASE_DIRECT_URL: databaseUrl, ...env } : env));
  const url = await app.listen();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const clients: ChatClient[] = [];
  const token = (userId: string, expiresIn = '1h') => signToken({ secret: TEST_SECRET, userId, expiresIn });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      const closed = app.close();
      let timer: NodeJS.Timeout | undefined;
      const stuck = await Promise.race([closed.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_STUCK_MS)))]);
      clearTimeout(timer);
      if (stuck) await reportStuckClose(tag, dbName, app.shutdownStage);
      await closed;
      await pool.end();
      await dropTestDatabase(dbName);
    })());
  return {
    app,
    url,
    // Undefined only when a test turned the listener off.
    metricsUrl: app.metricsUrl!,
    databaseUrl,
    token,
    async client(userId) {
      // Tests pin exact event streams; delivery receipts, which add events, have tests of their own.
      const client = createChatClient({ url, token: await token(userId), deliveryReceipts: false });
      clients.push(client);
      return client;
    },
    async sql(text, values) {
      return (await pool.query(text, values)).rows;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * A file's `it` whose tests take `{ t }`: one app for the whole file, started when a test first
 * asks for it and closed after the file's last test. Files share an app because starting one (a
 * database, its migrations, a server) costs far more than most of their tests.
 */
export function appTest(testFile: string, env: Record<string, string | undefined> = {}) {
  return test.extend<{ $file: { t: TestApp } }>({
    t: [
      async ({}, use) => {
        await using t = await startTestApp(testFile, env);
        await use(t);
      },
      { scope: 'file' },
    ],
  });
}
