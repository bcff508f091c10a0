import { describe, expect, test } from 'vitest';
import { createChatClient, FIELD_MESSAGES } from '../client-sdk/index.ts';
import { DemoConfig } from '../contracts/demo-config.ts';
import { tempDir } from './support/temp-dir.ts';
import { appTest, startTestApp, type TestApp } from './support/test-app.ts';

const it = appTest(import.meta.filename);

/** An app of the file's in development mode, its generated secret kept in a data directory of its own. */
const devIt = test.extend<{ $file: { t: TestApp } }>({
  t: [
    async ({}, use) => {
      await using dataDir = await tempDir('parley-dev-');
      await using t = await startTestApp(`${import.meta.filename}-dev`, { NODE_ENV: 'development', JWT_SECRET: undefined, DATA_DIR: dataDir.path, MESSAGE_EDIT_WINDOW_SECONDS: '120' });
      await use(t);
    },
    { scope: 'file' },
  ],
});

describe('with a configured JWT_SECRET', () => {
  it('serves the built demo at /demo/, and nothing outside it', async ({ t }) => {
    expect((await fetch(`${t.url}/demo`)).headers.get('content-type')).toContain('text/html');
    const page = await fetch(`${t.url}/demo/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const script = /src="(\/demo\/assets\/[^"]+\.js)"/.exec(await page.text())![1]!;
    const asset = await fetch(`${t.url}${script}`);
    expect([asset.status, asset.headers.get('cache-control')]).toEqual([200, 'public, max-age=31536000, immutable']);
    // The service worker: a script at the demo's root, so its default scope is /demo/; never cached, so updates take.
    const worker = await fetch(`${t.url}/demo/sw.js`);
    expect([worker.status, worker.headers.get('content-type'), worker.headers.get('cache-control')]).toEqual([200, 'text/javascript; charset=utf-8', 'no-cache']);
    for (const path of ['/demo/..%2Fpackage.json', '/demo/%2e%2e/%2e%2e/package.json', '/demo/assets/nope.js']) {
      expect((await fetch(`${t.url}${path}`)).status, path).toBe(404);
    }
  });

  it('answers / with a 404 outside development: the root is no page of a deployed service', async ({ t }) => {
    expect((await fetch(`${t.url}/`, { redirect: 'manual' })).status).toBe(404);
  });

  it('has no dev token endpoint: the page must ask for a token', async ({ t }) => {
    const res = await fetch(`${t.url}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"alice"}' });
    expect(res.status).toBe(404);
  });
});

describe('on the generated development secret', () => {
  devIt('sends / to the demo in development, where the first thing a newcomer opens is the root', async ({ t }) => {
    const res = await fetch(`${t.url}/`, { redirect: 'manual' });
    expect([res.status, res.headers.get('location')]).toEqual([302, '/demo/']);
  });

  devIt('GET /demo/config tells the page the edit window, so it can hide Edit once a message is past it', async ({ t }) => {
    const res = await fetch(`${t.url}/demo/config`);
    expect(res.status).toBe(200);
    expect(DemoConfig.parse(await res.json())).toEqual({ messageEditWindowSeconds: 120 });
  });

  devIt('POST /demo/token mints a working token for any valid user name, and refuses a bad one with a field error', async ({ t }) => {
    const res = await fetch(`${t.url}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"dev-alice"}' });
    const { token } = (await res.json()) as { token: string };
    const chat = createChatClient({ url: t.url, token });
    const room = await chat.rooms.open.mutate({ otherUserId: 'dev-bob' });
    expect(room.participant1).toBe('dev-alice');
    await chat.close();
    const bad = await fetch(`${t.url}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":""}' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ user: [FIELD_MESSAGES.blank] });
  });

  devIt('POST /demo/token with admin: true mints an admin token (development only), without it a user token the admin API refuses', async ({ t }) => {
    const mint = async (admin?: boolean) =>
      ((await (await fetch(`${t.url}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'dev-mod', admin }) })).json()) as { token: string }).token;
    const mod = createChatClient({ url: t.url, token: await mint(true) });
    expect((await mod.admin.reports.list.query({ status: 'open' })).items).toEqual([]);
    const user = createChatClient({ url: t.url, token: await mint() });
    await expect(user.admin.reports.list.query({ status: 'open' })).rejects.toThrow();
    await Promise.all([mod.close(), user.close()]);
  });
});
