/**
 * `read` at most once per `periodMs`, however often the result is asked for: callers within a
 * period of the last read's start share its result (or its failure). Scrapes run gauges' reads
 * on demand, so without this a scraper's rate became the database's query rate.
 */
export function sharedRead<T>(periodMs: number, read: () => Promise<T>): () => Promise<T> {
  let last: { startedAt: number; result: Promise<T> } | undefined;
  return () => {
    const now = performance.now();
    if (!last || now - last.startedAt >= periodMs) last = { startedAt: now, result: read() };
    return last.result;
  };
}
