import webpush from 'web-push';
import { describe, expect, vi } from 'vitest';
import { createApp } from '../server/app.ts';
import { loadConfig } from '../server/infra/config/config.ts';
import { DATABASE_READ_PERIOD_MS } from '../server/infra/metrics/metrics.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { parsePrometheusText, valueOf } from './support/prometheus-text.ts';
import { startFakePushService } from './support/push-service.ts';
import { range, record } from './support/subscription.ts';
import { appTest, TEST_SECRET, testConfig } from './support/test-app.ts';
import { startWebhookReceiver } from './support/webhook-receiver.ts';

const it = appTest(import.meta.filename).extend<{ $file: { b: PeerApp } }>({
  b: [
    async ({ t }, use) => {
      await using b = await startPeerApp(t);
      await use(b);
    },
    { scope: 'file' },
  ],
});

async function scrape(metricsUrl: string) {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text()).samples;
}

it('the metrics listener answers GET /metrics with Prometheus text of the documented families, whose counters move with traffic on every surface', async ({ t: a, b }) => {
  const before = await scrape(a.metricsUrl);
  for (const name of ['process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds', 'parley_db_pool_connections', 'parley_pg_notification_queue_usage']) {
    expect(before.some((s) => s.name === name), name).toBe(true);
  }
  expect(valueOf(before, 'parley_fanout_engine_up', { engine: 'postgres' })).toBe(1);

  const alice = await a.client('alice');
  const bob = await b.client('bob');
  const room = await alice.rooms.open.mutate({ otherUserId: 'bob' });
  const sub = record(bob, room.id);
  await sub.started;
  const legacy = await openLegacySocket(a.url, 'alice', 'bob', await a.token('alice'));
  // The socket's feed starts just after the upgrade completes.
  await vi.waitFor(async () => {
    const during = await scrape(a.metricsUrl);
    expect(valueOf(during, 'parley_open_sockets', { surface: 'legacy-ws' })).toBe(1);
    expect(valueOf(during, 'parley_subscriptions', { surface: 'legacy-ws' })).toBe(1);
  });

  await Promise.all(range(1, 20).map((i) => alice.messages.send.mutate({ roomId: room.id, content: `t${i}` })));
  for (const i of range(1, 5)) {
    const res = await fetch(`${a.url}/${room.id}/messages/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await a.token('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: `r${i}`, chat_room: room.id, sender: 'alice' }),
    });
    expect(res.status).toBe(201);
  }
  for (const i of range(1, 5)) legacy.send({ action: 'new_message', message: `l${i}`, sender: 'alice', chat_room: room.id, other_user: 'bob' });
  await alice.messages.send.mutate({ roomId: 'a0000000-0000-4000-8000-000000000000', content: 'nowhere' }).catch(() => {});
  await sub.waitForMessages(30);

  const afterA = await scrape(a.metricsUrl);
  const moved = (name: string, labels: Record<string, string>) => valueOf(afterA, name, labels) - valueOf(before, name, labels);
  expect(moved('parley_sends_total', { surface: 'trpc', outcome: 'ok' })).toBe(20);
  expect(moved('parley_sends_total', { surface: 'rest', outcome: 'ok' })).toBe(5);
  expect(moved('parley_sends_total', { surface: 'legacy-ws', outcome: 'ok' })).toBe(5);
  expect(moved('parley_sends_total', { surface: 'trpc', outcome: 'ROOM_NOT_FOUND' })).toBe(1);
  expect(moved('parley_send_duration_seconds_count', { surface: 'trpc' })).toBe(20);
  expect(moved('parley_group_commit_batch_size_sum', {})).toBe(30);
  // One duration per statement, however many sends it carried.
  expect(moved('parley_send_statement_seconds_count', {})).toBe(moved('parley_group_commit_batch_size_count', {}));
  expect(moved('parley_send_statement_seconds_sum', {})).toBeGreaterThan(0);
  expect(moved('parley_deliveries_total', { surface: 'legacy-ws' })).toBe(30);

  // B heard A's messages through the engine: its lag histogram and its tRPC deliveries moved.
  await vi.waitFor(async () => {
    const onB = await scrape(b.metricsUrl);
    expect(valueOf(onB, 'parley_fanout_lag_seconds_count')).toBeGreaterThan(0);
    // The 30 messages, and alice's presence (her sockets on A), which reaches the room's stream too.
    expect(valueOf(onB, 'parley_deliveries_total', { surface: 'trpc' })).toBe(sub.events.length);
    expect(sub.events.filter((e) => e.type !== 'presence')).toHaveLength(30);
    expect(valueOf(onB, 'parley_open_sockets', { surface: 'trpc' })).toBe(1);
  });
  legacy.close();
  await legacy.closed;
  await vi.waitFor(async () => expect(valueOf(await scrape(a.metricsUrl), 'parley_open_sockets', { surface: 'legacy-ws' })).toBe(0));
});

describe('push and webhook jobs', () => {
  it('after a push and webhooks: runs by kind and outcome, push requests by status class, and the backlog by kind', async ({ t: a }) => {
    const vapid = webpush.generateVAPIDKeys();
    const pushService = await startFakePushService(vapid.publicKey);
    const receiver = await startWebhookReceiver();
    try {
      // Messages of the other tests are history: the jobs counted here are this test's alone.
      await a.sql('insert into message_job_cursors (chat_room_id, seq) select id, last_seq from chat_rooms on conflict (chat_room_id) do update set seq = excluded.seq');
      // The only instance here that runs push and webhook jobs.
      await using worker = await startPeerApp(a, {
        PUSH: 'on',
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        VAPID_SUBJECT: 'mailto:metrics-tests@example.com',
        PUSH_ALLOW_LOCAL_ENDPOINTS: 'true',
        PUSH_COALESCE_MS: '0',
        PRESENCE_OFFLINE_DELAY_MS: '0',
        WEBHOOK_URL: receiver.url,
        WEBHOOK_SECRET: 'metrics-webhook-secret',
      });
      const before = await scrape(worker.metricsUrl);
      const sender = await worker.client('jobs-a');
      const recipient = await worker.client('jobs-b');
      const room = await sender.rooms.open.mutate({ otherUserId: 'jobs-b' });
      await recipient.rooms.accept.mutate({ roomId: room.id });
      await recipient.push.subscribe.mutate(pushService.device('metrics'));
      await recipient.close();
      await vi.waitFor(() => expect(worker.app.services.presence.isOnline('jobs-b')).toBe(false));
      // Refused once: the job waits for its retry, and shows in the backlog meanwhile.
      pushService.answer('metrics', { status: 503, headers: { 'retry-after': '3' } });
      await sender.messages.send.mutate({ roomId: room.id, content: 'counted' });
      await vi.waitFor(() => expect(pushService.requests.get('metrics')).toBe(1), { timeout: 5_000 });
      await vi.waitFor(async () => expect(valueOf(await scrape(worker.metricsUrl), 'parley_jobs_pending', { kind: 'push' })).toBe(1), { timeout: 2_500, interval: 100 });
      await vi.waitFor(() => expect(pushService.received.filter((p) => p.device === 'metrics')).toHaveLength(1), { timeout: 8_000 });
      await vi.waitFor(() => expect(receiver.events.map((e) => e.type).sort()).toEqual(['message.created', 'room.created']), { timeout: 5_000 });
      await vi.waitFor(async () => expect(await a.sql('select kind from jobs')).toEqual([]), { timeout: 5_000 });

      // A due job of a kind no instance runs: it waits, and its age shows.
      await a.sql(`insert into jobs (kind, payload, run_at) values ('unhandled', '{}', now() - interval '5 seconds')`);
      try {
        await vi.waitFor(
          async () => {
            const after = await scrape(worker.metricsUrl);
            const moved = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
            expect(moved('parley_push_requests_total', { status: '5xx' })).toBe(1);
            expect(moved('parley_push_requests_total', { status: '2xx' })).toBe(1);
            expect(moved('parley_jobs_total', { kind: 'push', outcome: 'retry' })).toBe(1);
            expect(moved('parley_jobs_total', { kind: 'push', outcome: 'done' })).toBe(1);
            expect(moved('parley_jobs_total', { kind: 'webhook', outcome: 'done' })).toBe(2);
            expect(moved('parley_jobs_total', { kind: 'webhook', outcome: 'gave_up' })).toBe(0);
            expect(valueOf(after, 'parley_jobs_pending', { kind: 'push' })).toBe(0);
            expect(valueOf(after, 'parley_jobs_pending', { kind: 'webhook' })).toBe(0);
            expect(valueOf(after, 'parley_jobs_oldest_due_seconds', { kind: 'webhook' })).toBe(0);
            expect(valueOf(after, 'parley_jobs_pending', { kind: 'unhandled' })).toBe(1);
            expect(valueOf(after, 'parley_jobs_oldest_due_seconds', { kind: 'unhandled' })).toBeGreaterThanOrEqual(5);
          },
          { timeout: 3_000, interval: 200 },
        );
      } finally {
        await a.sql(`delete from jobs where kind = 'unhandled'`);
      }
    } finally {
      await pushService.close();
      await receiver.close();
    }
  });
});

describe('where /metrics is served', () => {
  it('the API port has no /metrics: it answers the 404 of any unknown path', async ({ t: a }) => {
    const res = await fetch(`${a.url}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual(await (await fetch(`${a.url}/no-such-path`)).json());
  });

  it('the metrics listener is on loopback by default, and serves GET /metrics alone', async ({ t: a }) => {
    expect(loadConfig({}).metrics).toEqual({ host: '127.0.0.1', port: 9464, token: undefined });
    expect(a.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(a.metricsUrl).port).not.toBe(new URL(a.url).port);
    const other = await fetch(new URL('/rooms/', a.metricsUrl));
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ detail: expect.stringMatching(/Not found/) });
    const post = await fetch(a.metricsUrl, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('METRICS_PORT=off serves no metrics listener', async ({ t: a }) => {
    await using app = await createApp(testConfig(a.databaseUrl, { METRICS_PORT: 'off' }));
    await app.listen();
    expect(app.metricsUrl).toBeUndefined();
  });

  it('METRICS_PORT equal to PORT, a short METRICS_TOKEN, or a METRICS_PORT that is not a port are refused at start', () => {
    expect(() => loadConfig({ PORT: '3000', METRICS_PORT: '3000' })).toThrow(/METRICS_PORT: must differ from PORT/);
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN: must be at least 16 characters/);
    expect(() => loadConfig({ METRICS_PORT: 'on' })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
  });
});

describe('METRICS_TOKEN', () => {
  const TOKEN = 'metrics-token-0123456789abcdef';

  it('when set, a scrape without the bearer token or with a wrong one is refused with 401, and one with it is answered', async ({ t: a }) => {
    await using app = await createApp(testConfig(a.databaseUrl, { METRICS_TOKEN: TOKEN }));
    await app.listen();
    const scrapeWith = (authorization?: string) => fetch(app.metricsUrl!, { headers: authorization ? { authorization } : {} });

    const missing = await scrapeWith();
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await missing.json()).toEqual({ detail: expect.stringMatching(/METRICS_TOKEN/) });
    for (const wrong of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN]) expect((await scrapeWith(wrong)).status, wrong).toBe(401);

    const right = await scrapeWith(`Bearer ${TOKEN}`);
    expect(right.status).toBe(200);
    expect(parsePrometheusText(await right.text()).samples.some((s) => s.name === 'parley_sends_total' || s.name === 'parley_db_pool_connections')).toBe(true);
  });
});

