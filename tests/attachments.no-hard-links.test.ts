import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { createLocalStorage } from '../server/infra/storage/local-storage.ts';

// The local store on a filesystem without hard links (FAT, some network and FUSE mounts), where
// `link` fails with EPERM. Mocking a Node module for the server's code needs a process of its own
// (vitest.config.ts): in a shared one the store may have been loaded already, unmocked.
vi.mock('node:fs', async (original) => ({
  ...(await original<typeof import('node:fs')>()),
  linkSync: vi.fn(() => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  }),
}));

const root = mkdtempSync(join(tmpdir(), 'parley-no-links-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('without hard links, a move still never replaces the file a first move put there', async () => {
  const storage = createLocalStorage({ root, secret: randomBytes(32) });
  const id = randomUUID();
  const move = () => storage.moveAndPeek(`uploads/${id}`, `files/${id}`, 16);
  expect(await move()).toBeUndefined();
  await storage.write(`uploads/${id}`, Buffer.from('checked'), 'text/plain');
  expect(await move()).toEqual({ size: 7, head: Buffer.from('checked') });
  await storage.write(`uploads/${id}`, Buffer.from('re-uploaded'), 'text/plain');
  expect(await move()).toEqual({ size: 7, head: Buffer.from('checked') });
  expect(await storage.size(`uploads/${id}`)).toBeUndefined();
  expect((await storage.read(`files/${id}`)).toString()).toBe('checked');
});
