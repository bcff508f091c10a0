import { createServer } from 'node:net';
import { expect, it } from 'vitest';
import { ephemeralLow, freePort } from '../server/infra/db/postgres-server.ts';

// The servers Parley and its tests start on a port chosen beforehand (an embedded PostgreSQL,
// Redis, NATS, PgBouncer) bind it a moment later: meanwhile an outgoing connection must not be
// able to take it, so it is never one the kernel hands outgoing connections.
it('a port chosen for a server to start is free, and outside the range outgoing connections take their ports from', async () => {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    expect(port).toBeLessThan(ephemeralLow());
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise((r) => server.close(r));
  }
});
