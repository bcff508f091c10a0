import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/test-app.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
// The machine's own Node (20 here), not the project's pinned 24: the package must not need type stripping.
const systemNode = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;

let t: TestApp;
let dir: string;
beforeAll(async () => {
  t = await startTestApp(import.meta.filename);
  dir = await mkdtemp(join(tmpdir(), 'parley-sdk-'));
});
afterAll(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('`npm run build` + `npm pack` give a tarball a plain Node script installs and uses: ESM JavaScript, types, tRPC as a peer', async () => {
  await run('npm', ['run', 'build:sdk'], { cwd: root });
  await run('npm', ['pack', '--pack-destination', dir], { cwd: join(root, 'client-sdk') });
  const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', join(dir, tarball!), '@trpc/client@11.25.2', '@trpc/server@11.25.2'], { cwd: dir });
  const files = await readdir(join(dir, 'node_modules/@parley/client/dist'), { recursive: true });
  expect(files.filter((f) => f.endsWith('.js') && !/^(client-sdk|contracts)\//.test(f))).toEqual([]);
  expect(files).toContain('client-sdk/index.d.ts');
  await writeFile(
    join(dir, 'script.mjs'),
    `import { createChatClient, parleyCodeOf } from '@parley/client';
     import { TRPCClientError } from '@trpc/client';
     const chat = createChatClient({ url: process.argv[2], token: process.argv[3] });
     const room = await chat.rooms.open.mutate({ otherUserId: 'pkg-b' });
     const sent = await chat.outbox.send(room.id, 'from a packed SDK');
     const err = await chat.messages.list.query({ roomId: '00000000-0000-4000-8000-000000000000' }).catch((e) => e);
     console.log(JSON.stringify({ content: sent.content, seq: sent.seq, code: parleyCodeOf(err), sameClass: err instanceof TRPCClientError }));
     await chat.close();`,
  );
  const { stdout } = await run(systemNode, ['script.mjs', t.url, await t.token('pkg-a')], { cwd: dir });
  expect(JSON.parse(stdout)).toEqual({ content: 'from a packed SDK', seq: 1, code: 'ROOM_NOT_FOUND', sameClass: true });
}, 180_000);
