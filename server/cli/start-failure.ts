import { userInfo } from 'node:os';
import type { Config } from '../infra/config/config.ts';
import { EmbeddedDatabaseError } from '../infra/db/embedded-errors.ts';

/**
 * One line a person can act on for a failed start, instead of a stack trace: the usual causes
 * are the machine's (a busy port, a database that is not running), not Parley's.
 */
export function startFailureMessage(err: unknown, config: Config | undefined): string {
  const { code, syscall, path, port: failedPort } = (err ?? {}) as { code?: unknown; syscall?: unknown; path?: unknown; port?: unknown };
  const metrics = config?.metrics;
  // The metrics listener starts first; a listen error carries the port it was for.
  if (metrics && metrics.port !== 'off' && metrics.port !== 0 && failedPort === metrics.port) {
    if (code === 'EADDRINUSE') return `METRICS_PORT ${metrics.port} on ${metrics.host} is already in use: stop the process using it, or choose another, e.g. METRICS_PORT=${metrics.port + 1} (or METRICS_PORT=off).`;
    if (code === 'EACCES') return `Not allowed to listen on METRICS_PORT ${metrics.port}: use a port above 1023, e.g. METRICS_PORT=9464.`;
  }
  if (metrics && code === 'EADDRNOTAVAIL' && (err as { address?: unknown }).address === metrics.host && metrics.host !== config.host) {
    return `METRICS_HOST=${metrics.host} is not an address of this machine: use METRICS_HOST=127.0.0.1.`;
  }
  const port = config?.port ?? 3000;
  const host = config?.host ?? '127.0.0.1';
  switch (code) {
    case 'EADDRINUSE':
      return `Port ${port} on ${host} is already in use: stop the process using it, or start on another port, e.g. PORT=${port + 1} npm start.`;
    case 'EACCES':
    case 'EPERM':
      if (syscall === 'listen') return `Not allowed to listen on port ${port}: use a port above 1023, e.g. PORT=3000 npm start.`;
      // Anything else refused is a file or directory (DATA_DIR, a program): name it, and what was tried on it.
      if (typeof path === 'string') return `Permission denied on ${path} (${String(syscall).split(' ')[0]}) for user ${userInfo().username}: give that user access to it, or for DATA_DIR choose a directory it can write.`;
      break;
    case 'EADDRNOTAVAIL':
      return `HOST=${host} is not an address of this machine: use HOST=127.0.0.1, or HOST=0.0.0.0 for every interface.`;
    case 'ECONNREFUSED':
      return 'PostgreSQL at DATABASE_URL refused the connection: start it, or unset DATABASE_URL to use the embedded database.';
  }
  // The embedded database's own failures already say what to do (who holds DATA_DIR, and how to run a second instance).
  if (err instanceof EmbeddedDatabaseError) return err.message;
  const message = err instanceof Error ? err.message : String(err);
  // Configuration errors already name each bad variable, one per line.
  return message.startsWith('Invalid configuration') ? message : `Parley could not start: ${message}`;
}
