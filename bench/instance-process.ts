/**
 * Further Parley servers on the bench database, beside the main one: a second instance, another
 * fan-out engine, or `WORKERS=N` through `cluster-process.ts`.
 */
import { join } from 'node:path';
import { BENCH_DIR, nextMessage, spawnNode } from './proc.ts';
import type { BenchContext } from './report.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';

export interface Instance {
  url: string;
  /** Where its `/metrics` is scraped (METRICS_PORT=0: a free port of its choosing). */
  metricsUrl: string;
  pid: number;
  /** Under `WORKERS`, the workers' pids. */
  workers?: number[];
  stop(): Promise<void>;
}

export async function startInstance(ctx: BenchContext, env: Record<string, string>, script = 'server-process.ts'): Promise<Instance> {
  // PUSH off unless asked: any instance with push on claims push jobs from the shared queue.
  const child = spawnNode(join(BENCH_DIR, script), {
    nodeArgs: ['--max-semi-space-size=8'],
    env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: ctx.dbUrl, DB_POOL_MAX: String(ctx.poolMax), JWT_SECRET: ctx.secret, PUSH: 'off', SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0', ...env },
  });
  const ready = await nextMessage<{ url: string; metricsUrl: string; pid: number; workers?: number[] }>(child, (m) => m.type === 'ready', 60_000, script);
  return {
    ...ready,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    },
  };
}
