import { afterAll, expect, it } from 'vitest';
import { holdAfterServing } from './support/hold-after-serving.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startServerProcess, type ServerProcess } from './support/server-process.ts';
import { ADMIN_URL, TEST_SECRET, dropTestDatabase, freshDatabase } from './support/test-app.ts';
import { closeOrm, createOrm } from '../server/infra/db/orm.ts';
import { signToken } from '../server/identity/sign-token.ts';

let server: ServerProcess | undefined;
afterAll(() => server?.close());

it('npm start’s entry point serves, and on SIGTERM closes sockets with 1001 and exits 0', async () => {
  server = await startServerProcess('lifecycle');
  expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  const socket = await openLegacySocket(server.url, 'alice', 'bob', await signToken({ secret: TEST_SECRET, userId: 'alice' }));
  server.child.kill('SIGTERM');
  expect((await socket.closed).code).toBe(1001);
  expect(await server.exited, server.output()).toBe(0);
});

it('a SIGTERM sent the moment the server says it serves still shuts it down in order (exit 0)', async () => {
  const early = await startServerProcess('lifecycle_early', { NODE_OPTIONS: holdAfterServing() });
  early.child.kill('SIGTERM');
  expect(await early.exited, early.output()).toBe(0);
  expect(early.output()).toContain('shutting down');
  await early.close();
});

it('SIGTERM with a client that never answers the closing handshake: the grace period bounds the shutdown, and it still exits 0', async () => {
  const stuck = await startServerProcess('lifecycle_stuck', { SHUTDOWN_GRACE_MS: '1000' });
  try {
    const socket = await openLegacySocket(stuck.url, 'alice', 'bob', await signToken({ secret: TEST_SECRET, userId: 'alice' }));
    // The client stops reading: the server's close frame is never answered, so without a bound
    // ws would wait its 30 s close timeout and the process would be killed (exit 1) first.
    socket.pauseReading();
    stuck.child.kill('SIGTERM');
    expect(await stuck.exited, stuck.output()).toBe(0);
    expect(stuck.output()).toContain('shutdown grace period elapsed');
  } finally {
    await stuck.close();
  }
});

it('closing the database pool while a query waits for a new connection: the query is answered and the pool closes', async () => {
  const dbName = 'lifecycle_pool_close';
  await freshDatabase(dbName);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const orm = await createOrm({ clientUrl: url.href, poolMax: 2 });
  try {
    const pool = (await orm.em.getConnection().getNativeClient()) as unknown as { totalCount: number; idleCount: number };
    const connection = orm.em.getConnection();
    // The first query takes the connection the ORM opened at start; the second needs a new one.
    const queries = [connection.execute('select pg_sleep(0.1) as slept'), connection.execute('select 1 as one')];
    // Close while that connection is still being opened: the moment a failed start closes at.
    while (pool.totalCount < 2) await new Promise((r) => setImmediate(r));
    expect(await closeOrm(orm, 5_000)).toBe(true);
    expect(await Promise.all(queries)).toEqual([[{ slept: '' }], [{ one: 1 }]]);
  } finally {
    await dropTestDatabase(dbName);
  }
});
