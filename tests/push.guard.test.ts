import { createECDH, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import webpush from 'web-push';
import { describe, expect, it } from 'vitest';
import { PushPayload } from '../contracts/index.ts';
import { checkEndpoint, isPublicAddress } from '../server/push/endpoint-guard.ts';
import { retryAfterMs } from '../server/infra/retry-after.ts';
import { createWebPushSender, ENCRYPTION_OVERHEAD_BYTES, MAX_ENCRYPTED_BYTES } from '../server/push/push-sender.ts';
import { payloadOf } from '../server/push/push.service.ts';
import { loadVapidKeys } from '../server/push/vapid-keys.ts';
import { loadConfig } from '../server/infra/config/config.ts';
import { rejection } from './support/rejection.ts';
import { startTestApp } from './support/test-app.ts';

describe('push endpoints (SSRF)', () => {
  it('only public addresses count as public', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '224.0.0.1']) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ['8.8.8.8', '142.250.1.1', '2a00:1450:4001:82b::200e', '::ffff:8.8.8.8']) expect(isPublicAddress(a), a).toBe(true);
  });

  it('refuses http, credentials, private address literals and names that resolve to private addresses', async () => {
    const strict = { allowLocal: false };
    for (const endpoint of ['http://8.8.8.8/push', 'https://user:pw@8.8.8.8/push', 'https://127.0.0.1/push', 'https://[::1]/push', 'https://169.254.169.254/latest', 'https://localhost/push', 'not a url']) {
      await expect(checkEndpoint(endpoint, strict), endpoint).rejects.toThrow();
    }
    await expect(checkEndpoint('https://8.8.8.8/push', strict)).resolves.toBeInstanceOf(URL);
    await expect(checkEndpoint('http://127.0.0.1:1/push', { allowLocal: true })).resolves.toBeInstanceOf(URL);
  });

  it('checks again at send time, on the address it connects to, and follows no redirect', async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.writeHead(301, { location: 'https://8.8.8.8/' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const keys = webpush.generateVAPIDKeys();
    const target = { endpoint: `https://localhost:${port}/push`, p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM', auth: 'tBHItJI5svbpez7KI4CCXg' };
    const message = { payload: '{}', topic: 'room', ttlSeconds: 60 };
    const vapid = { ...keys, subject: 'mailto:guard@example.com' };
    try {
      const strict = createWebPushSender({ vapid, timeoutMs: 1_000, allowLocal: false });
      expect(await strict.send(target, message)).toMatchObject({ outcome: 'refused' });
      expect(hits).toBe(0);
      const local = createWebPushSender({ vapid, timeoutMs: 1_000, allowLocal: true });
      expect(await local.send({ ...target, endpoint: `http://127.0.0.1:${port}/push` }, message)).toMatchObject({ outcome: 'refused', status: 301 });
      expect(hits).toBe(1);
    } finally {
      server.close();
    }
  });
});

