import { prepared, runPrepared, type Sql } from '../infra/db/prepared.ts';
import { ParleyError, PUSH_SUBSCRIPTIONS_PER_USER, type Message, type PushPayload, type PushSubscribeInput, type RoomMute } from '../../contracts/index.ts';
import type { PushConfig } from '../infra/config/config.ts';
import { inJsonKeys } from '../infra/db/json-keys.ts';
import { jobsInsertSql, type Job, type JobOutcome, type JobQueue } from '../infra/jobs/job-queue.ts';
import { checkEndpoint, EndpointRefused } from './endpoint-guard.ts';
import type { MessageJobs } from './message-jobs.ts';
import { ENCRYPTION_OVERHEAD_BYTES, MAX_ENCRYPTED_BYTES, type PushSender, type PushTarget, type VapidKeys } from './push-sender.ts';

export interface PushService {
  /** Loads the VAPID keys and starts sending; throws when push is on and its keys cannot be had. */
  start(): Promise<void>;
  vapidPublicKey(): string;
  /** Stores (or refreshes) the caller's subscription; past the cap the oldest go. Returns how many the caller has. */
  subscribe(userId: string, input: PushSubscribeInput): Promise<number>;
  unsubscribe(userId: string, endpoint: string): Promise<boolean>;
  mute(userId: string, roomId: string, until: string | undefined): Promise<RoomMute>;
  unmute(userId: string, roomId: string): Promise<RoomMute>;
  /**
   * A message was stored and committed: its jobs (push, webhooks) are made off the send's path
   * from the committed message (see message-jobs.ts). Cheap and synchronous.
   */
  stored(message: Message): void;
  /** Resolves once the jobs of everything stored so far are written (tests). */
  flushed(): Promise<void>;
  /** Writes the jobs still to make (the queue itself is closed by its owner). */
  close(): Promise<void>;
}

