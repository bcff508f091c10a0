import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { signToken } from '../server/identity/sign-token.ts';
import { upgradeStatus } from './support/legacy-socket.ts';
import { startServerProcess } from './support/server-process.ts';
import { TEST_SECRET } from './support/test-app.ts';

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

it('LOG_FORMAT=pretty writes every line for a person, not JSON, the warnings written before the logger exists too', async () => {
  const server = await startServerProcess('logs_pretty', { LOG_FORMAT: 'pretty', PROT: '1' });
  await server.close();
  const lines = server.output().split('\n');
  expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
  expect(lines.find((l) => l.includes('did you mean PORT'))).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: PROT is not a Parley variable and is ignored: did you mean PORT\?$/);
  const banner = lines.find((l) => l.includes('Parley serving on'))!;
  expect(banner).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Parley serving on http:\/\/\S+ \(PostgreSQL at DATABASE_URL\)\. Demo: /);
});

it('request URLs are logged (at debug) with ?token= redacted, for good and malformed paths and WebSocket upgrades alike', async () => {
  const server = await startServerProcess('logs_redacted', { LOG_LEVEL: 'debug' });
  const token = await signToken({ secret: TEST_SECRET, userId: 'alice', expiresIn: '1h' });
  try {
    expect((await fetch(`${server.url}/rooms/?token=${token}`)).status).toBe(200);
    expect((await fetch(`${server.url}/%E0%A4%A/messages/?token=${token}`)).status).toBe(404);
    expect(await upgradeStatus(server.url, `/ws/chat/alice/bob/?token=${token}`)).toBe(101);
  } finally {
    await server.close();
  }
  expect(server.output()).toContain('token=[redacted]');
  expect(server.output()).not.toContain(token.split('.')[2]!);
});

it('client mistakes (a foreign room’s subscription, an oversized frame) are not logged at error level', async () => {
  const server = await startServerProcess('logs_client_mistakes');
  const token = (userId: string) => signToken({ secret: TEST_SECRET, userId, expiresIn: '1h' });
  const open = async (path: string) => {
    const ws = new WebSocket(server.url.replace(/^http/, 'ws') + path);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return { ws, closed: new Promise<number>((resolve) => ws.on('close', (code) => resolve(code))) };
  };
  try {
    const created = await fetch(`${server.url}/rooms/`, { method: 'POST', headers: { authorization: `Bearer ${await token('alice')}`, 'content-type': 'application/json' }, body: JSON.stringify({ other_user: 'bob' }) });
    const roomId = ((await created.json()) as { id: string }).id;
    const mallory = await open(`/trpc?token=${await token('mallory')}`);
    const answered = new Promise<string>((resolve) => mallory.ws.on('message', (d) => String(d).includes('"error"') && resolve(String(d))));
    mallory.ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId } } }));
    expect(JSON.parse(await answered)).toMatchObject({ id: 1, error: { data: { parleyCode: 'ROOM_NOT_FOUND' } } });
    mallory.ws.close();

    const big = await open(`/ws/chat/alice/bob/?token=${await token('alice')}`);
    big.ws.send('z'.repeat(70_000));
    expect(await big.closed).toBe(1009);
  } finally {
    await server.close();
  }
  const lines = jsonLines(server.output());
  expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  expect(lines.some((l) => JSON.stringify(l).includes('ROOM_NOT_FOUND'))).toBe(true);
});