describe('push payloads', () => {
  it('a long message is cut to fit 4 KB once encrypted; without previews only "New message" is sent', () => {
    const room = '8d0f8a52-7a57-4a3f-9a71-0e6b0d0b7c11';
    const long = payloadOf({ room, seq: 7, unread: 3, sender: 'ann', content: '語'.repeat(4000) }, true);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(MAX_ENCRYPTED_BYTES - ENCRYPTION_OVERHEAD_BYTES);
    expect(PushPayload.parse(JSON.parse(long))).toMatchObject({ title: 'ann', sender: 'ann', seq: 7, unread: 3 });
    const hidden = JSON.parse(payloadOf({ room, seq: 7, unread: 3, sender: 'ann', content: 'secret' }, false));
    expect(hidden).toEqual({ type: 'message', tag: `room:${room}`, chat_room: room, seq: 7, unread: 3, title: 'New message' });
  });

  it('Retry-After in seconds or as a date', () => {
    expect(retryAfterMs('3')).toBe(3_000);
    expect(retryAfterMs(new Date(Date.now() + 5_000).toUTCString(), Date.now())).toBeGreaterThan(3_000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('push configuration', () => {
  const production = { NODE_ENV: 'production', HOST: '0.0.0.0', JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://127.0.0.1/parley' };
  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      return (err as Error).message;
    }
    return undefined;
  };

  it('on by default in development only; on in production without keys is a start error naming them', () => {
    expect(loadConfig({ JWT_SECRET: undefined as never }).push).toMatchObject({ enabled: true, vapid: undefined, coalesceMs: 2_000, preview: true, allowLocalEndpoints: false });
    expect(loadConfig(production).push.enabled).toBe(false);
    expect(refusal({ ...production, PUSH: 'on' })).toMatch(/PUSH: on with NODE_ENV=production needs VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT/);
    const keys = webpush.generateVAPIDKeys();
    const vapid = { VAPID_PUBLIC_KEY: keys.publicKey, VAPID_PRIVATE_KEY: keys.privateKey, VAPID_SUBJECT: 'mailto:ops@example.com' };
    expect(loadConfig({ ...production, PUSH: 'on', ...vapid }).push).toMatchObject({ enabled: true, vapid: { publicKey: keys.publicKey, subject: 'mailto:ops@example.com' } });
    expect(refusal({ ...production, PUSH: 'on', VAPID_PUBLIC_KEY: keys.publicKey })).toMatch(/together/);
    expect(refusal({ ...production, PUSH_ALLOW_LOCAL_ENDPOINTS: 'true' })).toMatch(/PUSH_ALLOW_LOCAL_ENDPOINTS: never with NODE_ENV=production/);
    expect(refusal({ ...production, PUSH: 'on', ...vapid, VAPID_SUBJECT: 'ops@example.com' })).toMatch(/VAPID_SUBJECT/);
  });

  it('a webhook URL needs its secret', () => {
    expect(refusal({ ...production, WEBHOOK_URL: 'https://hooks.example.com/parley' })).toMatch(/WEBHOOK_SECRET: required with WEBHOOK_URL/);
    expect(loadConfig({ ...production, WEBHOOK_URL: 'https://hooks.example.com/parley', WEBHOOK_SECRET: 's'.repeat(16) }).webhook).toEqual({ url: 'https://hooks.example.com/parley', secret: 's'.repeat(16), timeoutMs: 10_000 });
    expect(loadConfig(production).webhook).toBeUndefined();
  });

  it('development generates its keys once and keeps them in DATA_DIR', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-vapid-'));
    try {
      const push = loadConfig({ DATA_DIR: dir }).push;
      const first = await loadVapidKeys(push, dir);
      expect(first.publicKey).toMatch(/^[A-Za-z0-9_-]{87}$/);
      expect(await loadVapidKeys(push, dir)).toEqual(first);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('push subscriptions are paced', () => {
  it('each push.subscribe takes a token of the SAFETY_… bucket (it resolves a host): past the burst, RATE_LIMITED', async () => {
    const vapid = webpush.generateVAPIDKeys();
    await using t = await startTestApp(`${import.meta.filename}-paced`, {
      PUSH: 'on',
      VAPID_PUBLIC_KEY: vapid.publicKey,
      VAPID_PRIVATE_KEY: vapid.privateKey,
      VAPID_SUBJECT: 'mailto:push-tests@example.com',
      PUSH_ALLOW_LOCAL_ENDPOINTS: 'true',
      SAFETY_RATE_PER_SEC: '0.01',
      SAFETY_BURST: '2',
    });
    const c = await t.client('paced');
    const device = (n: number) => {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      return { endpoint: `http://127.0.0.1:9/push/${n}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
    };
    await c.push.subscribe.mutate(device(1));
    await c.push.subscribe.mutate(device(2));
    expect(await rejection(c.push.subscribe.mutate(device(3)))).toMatchObject({ parleyCode: 'RATE_LIMITED' });
  });
});
