import { randomUUID } from 'node:crypto';
import type { OpenedRoom } from '../../contracts/index.ts';
import { jobsInsertSql, writeJobs, type JobQueue } from '../infra/jobs/job-queue.ts';
import type { Unnumbered } from '../messages/room-changes.ts';
import { createWebhookDelivery, type ReadMessages, type WebhookDelivery, type WebhookEvent, type WebhookTarget, type WebhookType } from './webhook-delivery.ts';

export interface WebhookService {
  start(): void;
  /**
   * Inside the transaction that makes these changes, after them: the jobs of their events
   * (`message.updated`, `message.deleted`; other changes have none), committed with the changes or
   * not at all. Tell {@link committed} once the transaction commits.
   */
  changedIn(tx: Executor, changes: readonly Unnumbered[]): Promise<void>;
  /** As {@link changedIn}, in the transaction that creates the room: its `room.created` job. */
  roomCreatedIn(tx: Executor, room: OpenedRoom): Promise<void>;
  /** A transaction that wrote events committed: their jobs run now rather than at the queue's next poll. */
  committed(): void;
  close(): Promise<void>;
}

type Executor = Parameters<typeof writeJobs>[0];

export interface WebhookDeps {
  config: WebhookTarget | undefined;
  jobs: JobQueue;
  /** How the delivery reads the messages of `message.created` jobs. */
  readMessages: ReadMessages;
  log: { error(obj: object, msg: string): void };
}

/** Events one job carries, at most. */
const EVENTS_PER_JOB = 100;

/**
 * The CTE a job pass runs (see server/push/message-jobs.ts): the `message.created` events of the
 * pass's messages, as ranges of seqs per room that the delivery reads when it sends (so a process
 * killed after a send's commit still leaves them to send). Up to {@link EVENTS_PER_JOB} messages
 * share a job (a room's may be split between two), each still its own POST. Storing each
 * message's row in the job instead made the pass build, compress and store every row as JSON, and
 * the claim read it back: the pass cost PostgreSQL more than the sends it followed.
 */
export function webhookJobsFromStored(config: WebhookDeps['config']): string[] {
  if (!config) return [];
  return [
    `webhook_jobs as (${jobsInsertSql(`
      select 'webhook'::text as kind, null::text as key,
             jsonb_build_object('at', floor(extract(epoch from now()) * 1000)::bigint,
                                'ranges', jsonb_agg(jsonb_build_object('room', g.room, 'after', g.lo - 1, 'upTo', g.hi) order by g.room, g.lo)) as payload,
             0::bigint as delay_ms
        from (select n / ${EVENTS_PER_JOB} as job, room, min(seq) as lo, max(seq) as hi
                from (select s.chat_room_id as room, s.seq, row_number() over (order by s.chat_room_id, s.seq) - 1 as n from stored s) numbered
               group by n / ${EVENTS_PER_JOB}, room) g
       group by g.job`)})`,
  ];
}

/** Events in jobs of up to {@link EVENTS_PER_JOB}, as a pass groups `message.created`. */
function eventJobs(events: readonly WebhookEvent[]) {
  const jobs = [];
  for (let i = 0; i < events.length; i += EVENTS_PER_JOB) jobs.push({ kind: 'webhook', payload: { events: events.slice(i, i + EVENTS_PER_JOB) } });
  return jobs;
}

/**
 * One POST per event to `WEBHOOK_URL`, at least once: every event is a job in the durable queue
 * before anyone is told of it (`message.created` made from committed messages, the others written
 * in their change's own transaction), and a receiver that is down or slow only delays its own
 * deliveries, retried with backoff.
 */
export function createWebhookService({ config, jobs, readMessages, log }: WebhookDeps): WebhookService {
  const delivery: WebhookDelivery | undefined = config && createWebhookDelivery(config, readMessages, log);

  const event = (type: WebhookType, data: WebhookEvent['data']): WebhookEvent => ({ id: randomUUID(), type, created_at: new Date().toISOString(), data });

  return {
    start() {
      if (!delivery) return;
      jobs.handle('webhook', { run: delivery.run });
      jobs.start();
    },
    async changedIn(tx, changes) {
      if (!config) return;
      const events = changes.flatMap((change) =>
        change.type === 'message_updated' ? [event('message.updated', { message: change.message })] : change.type === 'message_deleted' ? [event('message.deleted', { message: change.message })] : [],
      );
      await writeJobs(tx, eventJobs(events));
    },
    async roomCreatedIn(tx, room) {
      if (config) await writeJobs(tx, eventJobs([event('room.created', { room })]));
    },
    committed() {
      if (config) jobs.wakeIn(0);
    },
    async close() {
      await delivery?.close();
    },
  };
}
