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
 * A `message.created` job as an job pass makes it (see {@link webhookJobsFromStored}): the
 * stored row rather than the event, which is made from it as the message's reads make it.
 */
interface StoredMessageJob {
  id: string;
  type: 'message.created';
  /** Epoch milliseconds. */
  at: number;
  row: MessageRow;
}

/**
 * The CTE an job pass runs (see server/push/message-jobs.ts): one `message.created` job per
 * message, made from the committed message, so a process killed after a send's commit still
 * leaves the event to send.
 */
export function webhookJobsFromStored(config: WebhookDeps['config']): string[] {
  if (!config) return [];
  return [
    `webhook_jobs as (${jobsInsertSql(`
      select 'webhook'::text as kind, null::text as key,
             jsonb_build_object('id', gen_random_uuid(), 'type', 'message.created', 'at', floor(extract(epoch from now()) * 1000)::bigint, 'row', to_jsonb(s)) as payload,
             0::bigint as delay_ms
        from stored s`)})`,
  ];
}

const eventOf = (payload: unknown): WebhookEvent => {
  const stored = payload as StoredMessageJob | WebhookEvent;
  if (!('row' in stored)) return stored;
  return { id: stored.id, type: stored.type, created_at: new Date(Number(stored.at)).toISOString(), data: { message: messageFromRow(stored.row) } };
};

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

  async function deliver(job: Job): Promise<JobOutcome> {
    const event = eventOf(job.payload);
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    const url = new URL(config!.url);
    const result = await new Promise<{ status?: number; retryAfter?: string; error?: string }>((resolve) => {
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
    if (result.status !== undefined && result.status >= 200 && result.status < 300) return { done: true };
    const reason = result.error ?? `receiver answered ${result.status}`;
    if (job.attempts >= MAX_ATTEMPTS) {
      log.error({ event: event.id, type: event.type, reason }, 'webhook: giving up');
      return { done: true };
    }
    const backoff = Math.min(1_000 * 2 ** (job.attempts - 1), 1_800_000);
    return { retryInMs: Math.max(backoff, retryAfterMs(result.retryAfter) ?? 0), error: reason };
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
