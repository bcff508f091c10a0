import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first, from a quiet run's timings (seconds beside each).
 * Started in this order, the run packs its workers instead of ending on one long file started late;
 * the short files not listed fill the gaps. Vitest orders by the last run's durations when it has
 * them, but a clean checkout (CI) has none, and then it orders by file size, which says little here.
 */
const LONGEST_FIRST = [
  'tests/sdk.package.test.ts', // 47
  'tests/fanout.freeze.test.ts', // 42
  'tests/abuse.test.ts', // 28
  'tests/push.test.ts', // 27
  'tests/fanout.two-instances.test.ts', // 19
  'tests/fanout.failover.test.ts', // 18
  'tests/fanout.processes.test.ts', // 17
  'tests/fanout.outage.test.ts', // 16
  'tests/presence.fanout.test.ts', // 16
  'tests/webhooks.test.ts', // 15
  'tests/embedded.access.test.ts', // 15
  'tests/cli.contract.test.ts', // 14
  'tests/logs.test.ts', // 14
  'tests/regressions/second-start-on-data-dir-lost-sends.test.ts', // 11
  'tests/rate-limits.test.ts', // 11
  'tests/fanout.cluster-start.test.ts', // 11
  'tests/workers.test.ts', // 10
  'tests/config.contract.test.ts', // 10
  'tests/ws-sessions.floods.test.ts', // 10
  'tests/push.restart.test.ts', // 9
  'tests/sdk.type-tests.test.ts', // 8
  'tests/lifecycle.test.ts', // 7
  'tests/attachments.local.test.ts', // 6 (7 in a quick run)
  'tests/metrics.test.ts', // 6
  'tests/presence.two-instances.test.ts', // 6
  'tests/legacy-ws.contract.test.ts', // 6
  'tests/admin.contract.test.ts', // 6
  'tests/fuzz.contract.test.ts', // 5
  'tests/requests.contract.test.ts', // 5
  'tests/chat-features.contract.test.ts', // 5
  'tests/trpc.contract.test.ts', // 4
  'tests/attachments.s3.test.ts', // 4
  'tests/requests.two-instances.test.ts', // 4
  'tests/moderation.contract.test.ts', // 4
];

export default class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rest = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((f) => spec.moduleId.endsWith(f));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    return [...rest].sort((a, b) => rank(a) - rank(b));
  }
}
