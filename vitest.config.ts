import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import SlowFirst from './tests/support/slow-first.ts';

// `npm run test:quick`: one instance's contract surfaces. Left out: the multi-process, packed-SDK
// and long-running files, the suites of a second instance or a server of their own (Redis, NATS,
// S3, PgBouncer, an embedded PostgreSQL), and those that wait out real delays (push and webhook retries, rate windows).
const quick = process.env.npm_lifecycle_event === 'test:quick';
/**
 * Files that run servers of their own (Redis, Redis Cluster, NATS, a PostgreSQL primary and standby) and fail over: each gets a fresh
 * process. Run in a process that had run other files, the Redis Cluster cases stalled past their
 * timeout in full runs (they pass alone); the cause is not found. A file that mocks a Node module
 * under the server's code runs alone too: in a shared process the server may be loaded, unmocked.
 */
const OWN_PROCESS = ['tests/attachments.no-hard-links.test.ts', 'tests/fanout.*.test.ts', 'tests/read-replicas.test.ts', 'tests/presence.fanout.test.ts', 'tests/abuse.test.ts', 'tests/config.contract.test.ts', 'tests/rate-limits.test.ts'];
const NOT_QUICK = [
  // A second instance or servers of their own.
  '**/*.two-instances.test.ts', '**/embedded.smoke.test.ts', '**/fanout.*.test.ts', '**/presence.fanout.test.ts', '**/pgbouncer.test.ts', '**/rate-limits.test.ts', '**/attachments.s3.test.ts',
  // Real delays: push and webhook retries, restarts.
  '**/push.test.ts', '**/push.restart.test.ts', '**/webhooks.test.ts',
  // Long: the packed SDK and the type tests' compile, processes started and stopped, the abuse loads.
  '**/sdk.package.test.ts', '**/sdk.type-tests.test.ts', '**/abuse.test.ts', '**/cli.contract.test.ts', '**/embedded.access.test.ts', '**/config.contract.test.ts',
  '**/workers.test.ts', '**/regressions/second-start-on-data-dir-lost-sends.test.ts', '**/ws-sessions.floods.test.ts', '**/logs.test.ts', '**/lifecycle.test.ts',
];

// The suite starts a hundred server processes (instances, npm start, workers): with Node's compile
// cache each after the first skips compiling (and stripping the types of) the server's modules,
// about a fifth of a start's CPU. The workers inherit it, and so does every process they start.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'parley-test-compile-cache');

export default defineConfig({
  test: {
    sequence: { sequencer: SlowFirst },
    // TEST_ADMIN_DATABASE_URL, else PostgreSQL on 127.0.0.1:5432, else a throwaway server from npm.
    globalSetup: ['tests/support/global-postgres.ts'],
    setupFiles: ['tests/support/busy-machine.ts'],
    // Each file gets its own database and server, so files run in parallel safely.
    pool: 'forks',
    fileParallelism: true,
    // Most of a test's time is spent waiting on PostgreSQL, Redis, sockets and child processes, so
    // more files than cores run at once (vitest's default is one fewer than the cores: a single
    // file at a time on two). On two cores three took the whole suite as long as four did, with a
    // tenth less CPU (each worker imports the server once) and less contention for a busy machine.
    maxWorkers: Math.max(3, availableParallelism()),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'shared-process',
          include: ['tests/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...OWN_PROCESS, ...(quick ? NOT_QUICK : [])],
          // A worker runs file after file in one process: each file re-importing the server,
          // Fastify, MikroORM and tRPC was over a quarter of the run. Files share no state but the
          // module cache: each starts its own apps, databases and servers and closes them.
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'own-process',
          include: quick ? [] : OWN_PROCESS,
          isolate: true,
        },
      },
    ],
  },
});
