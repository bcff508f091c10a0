import webpush from 'web-push';
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import type { ChatClient } from '../client-sdk/index.ts';
import { startPeerApp } from './support/peer-app.ts';
import { startFakePushService, type FakePushService } from './support/push-service.ts';
import { rejection } from './support/rejection.ts';
import { appTest, type TestApp } from './support/test-app.ts';

const vapid = webpush.generateVAPIDKeys();
const COALESCE_MS = 400;
const PUSH_ENV = {
  PUSH: 'on',
  VAPID_PUBLIC_KEY: vapid.publicKey,
  VAPID_PRIVATE_KEY: vapid.privateKey,
  VAPID_SUBJECT: 'mailto:push-tests@example.com',
  PUSH_ALLOW_LOCAL_ENDPOINTS: 'true',
  PUSH_COALESCE_MS: String(COALESCE_MS),
  PUSH_TIMEOUT_MS: '1000',
  // Presence still says "online" this long after the last socket closed.
  PRESENCE_OFFLINE_DELAY_MS: '1500',
};
const it = appTest(import.meta.filename, PUSH_ENV);

let service: FakePushService;
beforeAll(async () => {
  service = await startFakePushService(vapid.publicKey);
});
afterAll(() => service?.close());

/** Long enough for a job due after the coalescing window to have run, with slack for a busy machine. */
const settle = () => new Promise((r) => setTimeout(r, COALESCE_MS + 1_200));
const pushesTo = (device: string) => service.received.filter((p) => p.device === device);

/** A room of `<name>-a` and `<name>-b`; b has one device subscribed (named `name`) and no socket open. */
async function pairWithDevice(t: TestApp, name: string) {
  const [a, b] = await Promise.all([t.client(`${name}-a`), t.client(`${name}-b`)]);
  const room = await a.rooms.open.mutate({ otherUserId: `${name}-b` });
  await b.rooms.accept.mutate({ roomId: room.id });
  await b.push.subscribe.mutate(service.device(name));
  return { a, b, room, bId: `${name}-b` };
}

async function openInbox(c: ChatClient) {
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  const sub = c.rooms.onEvent.subscribe(undefined, { onData: (e) => e.type === 'ready' && ready() });
  await started;
  return sub;
}

