/**
 * One log line in pino's JSON shape, for the moments before the app's logger exists (start-up
 * warnings, the data directory's lock) and for the cluster primary, which has none.
 */
export function logLine(level: 'info' | 'warn', msg: string, fields: Record<string, unknown> = {}) {
  process.stdout.write(`${JSON.stringify({ level: level === 'warn' ? 40 : 30, time: Date.now(), pid: process.pid, ...fields, msg })}\n`);
}
