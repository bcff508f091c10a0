import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { runMain, servingUrl } from './support/main-process.ts';
import { ADMIN_URL, dropTestDatabase, TEST_SECRET } from './support/test-app.ts';
import { signToken } from '../server/auth/sign-token.ts';

const dbName = `parley_test_lifecycle_${process.pid}`;
const admin = async (sql: string) => {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(sql).finally(() => c.end());
};
afterAll(() => dropTestDatabase(dbName));

it('npm start’s entry point serves, and on SIGTERM closes sockets with 1001 and exits 0', async () => {
  await admin(`drop database if exists ${dbName} with (force)`);
  await admin(`create database ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const main = runMain({ PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: url.href, JWT_SECRET: TEST_SECRET });
  const baseUrl = await servingUrl(main);
  expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  const socket = await openLegacySocket(baseUrl, 'alice', 'bob', await signToken({ secret: TEST_SECRET, userId: 'alice' }));
  main.child.kill('SIGTERM');
  expect((await socket.closed).code).toBe(1001);
  expect(await main.exited, main.output()).toBe(0);
});
