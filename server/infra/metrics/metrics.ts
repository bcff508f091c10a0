import cluster from 'node:cluster';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { offerToPrimary } from './cluster-metrics.ts';
import { sharedRead } from './shared-read.ts';

/** Where a call or a socket came from. */
export type Surface = 'trpc' | 'rest' | 'legacy-ws';

export interface MetricSources {
  /** The ORM's pool: connections in use, idle and waited for. */
  pool(): Promise<{ totalCount: number; idleCount: number; waitingCount: number }>;
  engine(): { name: string; up: boolean };
  /** `pg_notification_queue_usage()`, or null without PostgreSQL. */
  notifyQueueUsage(): Promise<number | null>;
}

/** How long a figure read from the database at scrape time serves later scrapes. */
export const DATABASE_READ_PERIOD_MS = 1_000;

/** One registry per app (not prom-client's global one): two apps in one process keep their own counts. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const ms = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

  const sends = new Counter({ name: 'parley_sends_total', help: 'messages.send calls by surface and outcome (ok or the Parley error code)', labelNames: ['surface', 'outcome'], registers });
  const sendSeconds = new Histogram({ name: 'parley_send_duration_seconds', help: 'messages.send latency, authentication to stored', labelNames: ['surface'], buckets: ms, registers });
  const batchSize = new Histogram({ name: 'parley_group_commit_batch_size', help: 'Messages stored per send statement', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers });
  const statementSeconds = new Histogram({
    name: 'parley_send_statement_seconds',
    help: 'One send statement, from asking the pool for a connection to its result, commit included',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers,
  });
  const deliveries = new Counter({ name: 'parley_deliveries_total', help: 'Room events delivered to subscribers', labelNames: ['surface'], registers });
  const fanoutLag = new Histogram({ name: 'parley_fanout_lag_seconds', help: 'Publish on one instance to receipt on this one', buckets: ms, registers });
  const fanoutErrors = new Counter({ name: 'parley_fanout_errors_total', help: 'Fan-out engine failures (publish, connection, payload)', labelNames: ['what'], registers });
  const dbReads = new Counter({
    name: 'parley_db_reads_total',
    help: 'With DATABASE_REPLICA_URLS: history pages, room lists and feed catch-up reads, by read and by the server that answered (replica or primary)',
    labelNames: ['read', 'server'],
    registers,
  });
  const replicaFallbacks = new Counter({
    name: 'parley_db_replica_fallbacks_total',
    help: 'With DATABASE_REPLICA_URLS: such reads answered by the primary because the replica was behind the caller, down, or failed the read',
    labelNames: ['reason'],
    registers,
  });
  const jobRuns = new Counter({ name: 'parley_jobs_total', help: 'Job runs (push, webhook) by kind and outcome: done, retry, gave_up', labelNames: ['kind', 'outcome'], registers });
  const pushRequests = new Counter({
    name: 'parley_push_requests_total',
    help: "Requests to push services by the class of their answer's status (2xx, 4xx, 5xx, ...; none: no answer)",
    labelNames: ['status'],
    registers,
  });
  const sockets = new Gauge({ name: 'parley_open_sockets', help: 'Open WebSockets', labelNames: ['surface'], registers });
  const subscriptions = new Gauge({ name: 'parley_subscriptions', help: 'Live room subscriptions', labelNames: ['surface'], registers });

  // Under WORKERS the primary serves the scrape, summing every worker's registry.
  if (cluster.isWorker) offerToPrimary(registry);

  return {
    registry,
    /** This process's Prometheus text. */
    text: () => registry.metrics(),
    sendDone(surface: Surface, outcome: string, seconds: number) {
      sends.inc({ surface, outcome });
      if (outcome === 'ok') sendSeconds.observe({ surface }, seconds);
    },
    /** A send statement stored `size` messages in `seconds`. */
    batch(size: number, seconds: number) {
      batchSize.observe(size);
      statementSeconds.observe(seconds);
    },
    delivered: (surface: Surface) => deliveries.inc({ surface }),
    remoteBatch: (lagMs: number) => fanoutLag.observe(Math.max(0, lagMs) / 1000),
    fanoutError: (what: string) => fanoutErrors.inc({ what }),
    dbRead: (read: string, server: 'replica' | 'primary') => dbReads.inc({ read, server }),
    replicaFallback: (reason: string) => replicaFallbacks.inc({ reason }),
    jobOutcome: (kind: string, outcome: string) => jobRuns.inc({ kind, outcome }),
    pushRequest: (status: number | undefined) => pushRequests.inc({ status: status === undefined ? 'none' : `${Math.floor(status / 100)}xx` }),
    socket: (surface: Surface, delta: 1 | -1) => sockets.inc({ surface }, delta),
    subscription: (surface: Surface, delta: 1 | -1) => subscriptions.inc({ surface }, delta),

    /** Gauges read at scrape time; registered once the app's database and engine exist. */
    watch(sources: MetricSources) {
      const notifyQueueUsage = sharedRead(DATABASE_READ_PERIOD_MS, sources.notifyQueueUsage);
      new Gauge({
        name: 'parley_db_pool_connections',
        help: 'ORM pool connections by state',
        labelNames: ['state'],
        registers,
        async collect() {
          const p = await sources.pool();
          this.set({ state: 'total' }, p.totalCount);
          this.set({ state: 'idle' }, p.idleCount);
          this.set({ state: 'waiting' }, p.waitingCount);
        },
      });
      new Gauge({
        name: 'parley_fanout_engine_up',
        help: '1 while the fan-out engine is connected (always 1 for local)',
        labelNames: ['engine'],
        registers,
        // Under WORKERS: 1 only while every worker's engine is connected.
        aggregator: 'min',
        collect() {
          const { name, up } = sources.engine();
          this.set({ engine: name }, up ? 1 : 0);
        },
      });
      new Gauge({
        name: 'parley_pg_notification_queue_usage',
        help: 'pg_notification_queue_usage(): fraction of the NOTIFY queue in use; a stuck listener grows it',
        registers,
        // One queue per database cluster: every worker reads the same figure.
        aggregator: 'max',
        async collect() {
          const usage = await notifyQueueUsage().catch(() => null);
          if (usage !== null) this.set(usage);
        },
      });
    },

    /** The job queue's backlog, read at scrape time (one statement for both gauges, at most once a period). */
    watchJobs(backlog: () => Promise<Array<{ kind: string; pending: number; oldestDueSeconds: number }>>) {
      const read = sharedRead(DATABASE_READ_PERIOD_MS, backlog);
      const gauge = (name: string, help: string, value: (row: { pending: number; oldestDueSeconds: number }) => number) =>
        new Gauge({
          name,
          help,
          labelNames: ['kind'],
          registers,
          // One table for every instance: every worker reads the same figures.
          aggregator: 'max',
          async collect() {
            const rows = await read().catch(() => undefined);
            if (!rows) return;
            this.reset();
            for (const row of rows) this.set({ kind: row.kind }, value(row));
          },
        });
      gauge('parley_jobs_pending', 'Jobs in the queue by kind: due, waiting to be due, or running', (r) => r.pending);
      gauge('parley_jobs_oldest_due_seconds', 'How long the oldest due job of each kind not yet claimed has waited (0: none)', (r) => r.oldestDueSeconds);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
