import { afterAll, expect, it } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startServerProcess, type ServerProcess } from './support/server-process.ts';
import { TEST_SECRET } from './support/test-app.ts';
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
