import { vi } from 'vitest';

/**
 * `vi.waitFor` gives up after one second by default. The tests wait for events (a reconnect, a
 * delivery, a job), not for time, and on a machine busy with other work such an event can take
 * longer than that without anything being wrong: a wait given no timeout gets ten seconds.
 */
const DEFAULT_WAIT_MS = 10_000;
const patched = Symbol.for('parley.waitFor.default');
const target = vi as typeof vi & { [patched]?: true };
if (!target[patched]) {
  const waitFor = vi.waitFor.bind(vi);
  target.waitFor = ((callback, options) => waitFor(callback, typeof options === 'number' ? options : { timeout: DEFAULT_WAIT_MS, ...options })) as typeof vi.waitFor;
  target[patched] = true;
}
