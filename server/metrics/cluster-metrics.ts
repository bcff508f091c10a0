import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'parley:cluster-metrics-request';
const REPLY = 'parley:cluster-metrics-reply';

interface Reply {
  type: typeof REPLY;
  id: number;
  text?: string;
  error?: string;
}

/**
 * In the `WORKERS` primary: a worker asked to serve `/metrics` gets every worker's figures,
 * combined by prom-client (counters and histograms summed, gauges by their `aggregator`). A scrape
 * of the shared port reaches whichever worker the primary dealt the connection to, so the answer
 * must not depend on which one that was.
 */
export function serveClusterMetrics() {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, msg: { type?: string; id?: number }) => {
    if (msg?.type !== REQUEST) return;
    const reply = (r: Omit<Reply, 'type' | 'id'>) => worker.isConnected() && worker.send({ type: REPLY, id: msg.id, ...r });
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/** In a worker: offers `registry` to the primary's aggregation; the function returned reads the whole cluster's text. */
export function joinClusterMetrics(registry: Registry, timeoutMs = 10_000): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one is what makes prom-client answer the primary's requests in this worker.
  new AggregatorRegistry();
  let nextId = 0;
  const waiting = new Map<number, (r: Reply) => void>();
  process.on('message', (msg: Reply) => {
    if (msg?.type === REPLY) waiting.get(msg.id)?.(msg);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => settle({ type: REPLY, id, error: 'the primary did not answer' }), timeoutMs);
      const settle = (r: Reply) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (r.text !== undefined) resolve(r.text);
        else reject(new Error(`cluster metrics: ${r.error}`));
      };
      waiting.set(id, settle);
      process.send!({ type: REQUEST, id });
    });
}
