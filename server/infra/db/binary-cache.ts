import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, cp, lstat, mkdtemp, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { EmbeddedDatabaseError } from './embedded-errors.ts';
import type { PostgresBinaries, RunAs } from './postgres-binaries.ts';

/**
 * Binaries that `runAs` can run. As root, PostgreSQL runs as user postgres, which cannot run
 * them from a checkout under a directory closed to it (root's 0700 home, a `mktemp -d`
 * folder). They are then copied once (about 60 MB) to `parley-postgres-<hash>` in the OS temp
 * directory: root-owned and writable by root alone, named after the server binary's hash so a
 * new PostgreSQL gets a new copy. Another local user could create that name first; the copy is
 * used only if root owns it, so that costs a refused start (naming the path), never control.
 */
export async function runnableBinaries(bin: PostgresBinaries, runAs: RunAs): Promise<PostgresBinaries> {
  if (runAs.uid === undefined || (await runs(bin.postgres, runAs))) return bin;
  const root = await realpath(dirname(dirname(bin.postgres)));
  const hash = createHash('sha256').update(await readFile(bin.postgres)).digest('hex').slice(0, 16);
  const cache = join(tmpdir(), `parley-postgres-${hash}`);
  if (!(await lstat(cache).catch(() => undefined))) await copyInto(root, cache);
  const stat = await lstat(cache);
  if (!stat.isDirectory() || stat.uid !== process.getuid!() || (stat.mode & 0o022) !== 0) {
    throw new EmbeddedDatabaseError('ACCESS_DENIED', `${cache} (the copy of PostgreSQL's binaries user postgres runs) is not a directory owned and writable by root alone: remove it, or set TMPDIR to another directory.`);
  }
  const inCache = async (file: string) => join(cache, relative(root, await realpath(file)));
  const cached = { initdb: await inCache(bin.initdb), postgres: await inCache(bin.postgres), pg_ctl: await inCache(bin.pg_ctl) };
  // The cache must itself be reachable: TMPDIR could be under a closed directory too.
  const failure = await cannotRunReason(cached.postgres, runAs);
  if (failure) throw new EmbeddedDatabaseError('ACCESS_DENIED', `User postgres (uid ${runAs.uid}) cannot run ${cached.postgres} (${failure}): it needs search permission on every directory above it; set TMPDIR to a directory it can enter.`);
  return cached;
}

/** Copies into a private directory first, renamed into place when complete: a concurrent start finds a whole copy or none. */
async function copyInto(root: string, cache: string) {
  const staging = await mkdtemp(`${cache}.copy-`);
  try {
    await cp(root, staging, { recursive: true, verbatimSymlinks: true });
    for (const entry of await readdir(staging, { recursive: true, withFileTypes: true })) {
      if (entry.isSymbolicLink()) continue;
      const path = join(entry.parentPath, entry.name);
      await chmod(path, (await lstat(path)).mode & 0o755);
    }
    await chmod(staging, 0o755);
    await rename(staging, cache);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    // Another start placed its copy first.
    if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
}

async function runs(file: string, runAs: RunAs): Promise<boolean> {
  return (await cannotRunReason(file, runAs)) === undefined;
}

/** Runs `file --version` as `runAs`: undefined if it ran, else why not (EACCES; a loader exit for a library it cannot open). */
function cannotRunReason(file: string, runAs: RunAs): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(file, ['--version'], { ...runAs, stdio: 'ignore' });
    child.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    child.once('exit', (code, signal) => resolve(code === 0 ? undefined : `exit ${code ?? signal}`));
  });
}
