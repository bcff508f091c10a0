import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * In the `WORKERS` primary: the whole cluster's Prometheus text, asked of every worker over IPC
 * and combined by prom-client (counters and histograms summed, gauges by their `aggregator`).
 */
export function clusterScrape(): () => Promise<string> {
  const aggregator = new AggregatorRegistry();
  return () => aggregator.clusterMetrics();
}

/** In a worker: answers the primary's requests for `registry`'s figures. */
export function offerToPrimary(registry: Registry) {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one is what makes prom-client answer the primary's requests in this worker.
  new AggregatorRegistry();
}
