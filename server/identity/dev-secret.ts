import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

/** Where the development secret is kept. */
export const devSecretFile = (dataDir: string) => resolve(dataDir, 'dev-jwt-secret');

/**
 * Development mode only (`config.tokens === 'dev'`): a random HS256 secret kept under the data
 * directory, so tokens from `npm run token` keep working across restarts.
 */
export async function loadOrCreateDevSecret(dataDir: string): Promise<string> {
  const file = devSecretFile(dataDir);
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing.length >= 32) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, secret + '\n', { mode: 0o600 });
  return secret;
}
