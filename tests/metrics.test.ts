import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { parsePrometheusText, valueOf } from './support/prometheus-text.ts';
import { range, record } from './support/subscription.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

let a: TestApp;
let b: PeerApp;
beforeAll(async () => {
  a = await startTestApp(import.meta.filename);
  b = await startPeerApp(a);
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text()).samples;
}

it('GET /metrics is Prometheus text with the documented families, and its counters move with traffic on every surface', async () => {
  const before = await scrape(a.url);
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
    const during = await scrape(a.url);
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

  const afterA = await scrape(a.url);
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
    const onB = await scrape(b.url);
    expect(valueOf(onB, 'parley_fanout_lag_seconds_count')).toBeGreaterThan(0);
    // The 30 messages, and alice's presence (her sockets on A), which reaches the room's stream too.
    expect(valueOf(onB, 'parley_deliveries_total', { surface: 'trpc' })).toBe(sub.events.length);
    expect(sub.events.filter((e) => e.type !== 'presence')).toHaveLength(30);
    expect(valueOf(onB, 'parley_open_sockets', { surface: 'trpc' })).toBe(1);
  });
  legacy.close();
  await legacy.closed;
  await vi.waitFor(async () => expect(valueOf(await scrape(a.url), 'parley_open_sockets', { surface: 'legacy-ws' })).toBe(0));
});
