import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Each file gets its own database and server, so files run in parallel safely.
    pool: 'forks',
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
