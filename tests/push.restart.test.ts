import webpush from 'web-push';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createChatClient, type ChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { startInstanceProcess } from './support/instance-process.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { startPgFreezeProxy } from './support/pg-freeze-proxy.ts';
import { startFakePushService, type FakePushService } from './support/push-service.ts';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.ts';
import { startWebhookReceiver } from './support/webhook-receiver.ts';

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
  const receiver = await startWebhookReceiver();
  const env = { ...PUSH_ENV, PUSH_COALESCE_MS: '0', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: 'crash-test-secret' };
  const proxy = await startPgFreezeProxy(t.databaseUrl);
  const first = await startInstanceProcess({ ...env, DATABASE_URL: proxy.url });
  let second: PeerApp | undefined;
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

    // The next start needs no process of its own: no signal is sent to it.
    second = await startPeerApp(t, env);
    await vi.waitFor(() => expect(service.received.filter((p) => p.device === 'crash').map((p) => p.payload.body)).toEqual(['sent just before the crash']), { timeout: 8_000 });
    await vi.waitFor(() => expect(receiver.ofType('message.created').map((e) => e.data.message?.content)).toEqual(['sent just before the crash']), { timeout: 8_000 });
    // Done jobs are gone: nothing is left to send either again.
    await vi.waitFor(async () => expect(await t.sql('select kind from jobs')).toEqual([]), { timeout: 8_000 });
    expect(service.received.filter((p) => p.device === 'crash')).toHaveLength(1);
    expect(receiver.ofType('message.created')).toHaveLength(1);
  } finally {
    a.close();
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    await second?.close();
    await proxy.close().catch(() => undefined);
    await receiver.close();
  }
});

/**
 * A process of its own on the database, through a proxy that cuts it off once a chosen statement
 * has committed, when it is killed with SIGKILL: nothing it meant to write after that commit is
 * written, as if killed in the same instant.
 */
async function doomedInstance(env: Record<string, string>) {
  const proxy = await startPgFreezeProxy(t.databaseUrl);
  const instance = await startInstanceProcess({ ...env, DATABASE_URL: proxy.url });
  const clients: ChatClient[] = [];
  const end = async () => {
    for (const c of clients) c.close();
    if (instance.child.exitCode === null && instance.child.signalCode === null) instance.child.kill('SIGKILL');
    await instance.ended;
    await proxy.close().catch(() => undefined);
  };
  return {
    async client(userId: string) {
      const c = createChatClient({ url: instance.url, token: await signToken({ secret: TEST_SECRET, userId }), deliveryReceipts: false });
      clients.push(c);
      return c;
    },
    /** Starts `act`, and kills the process once its statement containing `text` has committed. */
    async crashAfter(text: string, act: () => Promise<unknown>) {
      const frozen = proxy.freezeAfter(text);
      // Its answer may never come: what follows the commit waits on a database it cannot reach.
      act().catch(() => undefined);
      await frozen;
      instance.child.kill('SIGKILL');
      expect(await instance.ended).toBe('SIGKILL');
      await end();
    },
    end,
  };
}

it('kill -9 right after an edit, a deletion or a room opening commits: its webhook is sent once, by the restarted process or by another instance', async () => {
  const receiver = await startWebhookReceiver();
  const env = { PUSH: 'off', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: 'crash-test-secret' };
  const doomed: Array<Awaited<ReturnType<typeof doomedInstance>>> = [];
  const doom = async () => {
    const instance = await doomedInstance(env);
    doomed.push(instance);
    return instance;
  };
  let survivor: PeerApp | undefined;
  // Jobs the dying process had claimed would wait out their lease: each crash comes once none is left.
  const noJobsLeft = () => vi.waitFor(async () => expect(await t.sql('select kind from jobs')).toEqual([]), { timeout: 8_000 });
  try {
    const first = await doom();
    const a = await first.client('edit-a');
    const room = await a.rooms.open.mutate({ otherUserId: 'edit-b' });
    const sent = await a.messages.send.mutate({ roomId: room.id, content: 'before the edit' });
    await vi.waitFor(() => expect(receiver.ofType('message.created')).toHaveLength(1), { timeout: 8_000 });
    await noJobsLeft();
    await first.crashAfter('edited_at = now()', () => a.messages.edit.mutate({ roomId: room.id, messageId: sent.id, content: 'edited before the crash' }));
    expect(receiver.ofType('message.updated')).toEqual([]);

    // The restart sends it.
    survivor = await startPeerApp(t, env);
    await vi.waitFor(() => expect(receiver.ofType('message.updated').map((e) => e.data.message?.content)).toEqual(['edited before the crash']), { timeout: 8_000 });
    await noJobsLeft();

    // Another instance, up while this one dies, sends these.
    const second = await doom();
    const again = await second.client('edit-a');
    await second.crashAfter('deleted_at = now()', () => again.messages.delete.mutate({ roomId: room.id, messageId: sent.id }));
    await vi.waitFor(() => expect(receiver.ofType('message.deleted').map((e) => e.data.message?.id)).toEqual([sent.id]), { timeout: 8_000 });
    await noJobsLeft();

    const third = await doom();
    const opener = await third.client('edit-a');
    await third.crashAfter('insert into "chat_rooms"', () => opener.rooms.open.mutate({ otherUserId: 'edit-c' }));
    const openedForC = () => receiver.ofType('room.created').filter((e) => e.data.room?.participant2 === 'edit-c');
    await vi.waitFor(() => expect(openedForC()).toHaveLength(1), { timeout: 8_000 });
    await noJobsLeft();

    expect(receiver.events.map((e) => e.type).sort()).toEqual(['message.created', 'message.deleted', 'message.updated', 'room.created', 'room.created']);
    expect(new Set(receiver.events.map((e) => e.id)).size).toBe(receiver.events.length);
  } finally {
    for (const d of doomed) await d.end();
    await survivor?.close();
    await receiver.close();
  }
});
