import cluster, { type Worker } from 'node:cluster';
import { startBanner } from './cli/start-banner.ts';
import type { Config } from './infra/config/config.ts';
import { clusterScrape } from './infra/metrics/cluster-metrics.ts';
import { listenForScrapes } from './transport/http/metrics-listener.ts';
import { logLine } from './infra/log-line.ts';

/**
 * `WORKERS=N`: N full instances on one port through node:cluster. The primary accepts connections
 * and hands them out in turn (round-robin, Linux's default), so a burst of long-lived sockets is
 * not pinned to one process by a hash as with `reusePort`. Live events between workers go through
 * the configured engine, exactly as between machines.
 */
export async function runPrimary(config: Config): Promise<{ port: number; metricsUrl: string | undefined }> {
  const line = (msg: string) => logLine(config.logFormat, 'info', msg);
  let stopping = false;
  let started = false;
  // The primary serves the scrape, with every worker's figures: a worker would answer for itself alone.
  const scrapes = config.metrics;
  const metrics =
    scrapes.port === 'off'
      ? undefined
      : await listenForScrapes({ ...scrapes, port: scrapes.port, scrape: clusterScrape(), onError: (err) => line(`metrics scrape failed: ${err instanceof Error ? err.message : String(err)}`) });
  const fork = () =>
    new Promise<number>((resolve) => {
      const worker = cluster.fork({ METRICS_PORT: 'off' });
      worker.once('listening', (address) => resolve(address.port));
      worker.once('exit', (code, signal) => {
        if (stopping) return;
        // A worker that cannot start (bad config, database down) would fail the same way again.
        if (!started) {
          line(`worker ${worker.process.pid} exited (${signal ?? code}) while starting; stopping`);
          for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
          process.exit(1);
        }
        line(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
        setTimeout(() => void fork(), 1_000).unref();
      });
    });

  // The first worker migrates the schema alone; the others start once it serves.
  const port = await fork();
  await Promise.all(Array.from({ length: config.workers - 1 }, fork));
  started = true;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      line(`${signal}: stopping ${workers.length} workers`);
      const exits = workers.map((w) => new Promise<number>((resolve) => w.once('exit', (code) => resolve(code ?? 1))));
      for (const w of workers) w.process.kill('SIGTERM');
      void Promise.all(exits).then((codes) => process.exit(codes.every((c) => c === 0) ? 0 : 1));
    });
  }
  // Only now: a supervisor may stop the server as soon as it reads that it serves.
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  line(startBanner(config, `http://${host}:${port}`, metrics ? `on ${metrics.url}` : 'off'));
  return { port, metricsUrl: metrics?.url };
}
