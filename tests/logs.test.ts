import { expect, it } from 'vitest';
import { startServerProcess } from './support/server-process.ts';

/** The JSON log lines of a stopped server (its output is complete once it has exited). */
const jsonLines = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string; reqId?: string; req?: { url: string }; res?: { statusCode: number } });

it('at info, the start line names the demo and the token command, and requests are not logged', async () => {
  const server = await startServerProcess('logs_info');
  try {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/nothing-here`)).status).toBe(404);
  } finally {
    await server.close();
  }
  const lines = jsonLines(server.output());
  expect(lines.filter((l) => l.msg.startsWith('Parley serving on'))).toEqual([
    expect.objectContaining({ level: 30, msg: `Parley serving on ${server.url} (PostgreSQL at DATABASE_URL). Demo: ${server.url}/demo/; a token for a user: npm run token -- <userId>; metrics on ${server.metricsUrl}` }),
  ]);
  expect(lines.filter((l) => l.req !== undefined || /request/.test(l.msg))).toEqual([]);
});

it('at debug, each request is logged as it comes in (URL token redacted) and when answered (status)', async () => {
  const server = await startServerProcess('logs_debug', { LOG_LEVEL: 'debug' });
  try {
    expect((await fetch(`${server.url}/healthz?token=secret.jwt.value`)).status).toBe(200);
  } finally {
    await server.close();
  }
  const lines = jsonLines(server.output());
  const incoming = lines.find((l) => l.req?.url.startsWith('/healthz'));
  expect(incoming).toEqual(expect.objectContaining({ level: 20, msg: 'incoming request', req: expect.objectContaining({ method: 'GET', url: '/healthz?token=[redacted]' }) }));
  expect(lines.filter((l) => l.reqId === incoming!.reqId && l !== incoming)).toEqual([expect.objectContaining({ level: 20, msg: 'request completed', res: { statusCode: 200 } })]);
});

it('LOG_FORMAT=pretty writes lines for a person, not JSON', async () => {
  const server = await startServerProcess('logs_pretty', { LOG_FORMAT: 'pretty' });
  await server.close();
  const banner = server.output().split('\n').find((l) => l.includes('Parley serving on'))!;
  expect(banner).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Parley serving on http:\/\/\S+ \(PostgreSQL at DATABASE_URL\)\. Demo: /);
});
