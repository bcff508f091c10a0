/**
 * `--baseline=<ref>`: this checkout's server against one built from another commit, live delivery
 * at 2,000 msg/s in alternating rounds (bench/build-ab.ts), each on a fresh server and database of
 * its own so neither carries the other's or the earlier sections' state.
 */
import { prepareTree, thisCommit } from '../baseline-tree.ts';
import { formatRun, runBuilds, summarizeRuns } from '../build-ab.ts';
import type { BenchContext, Row } from '../report.ts';

export async function runLiveBaseline(ctx: BenchContext, adminUrl: string, ref: string): Promise<Row[]> {
  const tree = prepareTree(ref);
  const mine = thisCommit();
  const labels = [mine, tree.commit];
  // The harness the live tail was first compared on: 50 pairs, 6 s a round. A p99 of one round
  // swings twofold here, so the medians need ten rounds of each build: four of 3 s ranked the two
  // builds one way in one full run and the other way in the next.
  const rounds = ctx.quick ? 1 : 10;
  const ms = ctx.quick ? 1_000 : 6_000;
  const pairs = 50;
  const runs = await runBuilds({
    adminUrl,
    builds: [{ label: mine }, { label: tree.commit, dir: tree.dir }],
    rates: [2000],
    variants: ['legacy-ws', 'trpc'],
    rounds,
    ms,
    pairs,
    onRun: (r) => console.error(`bench: ${formatRun(r)}`),
    onFailure: (what) => ctx.problems.push(`live delivery against ${tree.commit}: ${what}`),
  });
  return summarizeRuns(runs, labels).map((s) => {
    const [a, b] = s.builds;
    const side = (x: typeof a) =>
      `${x!.label} p99 ${x!.p99.toFixed(2)} ms (rounds ${x!.p99s.map((v) => v.toFixed(1)).join(', ')}${x!.statementP99 !== undefined ? `; statement p99 ≤ ${x!.statementP99} ms` : ''}; event-loop delay p99 ${x!.loopP99?.toFixed(1)} ms; GC ${x!.gcMs?.toFixed(0)} ms; server CPU ${x!.cpuUsPerMessage?.toFixed(0)} µs per message)`;
    return {
      scenario: 'live delivery, alternating builds',
      surface: s.variant,
      params: `${s.rate} msg/s, ${pairs} pairs, ${rounds} rounds of ${ms / 1000} s, ${mine} against ${tree.commit}`,
      result: `${side(a)}; ${side(b)}`,
      baseline: `${b!.label} p99 ${b!.p99.toFixed(2)} ms`,
      ratio: s.ratios[0]!,
      data: s as unknown as Record<string, unknown>,
    };
  });
}
