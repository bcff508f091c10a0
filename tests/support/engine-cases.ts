import { afterAll, beforeAll } from 'vitest';
import { hasRedisServer, startTestRedis, type TestRedis } from './redis-server.ts';

export interface EngineCase {
  engine: 'postgres' | 'redis';
  /** The environment that selects the engine (valid once the file's hooks ran). */
  env(): Record<string, string>;
  /** No redis-server to run this case on. */
  skip: boolean;
}

/**
 * The two cross-instance engines as test cases, for `describe.each` or `it.for`. Call at the top
 * of a test file: the Redis case runs on a server of the file's own, started and stopped by its hooks.
 */
export function engineCases(): EngineCase[] {
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    if (hasRedisServer) redis = await startTestRedis();
    else console.warn('SKIPPED the Redis engine cases: no redis-server binary on PATH (CI has one)');
  });
  afterAll(() => redis?.stop());
  return [
    { engine: 'postgres', env: () => ({ FANOUT: 'postgres' }), skip: false },
    { engine: 'redis', env: () => ({ REDIS_URL: redis!.url }), skip: !hasRedisServer },
  ];
}
