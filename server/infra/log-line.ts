import { createRequire } from 'node:module';

export type LogFormat = 'json' | 'pretty';

/** pino-pretty's options: the app's logger and the lines below read alike. */
export const PRETTY_OPTIONS = { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' };

let pretty: ((entry: object) => string) | undefined;

/**
 * One log line in pino's shape, for the moments before the app's logger exists (start-up
 * warnings, the data directory's lock) and for the cluster primary, which has none: JSON, or
 * pino-pretty's line when the log is for a person (LOG_FORMAT).
 */
export function logLine(format: LogFormat, level: 'info' | 'warn', msg: string, fields: Record<string, unknown> = {}) {
  const entry = { level: level === 'warn' ? 40 : 30, time: Date.now(), pid: process.pid, ...fields, msg };
  if (format === 'json') return void process.stdout.write(`${JSON.stringify(entry)}\n`);
  // Required on first use: a process logging JSON never loads it.
  pretty ??= (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')).prettyFactory(PRETTY_OPTIONS);
  process.stdout.write(pretty(entry));
}
