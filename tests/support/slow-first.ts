import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that take longest (a packed-SDK install, multi-process and 30 s freeze cases) start first,
 * so the run does not end waiting on one of them. Vitest orders by the last run's durations when it
 * has them; a clean checkout (CI) has none, and then orders by file size, which says little here.
 */
export const SLOW_FILES = [
  'tests/sdk.package.test.ts',
  'tests/fanout.freeze.test.ts',
  'tests/abuse.test.ts',
  'tests/fanout.failover.test.ts',
  'tests/cli.contract.test.ts',
  'tests/fanout.processes.test.ts',
  'tests/embedded.access.test.ts',
  'tests/config.contract.test.ts',
  'tests/workers.test.ts',
  'tests/regressions/second-start-on-data-dir-lost-sends.test.ts',
  'tests/fanout.two-instances.test.ts',
  'tests/ws-sessions.floods.test.ts',
  'tests/fanout.outage.test.ts',
  'tests/presence.two-instances.test.ts',
  'tests/logs.test.ts',
  'tests/lifecycle.test.ts',
];

export default class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rest = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const i = SLOW_FILES.findIndex((f) => spec.moduleId.endsWith(f));
      return i === -1 ? SLOW_FILES.length : i;
    };
    return [...rest].sort((a, b) => rank(a) - rank(b));
  }
}
