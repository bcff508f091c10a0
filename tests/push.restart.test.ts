import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import webpush from 'web-push';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { startInstanceProcess } from './support/instance-process.ts';
import { startPeerApp } from './support/peer-app.ts';
import { startPgFreezeProxy } from './support/pg-freeze-proxy.ts';
import { startFakePushService, type FakePushService } from './support/push-service.ts';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.ts';

const vapid = webpush.generateVAPIDKeys();
const PUSH_ENV = {
  PUSH: 'on',
  VAPID_PUBLIC_KEY: vapid.publicKey,
  VAPID_PRIVATE_KEY: vapid.privateKey,
  VAPID_SUBJECT: 'https://push-tests.example.com',
  PUSH_ALLOW_LOCAL_ENDPOINTS: 'true',
  // Long enough that the first instance stops before the job is due.
  PUSH_COALESCE_MS: '1500',
};

let t: TestApp;
let service: FakePushService;
beforeAll(async () => {
  // Holds the database; sends no push itself, so only the instances below run jobs.
  t = await startTestApp(import.meta.filename, { PUSH: 'off' });
  service = await startFakePushService(vapid.publicKey);
});
afterAll(async () => {
  await service?.close();
  await t?.close();
});

it('a push job written before a restart is sent by the next start', async () => {
  const first = await startPeerApp(t, PUSH_ENV);
  const a = await first.client('restart-a');
  const b = await first.client('restart-b');
  const room = await a.rooms.open.mutate({ otherUserId: 'restart-b' });
  await b.push.subscribe.mutate(service.device('restart'));
  await a.messages.send.mutate({ roomId: room.id, content: 'across a restart' });
  await first.app.services.push.flushed();
  await first.close();
  expect(await t.sql(`select kind, payload->>'user' as user from jobs`)).toEqual([{ kind: 'push', user: 'restart-b' }]);
  expect(service.received).toEqual([]);
  const second = await startPeerApp(t, PUSH_ENV);
  try {
    await vi.waitFor(() => expect(service.received.map((p) => p.payload.body)).toEqual(['across a restart']), { timeout: 8_000 });
    await vi.waitFor(async () => expect(await t.sql('select id from jobs')).toEqual([]));
  } finally {
    await second.close();
  }
});

it('kill -9 right after a send commits: the next start sends its push and its webhook, once each', async () => {
  const events: Array<{ type: string; data: { message?: { content: string } } }> = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      events.push(JSON.parse(body) as (typeof events)[number]);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const env = {
    ...PUSH_ENV,
    PUSH_COALESCE_MS: '0',
    WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    WEBHOOK_SECRET: 'crash-test-secret',
  };
  const proxy = await startPgFreezeProxy(t.databaseUrl);
  const first = await startInstanceProcess({ ...env, DATABASE_URL: proxy.url });
  let second: Awaited<ReturnType<typeof startInstanceProcess>> | undefined;
  const client = async (userId: string) => createChatClient({ url: first.url, token: await signToken({ secret: TEST_SECRET, userId }), deliveryReceipts: false });
  const [a, b] = [await client('crash-a'), await client('crash-b')];
  try {
    const room = await a.rooms.open.mutate({ otherUserId: 'crash-b' });
    // Accepted, so the send's answer waits on no further statement (a first reply accepts a request).
    await b.rooms.accept.mutate({ roomId: room.id });
    await b.push.subscribe.mutate(service.device('crash'));
    await b.close();
    // The room's own webhook (room.created) is sent and done first: a job this process had claimed
    // when it died would wait out its lease and still be in the table at the end.
    await vi.waitFor(async () => expect(await t.sql('select kind from jobs')).toEqual([]), { timeout: 8_000 });
    // From the send's commit on, nothing this process writes reaches the database: it dies as if
    // killed in the same instant, whatever it meant to write next.
    const frozen = proxy.freezeAfter('insert into messages');
    await a.messages.send.mutate({ roomId: room.id, content: 'sent just before the crash' });
    await frozen;
    first.child.kill('SIGKILL');
    expect(await first.ended).toBe('SIGKILL');
    await proxy.close();
    expect(service.received.filter((p) => p.device === 'crash')).toEqual([]);

    second = await startInstanceProcess({ ...env, DATABASE_URL: t.databaseUrl });
    await vi.waitFor(() => expect(service.received.filter((p) => p.device === 'crash').map((p) => p.payload.body)).toEqual(['sent just before the crash']), { timeout: 8_000 });
    await vi.waitFor(() => expect(events.filter((e) => e.type === 'message.created').map((e) => e.data.message?.content)).toEqual(['sent just before the crash']), { timeout: 8_000 });
    // Done jobs are gone: nothing is left to send either again.
    await vi.waitFor(async () => expect(await t.sql('select kind from jobs')).toEqual([]), { timeout: 8_000 });
    expect(service.received.filter((p) => p.device === 'crash')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'message.created')).toHaveLength(1);
  } finally {
    a.close();
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    if (second) {
      second.child.kill('SIGTERM');
      await second.ended;
    }
    await proxy.close().catch(() => undefined);
    await new Promise((resolve) => receiver.close(resolve));
  }
});
