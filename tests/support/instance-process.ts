import { once } from 'node:events';
import pg from 'pg';
import { runMain, servingUrl, type MainProcess } from './main-process.ts';
import { ADMIN_URL, dropTestDatabase, TEST_SECRET } from './test-app.ts';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** An empty database `parley_test_<tag>_<pid>` on the test PostgreSQL, for servers run as processes. */
export async function createTestDatabase(tag: string): Promise<TestDatabase> {
  const name = `parley_test_${tag.replace(/\W/g, '_').toLowerCase()}_${process.pid}`;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(`drop database if exists ${name} with (force)`);
    await c.query(`create database ${name}`);
  } finally {
    await c.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => dropTestDatabase(name) };
}

export interface InstanceProcess extends MainProcess {
  url: string;
  /** Resolves with the exit code, or the signal that ended it. */
  ended: Promise<number | string>;
}

/** `npm start`'s entry point as a child process on port 0 with `env` (a DATABASE_URL of the test's); resolves once it serves. */
export async function startInstanceProcess(env: Record<string, string>): Promise<InstanceProcess> {
  const main = runMain({ PORT: '0', LOG_LEVEL: 'info', JWT_SECRET: TEST_SECRET, SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ...env });
  const ended = once(main.child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  return { ...main, url: await servingUrl(main), ended };
}