describe('subscriptions', () => {
  it('the VAPID key; subscribing is idempotent per endpoint, at most 10 a user with the oldest dropped; unsubscribe', async ({ t }) => {
    const c = await t.client('subs-a');
    expect(await c.push.vapidPublicKey.query()).toEqual({ publicKey: vapid.publicKey });
    const first = service.device('subs-1');
    expect(await c.push.subscribe.mutate(first)).toEqual({ subscriptions: 1 });
    expect(await c.push.subscribe.mutate({ ...first, userAgent: 'Firefox' })).toEqual({ subscriptions: 1 });
    for (let i = 2; i <= 10; i++) await c.push.subscribe.mutate(service.device(`subs-${i}`));
    expect(await c.push.subscribe.mutate(service.device('subs-11'))).toEqual({ subscriptions: 10 });
    const endpoints = (await t.sql<{ endpoint: string }>('select endpoint from push_subscriptions where user_id = $1', ['subs-a'])).map((r) => r.endpoint);
    expect(endpoints).toHaveLength(10);
    expect(endpoints).not.toContain(first.endpoint);
    expect(endpoints).toContain(service.device('subs-probe').endpoint.replace('subs-probe', 'subs-11'));
    const second = service.device('subs-2').endpoint;
    expect(await c.push.unsubscribe.mutate({ endpoint: second })).toEqual({ removed: true });
    expect(await c.push.unsubscribe.mutate({ endpoint: second })).toEqual({ removed: false });
    // Another user cannot remove a device that is not theirs.
    const other = await t.client('subs-b');
    expect(await other.push.unsubscribe.mutate({ endpoint: endpoints[0]! })).toEqual({ removed: false });
    expect(await rejection(c.push.subscribe.mutate({ endpoint: first.endpoint, keys: { p256dh: 'short', auth: first.keys.auth } }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    expect(await rejection(c.push.subscribe.mutate({ ...first, endpoint: 'ftp://127.0.0.1/x' }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
  });
});

// Each case has users and a device of its own, and most of each is waiting out a window: side by side.
describe.concurrent('pushing', () => {
  it('nothing while the recipient has a socket; once the last closes, one encrypted, VAPID-signed push that marks the message delivered', async ({ t }) => {
    const { a, b, room, bId } = await pairWithDevice(t, 'live');
    const inbox = await openInbox(b);
    await a.messages.send.mutate({ roomId: room.id, content: 'while online' });
    await settle();
    expect(pushesTo('live')).toEqual([]);
    inbox.unsubscribe();
    await b.close();
    await vi.waitFor(() => expect(t.app.services.presence.isOnline(bId)).toBe(false), { timeout: 5_000 });
    const sent = await a.messages.send.mutate({ roomId: room.id, content: 'after you left' });
    await vi.waitFor(() => expect(pushesTo('live')).toHaveLength(1), { timeout: 5_000 });
    const [push] = pushesTo('live');
    expect(push!.payload).toEqual({ type: 'message', tag: `room:${room.id}`, chat_room: room.id, seq: sent.seq, unread: 2, title: 'live-a', sender: 'live-a', body: 'after you left' });
    expect(push!.headers).toMatchObject({ 'content-encoding': 'aes128gcm', topic: room.id.replace(/-/g, ''), ttl: expect.any(String) });
    expect(push!.size).toBeLessThanOrEqual(4096);
    expect(push!.vapid).toMatchObject({ aud: new URL(service.device('x').endpoint).origin, sub: 'mailto:push-tests@example.com' });
    expect(push!.vapid.exp * 1000).toBeGreaterThan(Date.now());
    await vi.waitFor(async () => expect((await a.rooms.list.query()).items.find((r) => r.id === room.id)).toMatchObject({ other_delivered_seq: sent.seq }));
    await settle();
    expect(pushesTo('live')).toHaveLength(1);
  });

  it('a message sent while presence still says online, just after the last socket closed, is pushed once that passes', async ({ t }) => {
    const { a, b, room, bId } = await pairWithDevice(t, 'leaving');
    const inbox = await openInbox(b);
    inbox.unsubscribe();
    await b.close();
    expect(t.app.services.presence.isOnline(bId)).toBe(true);
    await a.messages.send.mutate({ roomId: room.id, content: 'as you left' });
    await vi.waitFor(() => expect(pushesTo('leaving').map((p) => p.payload.body)).toEqual(['as you left']), { timeout: 6_000 });
  });

  it('a burst of 20 messages is one push, carrying the newest and the unread count', async ({ t }) => {
    const { a, room } = await pairWithDevice(t, 'burst');
    // At once, so the burst fits the window however busy the machine is.
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => a.messages.send.mutate({ roomId: room.id, content: `m${i + 1}` })));
    await vi.waitFor(() => expect(pushesTo('burst')).toHaveLength(1), { timeout: 5_000 });
    await settle();
    expect(pushesTo('burst')).toHaveLength(1);
    expect(pushesTo('burst')[0]!.payload).toMatchObject({ seq: 20, unread: 20, body: sent.find((m) => m.seq === 20)!.content });
  });

  it('a muted room is silent; unmuted, it pushes again', async ({ t }) => {
    const { a, b, room } = await pairWithDevice(t, 'muted');
    expect(await b.rooms.mute.mutate({ roomId: room.id })).toEqual({ muted: true, until: null });
    await a.messages.send.mutate({ roomId: room.id, content: 'quiet' });
    await settle();
    expect(service.requests.get('muted')).toBeUndefined();
    const until = new Date(Date.now() + 3_600_000).toISOString();
    expect(await b.rooms.mute.mutate({ roomId: room.id, until })).toEqual({ muted: true, until });
    await a.messages.send.mutate({ roomId: room.id, content: 'still quiet' });
    await settle();
    expect(service.requests.get('muted')).toBeUndefined();
    expect(await b.rooms.unmute.mutate({ roomId: room.id })).toEqual({ muted: false, until: null });
    await a.messages.send.mutate({ roomId: room.id, content: 'loud' });
    await vi.waitFor(() => expect(pushesTo('muted').map((p) => p.payload.body)).toEqual(['loud']), { timeout: 5_000 });
    const outsider = await t.client('muted-outsider');
    expect(await rejection(outsider.rooms.mute.mutate({ roomId: room.id }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
  });

  it('410 from the push service deletes the subscription', async ({ t }) => {
    const { a, room, bId } = await pairWithDevice(t, 'gone');
    service.answer('gone', { status: 410 });
    await a.messages.send.mutate({ roomId: room.id, content: 'to a dead device' });
    await vi.waitFor(async () => expect(await t.sql('select id from push_subscriptions where user_id = $1', [bId])).toEqual([]), { timeout: 5_000 });
    expect(service.requests.get('gone')).toBe(1);
    await a.messages.send.mutate({ roomId: room.id, content: 'again' });
    await settle();
    expect(service.requests.get('gone')).toBe(1);
  });

  it('429 with Retry-After is retried no sooner than it says', async ({ t }) => {
    const { a, room } = await pairWithDevice(t, 'throttled');
    service.answer('throttled', { status: 429, headers: { 'retry-after': '2' } });
    await a.messages.send.mutate({ roomId: room.id, content: 'patience' });
    await vi.waitFor(() => expect(pushesTo('throttled')).toHaveLength(1), { timeout: 8_000 });
    const [refused, accepted] = service.log.filter((l) => l.device === 'throttled');
    expect(refused!.answer).toMatchObject({ status: 429 });
    expect(accepted!.at - refused!.at).toBeGreaterThanOrEqual(2_000);
    expect(pushesTo('throttled')[0]!.payload.body).toBe('patience');
  });

  it('a push service that never answers slows no send; the push goes once it answers again', async ({ t }) => {
    const { a, room } = await pairWithDevice(t, 'hung');
    service.answer('hung', 'hang', 'hang');
    await a.messages.send.mutate({ roomId: room.id, content: 'first' });
    await vi.waitFor(() => expect(service.requests.get('hung')).toBe(1), { timeout: 5_000 });
    // The job is now waiting on a request that will not be answered: sends go on as ever.
    const durations: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await a.messages.send.mutate({ roomId: room.id, content: `during ${i}` });
      durations.push(performance.now() - started);
    }
    expect(Math.max(...durations)).toBeLessThan(500);
    await vi.waitFor(() => expect(pushesTo('hung')).toHaveLength(1), { timeout: 15_000 });
    expect(pushesTo('hung')[0]!.payload.body).toBe('during 19');
  });

  it('no push while the recipient is connected to another instance; one once they leave it', async ({ t }) => {
    const { a, room, bId } = await pairWithDevice(t, 'elsewhere');
    const peer = await startPeerApp(t, { PUSH: 'off' });
    try {
      const onPeer = await peer.client(bId);
      const inbox = await openInbox(onPeer);
      await vi.waitFor(() => expect(t.app.services.presence.isOnline(bId)).toBe(true));
      await a.messages.send.mutate({ roomId: room.id, content: 'you are elsewhere' });
      await settle();
      expect(service.requests.get('elsewhere')).toBeUndefined();
      inbox.unsubscribe();
      await onPeer.close();
      await vi.waitFor(() => expect(t.app.services.presence.isOnline(bId)).toBe(false), { timeout: 5_000 });
      await a.messages.send.mutate({ roomId: room.id, content: 'now you are gone' });
      await vi.waitFor(() => expect(pushesTo('elsewhere').map((p) => p.payload.body)).toEqual(['now you are gone']), { timeout: 5_000 });
    } finally {
      await peer.close();
    }
  });
});
