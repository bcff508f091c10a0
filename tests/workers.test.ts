import { spawn } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { afterAll, expect, it, vi } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { LISTEN_APPLICATION_NAME } from '../server/live/pg-notify-engine.ts';
import { holdAfterServing } from './support/hold-after-serving.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { instanceFleet } from './support/instance-process.ts';
import { parsePrometheusText, valueOf } from './support/prometheus-text.ts';
import { range, record } from './support/subscription.ts';
import { TEST_SECRET } from './support/test-app.ts';

// A failed assertion must not leave the primary and its workers running.
const fleet = instanceFleet();
afterAll(() => fleet.dispose());

it('WORKERS>1 on the embedded default is refused at start with a message naming it', async () => {
  const child = spawn(process.execPath, ['server/main.ts'], { env: { ...process.env, WORKERS: '2', DATABASE_URL: undefined, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  expect(code).not.toBe(0);
  expect(stderr).toMatch(/WORKERS: more than one worker needs DATABASE_URL/);
});

it('WORKERS=2 with LOG_FORMAT=pretty: the primary writes its lines for a person too, like its workers', async () => {
  const db = await fleet.database('workers_pretty');
  const server = await fleet.start({ DATABASE_URL: db.url, WORKERS: '2', LOG_FORMAT: 'pretty' });
  server.child.kill('SIGTERM');
  expect(await server.ended, server.output()).toBe(0);
  const lines = server.output().split('\n');
  expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
  // The primary's own: the banner for the whole cluster (its metrics URL), and the stop.
  expect(lines.filter((l) => /Parley serving on .*metrics on http/.test(l))).toEqual([expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Parley serving on /)]);
  expect(lines.filter((l) => l.includes('SIGTERM: stopping 2 workers'))).toEqual([expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: SIGTERM: stopping 2 workers$/)]);
});

it('WORKERS=2: a SIGTERM sent the moment the primary says the cluster serves stops both workers in order (exit 0)', async () => {
  const db = await fleet.database('workers_early_stop');
  const server = await fleet.start({ DATABASE_URL: db.url, WORKERS: '2', NODE_OPTIONS: holdAfterServing() });
  server.child.kill('SIGTERM');
  expect(await server.ended, server.output()).toBe(0);
  expect(server.output()).toContain('SIGTERM: stopping 2 workers');
});

it('WORKERS=2 npm start: two full instances on one port, live events cross between them, the primary\'s /metrics (behind METRICS_TOKEN) counts both workers, SIGTERM stops both', async () => {
  const db = await fleet.database('workers');
  const metricsToken = 'workers-metrics-token-0123456789';
  const server = await fleet.start({ DATABASE_URL: db.url, WORKERS: '2', METRICS_TOKEN: metricsToken });
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    // One LISTEN session per worker: each is a whole instance.
    await vi.waitFor(async () => {
      const { rows } = await c.query('select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = $1', [LISTEN_APPLICATION_NAME]);
      expect(rows[0].n, server.output()).toBe(2);
    }, { timeout: 15_000, interval: 50 });
    const bob = createChatClient({ url: server.url, token: await signToken({ secret: TEST_SECRET, userId: 'bob' }) });
    const room = await bob.rooms.open.mutate({ otherUserId: 'alice' });
    const sub = record(bob, room.id);
    await sub.started;
    // New connections are dealt out in turn, so these sockets land on both workers.
    const token = await signToken({ secret: TEST_SECRET, userId: 'alice' });
    const sockets = await Promise.all(range(1, 6).map(() => openLegacySocket(server.url, 'alice', 'bob', token)));
    sockets.forEach((s, i) => range(1, 10).forEach((j) => s.send({ action: 'new_message', message: `w${i}-${j}`, sender: 'alice', chat_room: room.id, other_user: 'bob' })));
    await sub.waitForMessages(60);
    expect(sub.seqs()).toEqual(range(1, 60));
    for (const s of sockets) await vi.waitFor(() => expect(s.frames.filter((f) => f.action === 'new_message')).toHaveLength(60), { timeout: 10_000, interval: 10 });
    // The primary's scrape covers both workers: the sockets and sends of each.
    expect((await fetch(server.metricsUrl)).status).toBe(401);
    // A send is counted after its frame went out: the last one's count can trail its delivery.
    await vi.waitFor(
      async () => {
        const res = await fetch(server.metricsUrl, { headers: { authorization: `Bearer ${metricsToken}` } });
        expect(res.status).toBe(200);
        const samples = parsePrometheusText(await res.text()).samples;
        expect(valueOf(samples, 'parley_sends_total', { surface: 'legacy-ws', outcome: 'ok' })).toBe(60);
        expect(valueOf(samples, 'parley_open_sockets', { surface: 'legacy-ws' })).toBe(6);
        expect(valueOf(samples, 'parley_subscriptions', { surface: 'trpc' })).toBe(1);
        expect(valueOf(samples, 'parley_fanout_engine_up', { engine: 'postgres' })).toBe(1);
      },
      { timeout: 5_000, interval: 100 },
    );
    // The workers serve the API alone.
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    for (const s of sockets) s.close();
    await bob.close();
  } finally {
    await c.end();
  }
  server.child.kill('SIGTERM');
  expect(await server.ended, server.output()).toBe(0);
});
