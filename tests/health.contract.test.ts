import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { expect, it, vi } from 'vitest';
import { LISTEN_BACKLOG } from '../server/app.ts';
import { DATABASE_READ_PERIOD_MS } from '../server/infra/metrics/metrics.ts';
import { range } from './support/subscription.ts';
import { startTestApp } from './support/test-app.ts';

it('/healthz and /readyz answer without credentials; readiness reads the database at most once per period, however often it is probed', async () => {
  await using t = await startTestApp(import.meta.filename);
  expect(await (await fetch(`${t.url}/healthz`)).json()).toEqual({ status: 'ok' });
  // Readiness is public, like a load balancer's probe: its rate must not become the database's query rate.
  const execute = vi.spyOn(t.app.services.orm.em.getConnection(), 'execute');
  const probes = () => execute.mock.calls.filter(([sql]) => /^select 1$/.test(String(sql).trim())).length;
  const started = performance.now();
  const answers = await Promise.all(range(1, 50).map(async () => (await fetch(`${t.url}/readyz`)).status));
  const elapsed = performance.now() - started;
  expect(answers.every((status) => status === 200)).toBe(true);
  expect(probes(), `${probes()} queries in ${elapsed.toFixed(0)} ms`).toBeLessThanOrEqual(1 + Math.floor(elapsed / DATABASE_READ_PERIOD_MS));
  execute.mockRestore();
});

// A restarted instance is met by every client that lost it at once: handshakes past the queue are
// dropped by the kernel and retried by clients only seconds later.
it.skipIf(process.platform !== 'linux')('the API port queues a reconnecting crowd: its accept queue is LISTEN_BACKLOG long, or the kernel’s cap', async () => {
  await using t = await startTestApp(`${import.meta.filename}-backlog`);
  const port = new URL(t.url).port;
  const { stdout } = await promisify(execFile)('ss', ['-ltnH', `sport = :${port}`]);
  // For a listening socket, ss's Send-Q column is the length of its accept queue.
  const queue = Number(stdout.trim().split(/\s+/)[2]);
  const cap = Number(await readFile('/proc/sys/net/core/somaxconn', 'utf8'));
  expect(queue).toBe(Math.min(LISTEN_BACKLOG, cap));
  expect(queue).toBeGreaterThan(511);
});
