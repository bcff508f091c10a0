/**
 * Preloaded into a server process (`holdAfterServing()` below): once the process has written the
 * line saying it serves, it stays busy for a moment before its next statement. A signal sent on
 * reading that line then lands before the rest of the start has run, every time, instead of once
 * in many runs on a loaded machine.
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

const HOLD_MS = 500;

/** NODE_OPTIONS for a child process that holds after saying it serves (kept with any already set). */
export const holdAfterServing = () => [process.env.NODE_OPTIONS, `--import=${pathToFileURL(import.meta.filename).href}`].filter(Boolean).join(' ');

function hold(data: unknown) {
  if (!String(data).includes('Parley serving on')) return;
  const until = Date.now() + HOLD_MS;
  while (Date.now() < until);
}

// Only in the server process it is preloaded into, not in the test that imports the helper.
if (process.argv[1]?.endsWith('main.ts')) {
  // pino writes JSON lines with fs.writeSync; the cluster primary with process.stdout.write.
  const writeSync = fs.writeSync;
  fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
    const written = (writeSync as (...args: unknown[]) => number)(fd, data, ...rest);
    if (fd === 1) hold(data);
    return written;
  }) as typeof fs.writeSync;
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const result = (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    hold(chunk);
    return result;
  }) as typeof process.stdout.write;
}
