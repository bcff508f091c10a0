/**
 * The server's send-statement histogram (`parley_send_statement_seconds`), read from /metrics
 * before and after a run: the difference gives the run's statement percentiles, to the precision
 * of the histogram's buckets (each figure is the upper bound of the bucket holding it).
 */
export type Buckets = Map<number, number>;

export async function readStatementBuckets(baseUrl: string): Promise<Buckets> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const buckets: Buckets = new Map();
  for (const m of text.matchAll(/^parley_send_statement_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return buckets;
}

/** The upper bound, in ms, of the bucket holding quantile `q` of what was observed between two reads. */
export function statementQuantileMs(before: Buckets, after: Buckets, q: number): number | undefined {
  const les = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (!total) return undefined;
  const le = les.find((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0) >= q * total);
  return le === undefined ? undefined : le * 1000;
}
