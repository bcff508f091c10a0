import { spawn } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
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
  const child = spawn(process.execPath, ['server/main.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: url.href, JWT_SECRET: TEST_SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => (output += d));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      output += d;
      const match = /Parley serving on (http:\/\/[^\s]+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
  });
  expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  const socket = await openLegacySocket(baseUrl, 'alice', 'bob', await signToken({ secret: TEST_SECRET, userId: 'alice' }));
  child.kill('SIGTERM');
  expect((await socket.closed).code).toBe(1001);
  const [code] = await once(child, 'exit');
  expect(code, output).toBe(0);
});
