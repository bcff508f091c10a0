import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new directory under the OS temp dir that the embedded server can use as DATA_DIR. */
export async function tempDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Run as root, the embedded server runs as user postgres, which must be able to enter it.
  await chmod(dir, 0o755);
  return dir;
}
