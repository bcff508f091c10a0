import { once } from 'node:events';
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { EmbeddedDatabaseError } from './embedded-errors.ts';
import type { RunAs } from './postgres-binaries.ts';

export interface ClusterSpawn {
  /** The cluster's data directory. */
  dir: string;
  runAs: RunAs;
  stdio: StdioOptions;
  detached?: boolean;
}

/**
 * Spawns one of PostgreSQL's programs on the cluster in `dir`; `args` receives the data
 * directory to pass as `-D`. As root, the program runs as user postgres, which cannot reach
 * `dir` by its path when a directory above is closed to it (root's 0700 home, a `mktemp -d`
 * folder). So the child enters `dir` while still root (Node changes directory before it drops
 * to `uid`/`gid`) and is given `/proc/self/cwd`, a path that needs no permission on the
 * directories above. PostgreSQL resolves everything else relative to its working directory.
 */
export function spawnOnCluster(file: string, args: (dataDir: string) => string[], { dir, runAs, stdio, detached }: ClusterSpawn): ChildProcess {
  const viaCwd = runAs.uid !== undefined && process.platform === 'linux';
  return spawn(file, args(viaCwd ? '/proc/self/cwd' : dir), { ...runAs, cwd: dir, stdio, detached });
}

/** Resolves with a child's exit code; a program that could not be started fails naming the file and the user. */
export function exitCode(child: ChildProcess, file: string, runAs: RunAs): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => reject(cannotRun(file, runAs, err)));
  });
}

export function cannotRun(file: string, runAs: RunAs, err: NodeJS.ErrnoException): EmbeddedDatabaseError {
  const as = runAs.uid === undefined ? '' : ` as user postgres (uid ${runAs.uid})`;
  if (err.code === 'EACCES') {
    return new EmbeddedDatabaseError('ACCESS_DENIED', `Permission denied running ${file}${as}: that user needs search permission on every directory above it.`);
  }
  return new EmbeddedDatabaseError('POSTGRES_FAILED', `Could not run ${file}${as}: ${err.message}`);
}

/** Keeps the last lines of a child's stderr for error messages; reading it also keeps the pipe from filling up. */
export function collectStderr(child: ChildProcess) {
  const lines: string[] = [];
  const state = {
    onLine: undefined as ((line: string) => void) | undefined,
    text: () => lines.join(' | '),
  };
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line.trim());
      if (lines.length > 12) lines.shift();
      state.onLine?.(line);
    }
  });
  return state;
}

/**
 * Resolves once a server started on a cluster writes `marker` to stderr; rejects, naming `what`, if
 * it exits first or cannot run. Returns its collected stderr for later errors.
 */
export async function untilReady(child: ChildProcess, file: string, runAs: RunAs, marker: string, what: string) {
  const output = collectStderr(child);
  await new Promise<void>((resolve, reject) => {
    output.onLine = (line) => line.includes(marker) && resolve();
    child.once('exit', (code) => reject(new EmbeddedDatabaseError('POSTGRES_FAILED', `${what} exited (${code}) while starting: ${output.text()}`)));
    child.once('error', (err) => reject(cannotRun(file, runAs, err)));
  });
  output.onLine = undefined;
  return output;
}

/** A started server owned by this process: `stop()` ends it, and so does this process's exit. */
export function ownedServer(child: ChildProcess, url: string) {
  // If Node exits without stop() (an uncaught error, process.exit), the server must not outlive it.
  const killOnExit = () => child.kill('SIGINT');
  process.once('exit', killOnExit);
  const exited = once(child, 'exit');
  return {
    url,
    pid: child.pid!,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
    },
  };
}
