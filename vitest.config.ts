import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import SlowFirst, { SLOW_FILES } from './tests/support/slow-first.ts';

// `npm run test:quick`: everything but the multi-process, packed-SDK and long-running files.
const quick = process.env.npm_lifecycle_event === 'test:quick';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: quick ? ['**/node_modules/**', ...SLOW_FILES] : ['**/node_modules/**'],
    sequence: { sequencer: SlowFirst },
    // TEST_ADMIN_DATABASE_URL, else PostgreSQL on 127.0.0.1:5432, else a throwaway server from npm.
    globalSetup: ['tests/support/global-postgres.ts'],
    // Each file gets its own database and server, so files run in parallel safely.
    pool: 'forks',
    fileParallelism: true,
    // Most of a test's time is spent waiting on PostgreSQL, Redis, sockets and child processes, so
    // more files than cores run at once (vitest's default is one fewer than the cores: a single
    // file at a time on two).
    maxWorkers: Math.max(4, availableParallelism()),
    // The SDK's type tests (`*.test-d.ts`) run under `npm test` too: a type regression fails the run.
    typecheck: { enabled: !quick, include: ['tests/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
