import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface MainProcess {
  child: ChildProcess;
  /** Everything the process wrote so far, stdout and stderr. */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/**
 * Runs `server/main.ts` as `npm start` does, with `env` added to this process's environment
 * (`undefined` unsets a variable), in `cwd` (where a `.env` would be read; this process's by default).
 */
export function runMain(env: Record<string, string | undefined>, { cwd }: { cwd?: string } = {}): MainProcess {
  const main = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--max-semi-space-size=8', main], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, output: () => output, exited };
}

/** Resolves with the base URL once the process logs that it serves; rejects if it exits first. */
export function servingUrl({ child, output }: MainProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = /Parley serving on (http:\/\/[^\s"]+)/.exec(output());
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${output()}`)));
  });
}
