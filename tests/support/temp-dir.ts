import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A new directory under the OS temp dir to use as DATA_DIR: mode 0700, as a checkout in root's
 * home is, so run as root the embedded server (user postgres) cannot enter it by its path.
 */
export async function tempDataDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