export interface PushDeps {
  config: PushConfig;
  dataDir: string;
  sql: Sql;
  jobs: JobQueue;
  loadKeys(): Promise<VapidKeys>;
  makeSender(keys: VapidKeys): PushSender;
  /** Presence as this instance knows it: online on any instance (offline announced after its delay). */
  isOnline(userId: string): boolean;
  /** How long after a socket closes presence still says online. */
  offlineDelayMs: number;
  /** Push services accepted these notifications: each recipient's delivered marker moves to its `seq` (one statement for all). */
  markDelivered(moves: Array<{ roomId: string; userId: string; seq: number }>): Promise<void>;
  /** Makes push and webhook jobs from stored messages; push runs it whether or not push is on (webhooks may be). */
  messageJobs: MessageJobs;
  /** Each request to a push service: its answer's status, undefined when none came (no answer, a refused address). */
  onRequest?(status: number | undefined): void;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

interface PushJob {
  room: string;
  user: string;
  /** On a retry: only the subscriptions still to serve. */
  only?: string[];
  /** Times it was put off because presence said the recipient was online. */
  deferred?: number;
}

/** A push job's sends to a device that keep failing stop after this many runs. */
const MAX_PUSH_ATTEMPTS = 8;
const TTL_SECONDS = 24 * 3600;

/** The longest preview, before the byte budget of the encrypted payload cuts further. */
const PREVIEW_CHARS = 1_000;

const notEnabled = () => new ParleyError('NOT_FOUND', 'Push is off on this server (PUSH=off).');

/**
 * The CTE a job pass runs (see message-jobs.ts) to make push jobs from its `stored`
 * messages: one for each recipient with a device, in a room they have not muted. The job carries
 * no message: it reads the room's newest when it runs, so jobs of one room and recipient coalesce.
 */
export function pushJobsFromStored(config: Pick<PushConfig, 'enabled' | 'coalesceMs'>): string[] {
  if (!config.enabled) return [];
  return [
    `push_jobs as (${jobsInsertSql(`
      select distinct 'push'::text as kind, s.chat_room_id::text || ':' || t.recipient as key,
             jsonb_build_object('room', s.chat_room_id, 'user', t.recipient) as payload, ${Math.max(0, Math.trunc(config.coalesceMs))}::bigint as delay_ms
        from stored s
        join chat_rooms r on r.id = s.chat_room_id
        cross join lateral (select case when r.participant1_id = s.sender_id then r.participant2_id else r.participant1_id end as recipient) t
       where exists (select from push_subscriptions ps where ps.user_id = t.recipient)
         and not exists (select from room_mutes mu where mu.chat_room_id = r.id and mu.user_id = t.recipient and (mu.until is null or mu.until > now()))`)})`,
  ];
}

interface PushState {
  k: number;
  seq: string;
  sender_id: string;
  content: string;
  reached: string;
  unread: string;
  muted: boolean;
  targets: Array<PushTarget & { id: string }> | null;
}

/**
 * What every job of a claim needs, in one statement: the room's newest message from the other
 * side, how far the recipient has reached and read, whether the room is muted, and the devices.
 */
const PUSH_STATE_SQL = `
  select j.k, m.seq, m.sender_id, m.content, st.reached, st.unread, st.muted, subs.targets
    from json_to_recordset(?::json) as j(k int, room uuid, "user" text, only_ids jsonb)
    cross join lateral (
      select seq, sender_id, content from messages m
       where m.chat_room_id = j.room and m.sender_id <> j."user" and m.deleted_at is null
       order by m.seq desc limit 1) m
    cross join lateral (
      select coalesce((select seq from read_markers where chat_room_id = j.room and user_id = j."user"), 0) as read_seq) rd
    cross join lateral (
      select greatest(rd.read_seq, (select seq from delivered_markers where chat_room_id = j.room and user_id = j."user"), 0) as reached,
             (select count(*) from messages u where u.chat_room_id = j.room and u.sender_id <> j."user" and u.deleted_at is null and u.seq > rd.read_seq) as unread,
             exists (select from room_mutes where chat_room_id = j.room and user_id = j."user" and (until is null or until > now())) as muted) st
    cross join lateral (
      select json_agg(json_build_object('id', s.id, 'endpoint', s.endpoint, 'p256dh', s.p256dh, 'auth', s.auth)) as targets
        from push_subscriptions s
       where s.user_id = j."user" and (j.only_ids is null or s.id::text in (select jsonb_array_elements_text(j.only_ids)))) subs`;

const PUSH_STATE = prepared(PUSH_STATE_SQL);
const DELETE_GONE = prepared(`delete from push_subscriptions where ${inJsonKeys('id', 'uuid')}`);

export function createPushService(deps: PushDeps): PushService {
  const { config, sql, jobs, log } = deps;
  let keys: VapidKeys | undefined;
  let sender: PushSender | undefined;

  async function runBatch(batch: readonly Job[]): Promise<JobOutcome[]> {
    const outcomes: JobOutcome[] = batch.map(() => ({ done: true }));
    if (!sender) return outcomes;
    const tasks = batch.map((job) => job.payload as PushJob);
    const due: number[] = [];
    tasks.forEach((task, k) => {
      // Presence says online for its offline delay after the last socket closed: look again once it
      // is over, or a message sent in that window would never be pushed.
      if (!deps.isOnline(task.user)) due.push(k);
      else if ((task.deferred ?? 0) < 1) outcomes[k] = { retryInMs: deps.offlineDelayMs + 250, payload: { ...task, deferred: (task.deferred ?? 0) + 1 } };
    });
    if (!due.length) return outcomes;
    const states = await runPrepared<PushState>(sql, PUSH_STATE, [JSON.stringify(due.map((k) => ({ k, room: tasks[k]!.room, user: tasks[k]!.user, only_ids: tasks[k]!.only ?? null })))]);
    const gone: string[] = [];
    const delivered: Array<{ roomId: string; userId: string; seq: number }> = [];
    await Promise.all(
      states.map(async (state) => {
        const job = batch[state.k]!;
        const task = tasks[state.k]!;
        // Nothing to announce: deleted, muted, or already on one of the recipient's devices.
        if (state.muted || Number(state.seq) <= Number(state.reached) || !state.targets?.length) return;
        const seq = Number(state.seq);
        const message = {
          payload: payloadOf({ room: task.room, seq, unread: Number(state.unread), sender: state.sender_id, content: state.content }, config.preview),
          topic: task.room.replace(/-/g, ''),
          ttlSeconds: TTL_SECONDS,
        };
        const results = await Promise.all(state.targets.map(async (target) => ({ target, result: await sender!.send(target, message) })));
        const retry: string[] = [];
        let retryAfter = 0;
        let accepted = false;
        for (const { target, result } of results) {
          deps.onRequest?.('status' in result ? result.status : undefined);
          if (result.outcome === 'accepted') accepted = true;
          else if (result.outcome === 'gone') gone.push(target.id);
          else if (result.outcome === 'retry') {
            retry.push(target.id);
            retryAfter = Math.max(retryAfter, result.retryAfterMs ?? 0);
            log.warn({ endpoint: origin(target.endpoint), status: result.status, reason: result.reason }, 'push: will retry');
          } else log.warn({ endpoint: origin(target.endpoint), status: result.status, reason: result.reason }, 'push: refused');
        }
        if (accepted) delivered.push({ roomId: task.room, userId: task.user, seq });
        if (!retry.length) return;
        if (job.attempts >= MAX_PUSH_ATTEMPTS) return void (outcomes[state.k] = { done: true, gaveUp: true });
        const backoff = Math.min(1_000 * 2 ** (job.attempts - 1), 300_000);
        outcomes[state.k] = { retryInMs: Math.max(retryAfter, retryAfter ? 0 : backoff), payload: { ...task, only: retry }, error: 'push service asked for a retry' };
      }),
    );
    // One statement for the claim's accepted pushes, not one each: at a thousand pushes a second
    // those statements took the connection pool from the sends.
    if (delivered.length) await deps.markDelivered(delivered).catch((err: unknown) => log.error({ err, moves: delivered.length }, 'push: marking delivered failed'));
    if (gone.length) await runPrepared(sql, DELETE_GONE, [JSON.stringify(gone)]);
    return outcomes;
  }

  function requireEnabled() {
    if (!config.enabled || !keys) throw notEnabled();
  }

  return {
    async start() {
      deps.messageJobs.start();
      if (!config.enabled) return;
      keys = await deps.loadKeys();
      sender = deps.makeSender(keys);
      jobs.handle('push', { runBatch, rerunInMs: config.coalesceMs });
      jobs.start();
    },

    vapidPublicKey() {
      requireEnabled();
      return keys!.publicKey;
    },

    async subscribe(userId, input) {
      requireEnabled();
      try {
        await checkEndpoint(input.endpoint, { allowLocal: config.allowLocalEndpoints });
      } catch (err) {
        const reason = err instanceof EndpointRefused ? err.message : 'must resolve to a public address';
        throw new ParleyError('INVALID_INPUT', `The push endpoint was refused: it ${reason}.`, { fields: { endpoint: [reason] } });
      }
      // An endpoint is one browser profile: subscribed again (another user signed in there), it moves.
      await sql.execute(
        `insert into push_subscriptions (user_id, endpoint, p256dh, auth, user_agent) values (?, ?, ?, ?, ?)
         on conflict (endpoint) do update set user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
           user_agent = excluded.user_agent, created_at = clock_timestamp()`,
        [userId, input.endpoint, input.keys.p256dh, input.keys.auth, input.userAgent ?? null],
      );
      const [row] = await sql.execute<Array<{ n: number }>>(
        `with keep as (select id from push_subscriptions where user_id = ? order by created_at desc, id desc limit ?),
         dropped as (delete from push_subscriptions where user_id = ? and id not in (select id from keep))
         select count(*)::int as n from keep`,
        [userId, PUSH_SUBSCRIPTIONS_PER_USER, userId],
      );
      return row!.n;
    },

    async unsubscribe(userId, endpoint) {
      requireEnabled();
      const rows = await sql.execute<Array<unknown>>('delete from push_subscriptions where user_id = ? and endpoint = ? returning id', [userId, endpoint]);
      return rows.length > 0;
    },

    async mute(userId, roomId, until) {
      await sql.execute(
        `insert into room_mutes (chat_room_id, user_id, until) values (?, ?, ?) on conflict (chat_room_id, user_id) do update set until = excluded.until`,
        [roomId, userId, until ?? null],
      );
      return { muted: true, until: until ? new Date(until).toISOString() : null };
    },

    async unmute(userId, roomId) {
      await sql.execute('delete from room_mutes where chat_room_id = ? and user_id = ?', [roomId, userId]);
      return { muted: false, until: null };
    },

    stored(message) {
      deps.messageJobs.stored(message.chat_room);
    },

    flushed: () => deps.messageJobs.flushed(),

    async close() {
      await deps.messageJobs.close();
      sender?.close?.();
    },
  };
}

const origin = (endpoint: string) => {
  try {
    return new URL(endpoint).origin;
  } catch {
    return 'invalid';
  }
};

/** The notification's JSON, its preview cut to fit the encrypted size limit. */
export function payloadOf(m: { room: string; seq: number; unread: number; sender: string; content: string }, preview: boolean): string {
  const base: PushPayload = { type: 'message', tag: `room:${m.room}`, chat_room: m.room, seq: m.seq, unread: m.unread, title: preview ? m.sender : 'New message' };
  if (!preview) return JSON.stringify(base);
  const budget = MAX_ENCRYPTED_BYTES - ENCRYPTION_OVERHEAD_BYTES;
  let body = [...m.content].slice(0, PREVIEW_CHARS).join('');
  for (;;) {
    const json = JSON.stringify({ ...base, sender: m.sender, body });
    if (Buffer.byteLength(json) <= budget) return json;
    body = [...body].slice(0, Math.floor([...body].length * 0.8)).join('');
  }
}
