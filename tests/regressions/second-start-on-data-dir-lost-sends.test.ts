import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { signToken } from '../../server/identity/sign-token.ts';
import { runMain, servingUrl, type MainProcess } from '../support/main-process.ts';
import { tempDataDir } from '../support/temp-dir.ts';

// A second `npm start` on the same ./data/ answered 201 to a send whose message then vanished.
const dataDir = await tempDataDir('parley-second-start-');
const started: MainProcess[] = [];
const start = () => {
  const main = runMain({ NODE_ENV: 'development', PORT: '0', LOG_LEVEL: 'info', DATA_DIR: dataDir, DATABASE_URL: undefined, JWT_SECRET: undefined, JWT_JWKS_URL: undefined });
  started.push(main);
  return main;
};
afterAll(async () => {
  for (const main of started) if (main.child.exitCode === null) main.child.kill('SIGTERM');
  await Promise.all(started.map((m) => m.exited));
  await rm(dataDir, { recursive: true, force: true });
});

async function api(baseUrl: string, path: string, init: { method?: string; body?: unknown } = {}) {
  const secret = (await readFile(join(dataDir, 'dev-jwt-secret'), 'utf8')).trim();
  const token = await signToken({ secret, userId: 'alice' });
  const res = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & Array<Record<string, unknown>> };
}

it('one process per embedded data directory: a second start refuses, naming the holder; a kill -9 leaves no stale lock, and the takeover is logged naming the dead holder', async () => {
  const holder = start();
  const holderUrl = await servingUrl(holder);
  const room = (await api(holderUrl, '/rooms/', { method: 'POST', body: { other_user: 'bob' } })).body;

  const second = start();
  expect(await second.exited).toBe(1);
  const refusal = second.output().trim();
  expect(refusal.split('\n')).toHaveLength(1);
  expect(refusal).toContain(`in use by process ${holder.child.pid}`);
  expect(refusal).toMatch(/DATA_DIR=.*DATABASE_URL=/);

  const sent = await api(holderUrl, `/${room.id}/messages/`, { method: 'POST', body: { chat_room: room.id, sender: 'alice', content: 'kept' } });
  expect(sent.status).toBe(201);

  holder.child.kill('SIGKILL');
  await holder.exited;
  const next = start();
  const nextUrl = await servingUrl(next);
  const takeover = next.output().split('\n').filter((l) => l.includes('taking over its lock'));
  expect(takeover.map((l) => JSON.parse(l) as unknown)).toEqual([expect.objectContaining({ level: 40, stalePid: holder.child.pid, msg: expect.stringContaining(`from process ${holder.child.pid}`) })]);
  const history = await api(nextUrl, `/${room.id}/messages/`);
  expect(history.body.map((m) => m.content)).toEqual(['kept']);
  next.child.kill('SIGTERM');
  expect(await next.exited, next.output()).toBe(0);
});
