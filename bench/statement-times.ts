/**
 * The server's send-statement histogram (`parley_send_statement_seconds`), read from its /metrics
 * before and after a run: the difference gives the run's statement percentiles, to the precision
 * of the histogram's buckets (each figure is the upper bound of the bucket holding it).
 */
type Buckets = Map<number, number>;

async function readBuckets(metricsUrl: string): Promise<Buckets> {
  const text = await (await fetch(metricsUrl)).text();
  const buckets: Buckets = new Map();
  for (const m of text.matchAll(/^parley_send_statement_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return buckets;
}

/** The upper bound, in ms, of the bucket holding quantile `q` of what was observed between two reads. */
function quantileMs(before: Buckets, after: Buckets, q: number): number | undefined {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (!total) return undefined;
  const le = [...after.keys()].sort((a, b) => a - b).find((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total);
  return le === undefined ? undefined : le * 1000;
}

export interface StatementTimes {
  p50?: number;
  p99?: number;
}

/** Starts a window on the server's send statements; `end()` gives the p50/p99 of those run since. */
export async function statementWindow(metricsUrl: string): Promise<{ end(): Promise<StatementTimes> }> {
  const before = await readBuckets(metricsUrl);
  return {
    async end() {
      const after = await readBuckets(metricsUrl);
      return { p50: quantileMs(before, after, 0.5), p99: quantileMs(before, after, 0.99) };
    },
  };
}

export const formatStatementTimes = (t: StatementTimes) => `send statement p50 ≤ ${t.p50} / p99 ≤ ${t.p99} ms`;
