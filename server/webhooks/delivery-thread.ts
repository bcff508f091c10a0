import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import pg from 'pg';
import { poolSql } from '../infra/db/pool-sql.ts';
import { createJobQueue, type JobOutcomeName } from '../infra/jobs/job-queue.ts';
import { createWebhookDelivery, type WebhookTarget } from './webhook-delivery.ts';

/**
 * Webhook deliveries run on a worker thread of their own: its POSTs, their answers and the job
 * rows' claims and outcomes never wait on the event loop that answers sends, nor sends on them
 * (a job pass makes dozens of POSTs at once). The jobs are the same rows in the same table; the
 * thread claims only `webhook` jobs, on two connections of its own.
 */
export interface DeliveryThread {
  /** Jobs were written: claim now rather than at the next poll. */
  wake(): void;
  /** Stops claiming, waits for the deliveries running (at most the queue's close wait), ends the thread. */
  close(): Promise<void>;
}

interface ThreadData {
  parleyWebhookThread: { databaseUrl: string; target: WebhookTarget };
}

type ToThread = { type: 'wake' } | { type: 'close' };
type FromThread = { type: 'error'; obj: object; msg: string } | { type: 'outcome'; kind: string; outcome: JobOutcomeName } | { type: 'closed' };

export interface DeliveryThreadDeps {
  databaseUrl: string;
  target: WebhookTarget;
  log: { error(obj: object, msg: string): void };
  onOutcome?(kind: string, outcome: JobOutcomeName): void;
}

/** A thread that ends unasked is started again after this. */
const RESTART_MS = 1_000;
/** The queue's own close wait, and a margin for its pool. */
const CLOSE_WAIT_MS = 7_000;

export function startDeliveryThread({ databaseUrl, target, log, onOutcome }: DeliveryThreadDeps): DeliveryThread {
  let closing = false;
  let worker: Worker;
  let restart: NodeJS.Timeout | undefined;

  function spawn() {
    worker = new Worker(new URL(import.meta.url), { workerData: { parleyWebhookThread: { databaseUrl, target } } satisfies ThreadData });
    // The server's own handles keep the process up; a thread never holds an exiting one.
    worker.unref();
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'error') log.error(msg.obj, msg.msg);
      else if (msg.type === 'outcome') onOutcome?.(msg.kind, msg.outcome);
    });
    worker.on('error', (err) => log.error({ err }, 'webhooks: the delivery thread failed; starting it again'));
    worker.on('exit', () => {
      if (closing) return;
      restart = setTimeout(spawn, RESTART_MS);
      restart.unref();
    });
  }
  spawn();

  return {
    wake: () => worker.postMessage({ type: 'wake' } satisfies ToThread),
    async close() {
      closing = true;
      clearTimeout(restart);
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ type: 'close' } satisfies ToThread);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
      if (late) await worker.terminate();
    },
  };
}

/** The thread's side: a job queue that runs `webhook` jobs, told by the main thread when to look. */
async function runThread({ databaseUrl, target }: ThreadData['parleyWebhookThread']) {
  const port = parentPort!;
  const tell = (msg: FromThread) => port.postMessage(msg);
  const log = { error: (obj: object, msg: string) => tell({ type: 'error', obj, msg }) };
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', (err) => log.error({ err }, 'webhooks: a database connection of the delivery thread failed'));
  const sql = poolSql(pool);
  const delivery = createWebhookDelivery(target, sql, log);
  const jobs = createJobQueue({
    sql,
    onError: (err, job) => log.error({ err, job: job && { id: job.id, kind: job.kind } }, 'job failed'),
    onOutcome: (kind, outcome) => tell({ type: 'outcome', kind, outcome }),
  });
  jobs.handle('webhook', { run: delivery.run });
  jobs.start();
  port.on('message', async (msg: ToThread) => {
    if (msg.type === 'wake') return jobs.wakeIn(0);
    await jobs.close();
    await delivery.close();
    await pool.end();
    tell({ type: 'closed' });
    port.close();
  });
}

if (!isMainThread && (workerData as Partial<ThreadData> | null)?.parleyWebhookThread) void runThread((workerData as ThreadData).parleyWebhookThread);
