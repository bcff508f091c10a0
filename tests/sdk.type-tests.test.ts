import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const project = new URL('tsconfig.type-tests.json', import.meta.url).pathname;
// What tsc learnt of the program last time: a run after one that changed nothing rechecks in a
// third of the time. npm ci empties node_modules, so a clean checkout starts cold.
const buildInfo = new URL('../node_modules/.cache/parley/type-tests.tsbuildinfo', import.meta.url).pathname;

// The SDK's type-level tests (`*.test-d.ts`) are compiled here, as a file like any other, so they
// run beside the rest of the suite: vitest's own typecheck mode runs them only after every other file.
it('the SDK’s type-level tests compile: every expectation about its types holds', async () => {
  const result = await run(process.execPath, [tsc, '--noEmit', '--incremental', '--tsBuildInfoFile', buildInfo, '--pretty', 'false', '-p', project], { maxBuffer: 16 * 1024 * 1024 }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (err: { code?: number; stdout?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? String(err) }),
  );
  expect(result.stdout).toBe('');
  expect(result.code).toBe(0);
}, 120_000);
