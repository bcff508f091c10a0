import { createHmac } from 'node:crypto';
import { Pool } from 'undici';
import type { Message, OpenedRoom } from '../../contracts/index.ts';
import type { Job, JobOutcome } from '../infra/jobs/job-queue.ts';
import { messageFromRow, type MessageRow } from '../messages/message-row.ts';
import { retryAfterMs } from '../infra/retry-after.ts';

export type WebhookType = 'message.created' | 'message.updated' | 'message.deleted' | 'room.created';

/** The body of every webhook POST; `id` stays the same across retries of one event. */
export interface WebhookEvent {
  id: string;
  type: WebhookType;
  created_at: string;
  data: { message: Message } | { room: OpenedRoom };
}

/** Where events go: `timeoutMs` bounds one delivery, from connect to answer. */
export interface WebhookTarget {
  url: string;
  secret: string;
  timeoutMs: number;
}

/** `Parley-Signature: v1=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` with the shared secret. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * A `message.created` event as a job pass stores it (see `webhookJobsFromStored`): the stored
 * row rather than the event, which is made from it as the message's reads make it.
 */
interface StoredMessageEvent {
  id: string;
  type: 'message.created';
  /** Epoch milliseconds. */
  at: number;
  row: MessageRow;
}

/** Retries spread over about a day (backoff doubles from 1 s up to 30 min). */
const MAX_ATTEMPTS = 60;

/** A job's events: a list, or one event alone (jobs an earlier version wrote, one event each). */
const eventsOf = (payload: unknown): Array<StoredMessageEvent | WebhookEvent> => {
  const p = payload as { events: Array<StoredMessageEvent | WebhookEvent> } | StoredMessageEvent | WebhookEvent;
  return 'events' in p ? p.events : [p];
};

const eventOf = (stored: StoredMessageEvent | WebhookEvent): WebhookEvent =>
  'row' in stored ? { id: stored.id, type: stored.type, created_at: new Date(Number(stored.at)).toISOString(), data: { message: messageFromRow(stored.row) } } : stored;

export interface WebhookDelivery {
  /** Every event of a `webhook` job, each its own POST; what failed is retried together. */
  run(job: Job): Promise<JobOutcome>;
  close(): Promise<void>;
}

export function createWebhookDelivery(target: WebhookTarget, log: { error(obj: object, msg: string): void }): WebhookDelivery {
  const url = new URL(target.url);
  // One receiver: its connections are kept alive rather than made per event, and undici's client
  // costs about a third less CPU per request than node:http's (63 against 99 µs per POST,
  // docs/architecture.md, "Webhooks"). It follows no redirect.
  const pool = new Pool(url.origin, { connections: 64, headersTimeout: target.timeoutMs, bodyTimeout: target.timeoutMs, connect: { timeout: target.timeoutMs } });
  const path = `${url.pathname}${url.search}`;

  async function post(event: WebhookEvent): Promise<{ status?: number; retryAfter?: string; error?: string }> {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await pool.request({
        path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'parley-webhook-id': event.id,
          'parley-webhook-timestamp': String(timestamp),
          'parley-signature': signWebhook(target.secret, timestamp, body),
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
    async run(job) {
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
    },
    close: () => pool.destroy(),
  };
}
