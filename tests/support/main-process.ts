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
 * (`undefined` unsets a variable), in `cwd` (where a `.env` would be read; this process's by default);
 * its metrics listener on a free port unless `env` says otherwise, so servers run side by side.
 */
export function runMain(env: Record<string, string | undefined>, { cwd }: { cwd?: string } = {}): MainProcess {
  const main = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--max-semi-space-size=8', main], { cwd, env: { ...process.env, METRICS_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, output: () => output, exited };
}

/** Resolves with the base URL and the metrics URL (if on) once the process logs that it serves; rejects if it exits first. */
export function servingUrls({ child, output }: MainProcess): Promise<{ url: string; metricsUrl: string | undefined }> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = /Parley serving on (http:\/\/[^\s"]+)[^\n]*; metrics (?:on (http:\/\/[^\s"]+)|off)/.exec(output());
      if (match) resolve({ url: match[1]!, metricsUrl: match[2] });
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${output()}`)));
  });
}

/** Resolves with the base URL once the process logs that it serves; rejects if it exits first. */
export const servingUrl = async (main: MainProcess) => (await servingUrls(main)).url;
