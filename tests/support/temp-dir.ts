import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A new directory under the OS temp dir to use as DATA_DIR: mode 0700, as a checkout in root's
 * home is, so run as root the embedded server (user postgres) cannot enter it by its path.
 */
export async function tempDataDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A `tempDataDir` removed with its contents when disposed: `await using dir = await tempDir(...)`. */
export async function tempDir(prefix: string) {
  const path = await tempDataDir(prefix);
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}
