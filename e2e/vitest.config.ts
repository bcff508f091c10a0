import { defineConfig } from 'vitest/config';

// Browser tests: one real Chromium, one server process; `npm run test:e2e` builds the demo first.
export default defineConfig({
  root: new URL('..', import.meta.url).pathname,
  test: {
    include: ['e2e/**/*.e2e.test.ts'],
    // The same PostgreSQL the contract tests use (TEST_ADMIN_DATABASE_URL, 127.0.0.1:5432, or a throwaway one).
    globalSetup: ['tests/support/global-postgres.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    // A shared CI machine can take seconds to render; vitest's default poll gives up after one.
    expect: { poll: { timeout: 15_000, interval: 100 } },
    hookTimeout: 60_000,
  },
});
