import type { Cluster } from 'ioredis';

/** How long a start waits for its Redis Cluster before it fails. */
export const CLUSTER_START_TIMEOUT_MS = 30_000;

/**
 * Connects `cluster` and resolves once it is ready; rejects with the last failure when it is not
 * ready within `timeoutMs`, and stops its reconnecting then. Not `Cluster#connect()`'s promise:
 * when the first attempt's ready check fails (the cluster still failing over, or CLUSTER INFO
 * slower than a command deadline on a busy machine), ioredis reconnects by itself and the client
 * does become ready, but that promise never settles, and an instance awaiting it hung at start
 * for ever without a line in its log. And a first attempt that fails outright (every node's slot
 * read timed out on a busy machine) is retried the same way: a start should not fail for it.
 */
export function connectCluster(cluster: Cluster, timeoutMs = CLUSTER_START_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    let lastError: unknown;
    const failed = (err: unknown) => (lastError = err);
    const done = () => {
      clearTimeout(timer);
      cluster.off('ready', ready);
      cluster.off('error', failed);
    };
    const ready = () => {
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      cluster.disconnect();
      reject(new Error(`the Redis Cluster was not ready within ${timeoutMs} ms${lastError ? `: ${String((lastError as Error).message ?? lastError)}` : ''}`, { cause: lastError }));
    }, timeoutMs);
    cluster.once('ready', ready);
    cluster.on('error', failed);
    cluster.connect().catch(failed);
  });
}
