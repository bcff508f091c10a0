import { createHmac, randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import type { Message, OpenedRoom } from '../../contracts/index.ts';
import { jobsInsertSql, writeJobs, type Job, type JobOutcome, type JobQueue } from '../infra/jobs/job-queue.ts';
import { messageFromRow, type MessageRow } from '../messages/message-store.ts';
import type { Unnumbered } from '../messages/room-changes.ts';
import { retryAfterMs } from '../push/push-sender.ts';

export type WebhookType = 'message.created' | 'message.updated' | 'message.deleted' | 'room.created';

/** The body of every webhook POST; `id` stays the same across retries of one event. */
export interface WebhookEvent {
  id: string;
  type: WebhookType;
  created_at: string;
  data: { message: Message } | { room: OpenedRoom };
}

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
  /** `timeoutMs` bounds one delivery, from connect to answer. */
  config: { url: string; secret: string; timeoutMs: number } | undefined;
  jobs: JobQueue;
  log: { error(obj: object, msg: string): void };
}

/** Retries spread over about a day (backoff doubles from 1 s up to 30 min). */
const MAX_ATTEMPTS = 60;

/** `Parley-Signature: v1=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` with the shared secret. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * A `message.created` event as a job pass stores it (see {@link webhookJobsFromStored}): the
 * stored row rather than the event, which is made from it as the message's reads make it.
 */
interface StoredMessageEvent {
  id: string;
  type: 'message.created';
  /** Epoch milliseconds. */
  at: number;
  row: MessageRow;
}

/** Events one job carries, at most. */
const EVENTS_PER_JOB = 100;

/**
 * The CTE a job pass runs (see server/push/message-jobs.ts): the `message.created` events of the
 * pass's messages, made from the committed messages, so a process killed after a send's commit
 * still leaves them to send. Up to {@link EVENTS_PER_JOB} events share a job: each is still its
 * own POST, but a job row per event meant three row writes per message (insert, claim, delete)
 * for the database.
 */
export function webhookJobsFromStored(config: WebhookDeps['config']): string[] {
  if (!config) return [];
  return [
    `webhook_jobs as (${jobsInsertSql(`
      select 'webhook'::text as kind, null::text as key, jsonb_build_object('events', jsonb_agg(event order by n)) as payload, 0::bigint as delay_ms
        from (select row_number() over (order by s.chat_room_id, s.seq) - 1 as n,
                     jsonb_build_object('id', gen_random_uuid(), 'type', 'message.created', 'at', floor(extract(epoch from now()) * 1000)::bigint, 'row', to_jsonb(s)) as event
                from stored s) e
       group by n / ${EVENTS_PER_JOB}`)})`,
  ];
}

/** A job's events: a list, or one event alone (jobs an earlier version wrote, one event each). */
const eventsOf = (payload: unknown): Array<StoredMessageEvent | WebhookEvent> => {
  const p = payload as { events: Array<StoredMessageEvent | WebhookEvent> } | StoredMessageEvent | WebhookEvent;
  return 'events' in p ? p.events : [p];
};

const eventOf = (stored: StoredMessageEvent | WebhookEvent): WebhookEvent =>
  'row' in stored ? { id: stored.id, type: stored.type, created_at: new Date(Number(stored.at)).toISOString(), data: { message: messageFromRow(stored.row) } } : stored;

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
export function createWebhookService({ config, jobs, log }: WebhookDeps): WebhookService {
  const target = config && new URL(config.url);
  // One receiver: its connections are kept alive rather than made per event, and undici's client
  // costs about a third less CPU per request than node:http's (63 against 99 µs per POST,
  // docs/architecture.md, "Webhooks"). It follows no redirect.
  const pool = config && target && new Pool(target.origin, { connections: 64, headersTimeout: config.timeoutMs, bodyTimeout: config.timeoutMs, connect: { timeout: config.timeoutMs } });
  const path = target && `${target.pathname}${target.search}`;

  const event = (type: WebhookType, data: WebhookEvent['data']): WebhookEvent => ({ id: randomUUID(), type, created_at: new Date().toISOString(), data });

  /** Every event of the job, each its own POST; what failed is retried together. */
  async function deliver(job: Job): Promise<JobOutcome> {
    const events = eventsOf(job.payload);
    const results = await Promise.all(events.map(async (stored) => ({ stored, result: await post(eventOf(stored)) })));
    const failed = results.filter((r) => !(r.result.status !== undefined && r.result.status >= 200 && r.result.status < 300));
    if (!failed.length) return { done: true };
    const reasons = failed.map(({ result }) => result.error ?? `receiver answered ${result.status}`);
    if (job.attempts >= MAX_ATTEMPTS) {
      for (const [i, { stored }] of failed.entries()) log.error({ event: stored.id, type: stored.type, reason: reasons[i] }, 'webhook: giving up');
      return { done: true, gaveUp: true };
    }
    const backoff = Math.min(1_000 * 2 ** (job.attempts - 1), 1_800_000);
    const asked = Math.max(0, ...failed.map(({ result }) => retryAfterMs(result.retryAfter) ?? 0));
    return { retryInMs: Math.max(backoff, asked), payload: { events: failed.map((f) => f.stored) }, error: reasons[0] };
  }

  async function post(event: WebhookEvent): Promise<{ status?: number; retryAfter?: string; error?: string }> {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await pool!.request({
        path: path!,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'parley-webhook-id': event.id,
          'parley-webhook-timestamp': String(timestamp),
          'parley-signature': signWebhook(config!.secret, timestamp, body),
        },
        body,
      });
      await res.body.dump();
      const retryAfter = res.headers['retry-after'];
      return { status: res.statusCode, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  }

  return {
    start() {
      if (!config) return;
      jobs.handle('webhook', { run: deliver });
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
      await pool?.destroy();
    },
  };
}
