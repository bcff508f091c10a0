import { createHash, createHmac } from 'node:crypto';
import { Pool } from 'undici';
import type { Message, OpenedRoom } from '../../contracts/index.ts';
import type { Job, JobOutcome } from '../infra/jobs/job-queue.ts';
import { retryAfterMs } from '../infra/retry-after.ts';
import { messageFromRow, type CatchUpRead, type MessageRow } from '../messages/message-store.ts';

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
 * A `message.created` event as a job pass stored it before passes stored ranges: the stored row
 * rather than the event. Jobs written so still run.
 */
interface StoredMessageEvent {
  id: string;
  type: 'message.created';
  /** Epoch milliseconds. */
  at: number;
  row: MessageRow;
}

/**
 * The `message.created` events of a job pass (see `webhookJobsFromStored`): for each room, its
 * messages after seq `after` up to `upTo`, announced at `at` (epoch milliseconds).
 */
interface CreatedRanges {
  at: number;
  ranges: Array<{ room: string; after: number; upTo: number }>;
}

/** How a delivery reads messages: the message store's batched catch-up read. */
export type ReadMessages = (reads: readonly CatchUpRead[]) => Promise<Message[][]>;

/**
 * The id of a message's `message.created` event: the same however often its job is read again (a
 * job whose process died mid-delivery runs again after its lease), so receivers deduplicate on it.
 * A name-based UUID (version 5 layout) of the message's id.
 */
export function createdEventId(messageId: string): string {
  const h = createHash('sha1').update(`message.created:${messageId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
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

export function createWebhookDelivery(target: WebhookTarget, readMessages: ReadMessages, log: { error(obj: object, msg: string): void }): WebhookDelivery {
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

  /**
   * A job's events. Messages are read as they are when delivered: one edited or deleted meanwhile
   * is announced as it now is (its own event follows), one erased is not announced.
   */
  async function eventsOfJob(payload: unknown): Promise<Array<StoredMessageEvent | WebhookEvent>> {
    if (!(payload as Partial<CreatedRanges>).ranges) return eventsOf(payload);
    const { at, ranges } = payload as CreatedRanges;
    const read = await readMessages(ranges.map((r) => ({ roomId: r.room, after: Number(r.after), upTo: Number(r.upTo), limit: Number(r.upTo) - Number(r.after) })));
    const createdAt = new Date(Number(at)).toISOString();
    return read.flat().map((message) => ({ id: createdEventId(message.id), type: 'message.created', created_at: createdAt, data: { message } }));
  }

  return {
    async run(job) {
      const events = await eventsOfJob(job.payload);
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
