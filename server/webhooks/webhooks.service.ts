import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Message, OpenedRoom, RoomChangeEvent } from '../../contracts/index.ts';
import { jobsInsertSql, type Job, type JobOutcome, type JobQueue } from '../infra/jobs/job-queue.ts';
import { messageFromRow, type MessageRow } from '../messages/message-store.ts';
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
  changed(event: RoomChangeEvent): void;
  roomCreated(room: OpenedRoom): void;
  /** Resolves once every event so far is written as a job (tests, shutdown). */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

export interface WebhookDeps {
  config: { url: string; secret: string } | undefined;
  jobs: JobQueue;
  timeoutMs?: number;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

const MAX_PENDING = 10_000;
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

/** A job's events: several (made by a pass), or one (the other events). */
const eventsOf = (payload: unknown): Array<StoredMessageEvent | WebhookEvent> => {
  const p = payload as { events: Array<StoredMessageEvent | WebhookEvent> } | StoredMessageEvent | WebhookEvent;
  return 'events' in p ? p.events : [p];
};

const eventOf = (stored: StoredMessageEvent | WebhookEvent): WebhookEvent =>
  'row' in stored ? { id: stored.id, type: stored.type, created_at: new Date(Number(stored.at)).toISOString(), data: { message: messageFromRow(stored.row) } } : stored;

/**
 * One POST per event to `WEBHOOK_URL`, at least once: events become jobs in the durable queue off
 * the send path (one statement per event-loop turn for everything that happened in it), and a
 * receiver that is down or slow only delays its own deliveries, retried with backoff.
 */
export function createWebhookService({ config, jobs, timeoutMs = 10_000, log }: WebhookDeps): WebhookService {
  let pending: WebhookEvent[] = [];
  let dropped = 0;
  let flushing: Promise<void> = Promise.resolve();
  let scheduled = false;
  const target = config && new URL(config.url);
  // One receiver: its connections are kept alive rather than made per event.
  const agentOptions = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = config && (new URL(config.url).protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions));

  function emit(type: WebhookType, data: WebhookEvent['data']) {
    if (!config) return;
    if (pending.length >= MAX_PENDING) return void dropped++;
    pending.push({ id: randomUUID(), type, created_at: new Date().toISOString(), data });
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushing = flushing.then(write);
    });
  }

  async function write() {
    const batch = pending;
    pending = [];
    if (dropped) log.warn({ dropped }, 'webhooks: job writes fell behind; some events are not sent');
    dropped = 0;
    if (!batch.length) return;
    await jobs.add(batch.map((event) => ({ kind: 'webhook', payload: event }))).catch((err: unknown) => log.error({ err, events: batch.length }, 'webhooks: writing jobs failed'));
  }

  /** Every event of the job, each its own POST; what failed is retried together. */
  async function deliver(job: Job): Promise<JobOutcome> {
    const events = eventsOf(job.payload);
    const results = await Promise.all(events.map(async (stored) => ({ stored, result: await post(eventOf(stored)) })));
    const failed = results.filter((r) => !(r.result.status !== undefined && r.result.status >= 200 && r.result.status < 300));
    if (!failed.length) return { done: true };
    const reasons = failed.map(({ result }) => result.error ?? `receiver answered ${result.status}`);
    if (job.attempts >= MAX_ATTEMPTS) {
      for (const [i, { stored }] of failed.entries()) log.error({ event: stored.id, type: stored.type, reason: reasons[i] }, 'webhook: giving up');
      return { done: true };
    }
    const backoff = Math.min(1_000 * 2 ** (job.attempts - 1), 1_800_000);
    const asked = Math.max(0, ...failed.map(({ result }) => retryAfterMs(result.retryAfter) ?? 0));
    return { retryInMs: Math.max(backoff, asked), payload: { events: failed.map((f) => f.stored) }, error: reasons[0] };
  }

  async function post(event: WebhookEvent): Promise<{ status?: number; retryAfter?: string; error?: string }> {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    const url = target!;
    return new Promise((resolve) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          agent,
          timeout: timeoutMs,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'parley-webhook-id': event.id,
            'parley-webhook-timestamp': String(timestamp),
            'parley-signature': signWebhook(config!.secret, timestamp, body),
          },
        },
        (res) => {
          res.resume();
          const retryAfter = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) });
        },
      );
      const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      request.on('close', () => clearTimeout(deadline));
      request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on('error', (err) => resolve({ error: err.message }));
      request.end(body);
    });
  }

  return {
    start() {
      if (!config) return;
      jobs.handle('webhook', { run: deliver });
      jobs.start();
    },
    changed(event) {
      if (event.type === 'message_updated') emit('message.updated', { message: event.message });
      else if (event.type === 'message_deleted') emit('message.deleted', { message: event.message });
    },
    roomCreated: (room) => emit('room.created', { room }),
    async flushed() {
      await new Promise((resolve) => setImmediate(resolve));
      await flushing;
    },
    async close() {
      await this.flushed();
      agent?.destroy();
    },
  };
}
