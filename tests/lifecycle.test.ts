import { afterAll, expect, it } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startServerProcess, type ServerProcess } from './support/server-process.ts';
import { TEST_SECRET } from './support/test-app.ts';
import { signToken } from '../server/auth/sign-token.ts';

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
