import webpush from 'web-push';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startPeerApp } from './support/peer-app.ts';
import { startFakePushService, type FakePushService } from './support/push-service.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

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