describe('what a scrape costs the database', () => {
  it(`scrapes in quick succession read the database at most once per ${DATABASE_READ_PERIOD_MS} ms, and a later scrape reads it again`, async ({ t: a }) => {
    await using app = await createApp(testConfig(a.databaseUrl));
    await app.listen();
    // The app's ORM runs every query the scrape-time gauges make (and the app's own, told apart by their text).
    const execute = vi.spyOn(app.services.orm.em.getConnection(), 'execute');
    const scrapeQueries = () => execute.mock.calls.filter(([sql]) => String(sql).includes('pg_notification_queue_usage')).length;
    const started = performance.now();
    const texts = await Promise.all(range(1, 50).map(async () => (await fetch(app.metricsUrl!)).text()));
    const elapsed = performance.now() - started;
    expect(texts.every((t) => /^parley_pg_notification_queue_usage \d/m.test(t))).toBe(true);
    const during = scrapeQueries();
    expect(during).toBeGreaterThanOrEqual(1);
    expect(during, `${during} queries in ${elapsed.toFixed(0)} ms`).toBeLessThanOrEqual(1 + Math.floor(elapsed / DATABASE_READ_PERIOD_MS));

    await vi.waitFor(
      async () => {
        await fetch(app.metricsUrl!);
        expect(scrapeQueries()).toBeGreaterThan(during);
      },
      { timeout: 5 * DATABASE_READ_PERIOD_MS, interval: 100 },
    );
    execute.mockRestore();
  });
});
