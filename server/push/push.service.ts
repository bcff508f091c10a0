import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, PUSH_SUBSCRIPTIONS_PER_USER, type Message, type PushPayload, type PushSubscribeInput, type RoomMute } from '../../contracts/index.ts';
import type { PushConfig } from '../infra/config/config.ts';
import type { Job, JobOutcome, JobQueue } from '../infra/jobs/job-queue.ts';
import { checkEndpoint, EndpointRefused } from './endpoint-guard.ts';
import { ENCRYPTION_OVERHEAD_BYTES, MAX_ENCRYPTED_BYTES, type PushSender, type PushTarget, type VapidKeys } from './push-sender.ts';

type Sql = ReturnType<EntityManager['getConnection']>;

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
   * A message was stored. Cheap and synchronous: recipients are picked and jobs written later, in
   * one statement for everything stored in the meantime, never on the send's path.
   */
  stored(message: Message): void;
  /** Resolves once everything stored so far has its job written (tests). */
  flushed(): Promise<void>;
  /** Writes the jobs still waiting (the queue itself is closed by its owner). */
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
  /** A push service accepted a notification: the recipient's delivered marker moves to `seq`. */
  markDelivered(roomId: string, userId: string, seq: number): Promise<void>;
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

/** Stored messages waiting for their jobs to be written, at most; past it a burst's pushes are dropped (logged). */
const MAX_PENDING = 10_000;
/** A push job's sends to a device that keep failing stop after this many runs. */
const MAX_PUSH_ATTEMPTS = 8;
const TTL_SECONDS = 24 * 3600;
/** The longest preview, before the byte budget of the encrypted payload cuts further. */
const PREVIEW_CHARS = 1_000;

/** How long "nobody has a device" is believed before it is asked again. */
const NO_DEVICES_RECHECK_MS = 5_000;

const notEnabled = () => new ParleyError('NOT_FOUND', 'Push is off on this server (PUSH=off).');

export function createPushService(deps: PushDeps): PushService {
  const { config, sql, jobs, log } = deps;
  let keys: VapidKeys | undefined;
  let sender: PushSender | undefined;
  let pending: Array<{ room: string; sender: string }> = [];
  let dropped = 0;
  let flushing: Promise<void> = Promise.resolve();
  let scheduled = false;
  /** Until when no job needs writing because no user has a device (a subscription elsewhere is seen within the recheck). */
  let noDevicesUntil = 0;

  function flushSoon() {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushing = flushing.then(writeJobs);
    });
  }

  /** One statement for every message stored since the last: recipients with a device, in rooms they have not muted. */
  async function writeJobs() {
    const batch = pending;
    pending = [];
    if (dropped) log.warn({ dropped }, 'push: job writes fell behind; some messages will not be pushed');
    dropped = 0;
    if (!batch.length || Date.now() < noDevicesUntil) return;
    try {
      // With no device anywhere (a deployment that does not use push) a send costs no statement at all.
      if (noDevicesUntil !== -1) {
        const [row] = await sql.execute<Array<{ any: boolean }>>('select exists (select from push_subscriptions) as any');
        if (!row?.any) return void (noDevicesUntil = Date.now() + NO_DEVICES_RECHECK_MS);
        noDevicesUntil = -1;
      }
      const added = await jobs.addFrom(
        `select distinct 'push'::text as kind, r.id::text || ':' || t.recipient as key,
                jsonb_build_object('room', r.id, 'user', t.recipient) as payload, ?::bigint as delay_ms
           from json_to_recordset(?::json) as m(room uuid, sender text)
           join chat_rooms r on r.id = m.room
           cross join lateral (select case when r.participant1_id = m.sender then r.participant2_id else r.participant1_id end as recipient) t
          where exists (select from push_subscriptions s where s.user_id = t.recipient)
            and not exists (select from room_mutes mu where mu.chat_room_id = r.id and mu.user_id = t.recipient and (mu.until is null or mu.until > now()))`,
        [config.coalesceMs, JSON.stringify(batch)],
      );
      if (added) jobs.wakeIn(config.coalesceMs);
    } catch (err) {
      log.error({ err, messages: batch.length }, 'push: writing jobs failed; these messages are not pushed');
    }
  }

  async function runPush(job: Job): Promise<JobOutcome> {
    const task = job.payload as PushJob;
    if (!sender) return { done: true };
    // Presence says online for its offline delay after the last socket closed: look again once it
    // is over, or a message sent in that window would never be pushed.
    if (deps.isOnline(task.user)) {
      return (task.deferred ?? 0) < 1 ? { retryInMs: deps.offlineDelayMs + 250, payload: { ...task, deferred: (task.deferred ?? 0) + 1 } } : { done: true };
    }
    const [state] = await sql.execute<Array<{ seq: string; sender_id: string; content: string; reached: string; unread: string; muted: boolean }>>(
      `select m.seq, m.sender_id, m.content,
              greatest((select seq from read_markers where chat_room_id = m.chat_room_id and user_id = ?),
                       (select seq from delivered_markers where chat_room_id = m.chat_room_id and user_id = ?), 0) as reached,
              (select count(*) from messages u where u.chat_room_id = m.chat_room_id and u.sender_id <> ? and u.deleted_at is null
                  and u.seq > coalesce((select seq from read_markers where chat_room_id = m.chat_room_id and user_id = ?), 0)) as unread,
              exists (select from room_mutes where chat_room_id = m.chat_room_id and user_id = ? and (until is null or until > now())) as muted
         from messages m
        where m.chat_room_id = ? and m.sender_id <> ? and m.deleted_at is null
        order by m.seq desc limit 1`,
      [task.user, task.user, task.user, task.user, task.user, task.room, task.user],
    );
    // Nothing to announce: deleted, muted, or already on one of the recipient's devices.
    if (!state || state.muted || Number(state.seq) <= Number(state.reached)) return { done: true };
    const targets = await sql.execute<Array<PushTarget & { id: string }>>(
      `select id, endpoint, p256dh, auth from push_subscriptions where user_id = ?${task.only ? ' and id::text in (select json_array_elements_text(?::json))' : ''}`,
      task.only ? [task.user, JSON.stringify(task.only)] : [task.user],
    );
    if (!targets.length) return { done: true };
    const seq = Number(state.seq);
    const message = {
      payload: payloadOf({ room: task.room, seq, unread: Number(state.unread), sender: state.sender_id, content: state.content }, config.preview),
      topic: task.room.replace(/-/g, ''),
      ttlSeconds: TTL_SECONDS,
    };
    const results = await Promise.all(targets.map(async (target) => ({ target, result: await sender!.send(target, message) })));
    const retry: string[] = [];
    let retryAfter = 0;
    let accepted = false;
    for (const { target, result } of results) {
      if (result.outcome === 'accepted') accepted = true;
      else if (result.outcome === 'gone') await sql.execute('delete from push_subscriptions where id = ?', [target.id]);
      else if (result.outcome === 'retry') {
        retry.push(target.id);
        retryAfter = Math.max(retryAfter, result.retryAfterMs ?? 0);
        log.warn({ endpoint: origin(target.endpoint), status: result.status, reason: result.reason }, 'push: will retry');
      } else log.warn({ endpoint: origin(target.endpoint), status: result.status, reason: result.reason }, 'push: refused');
    }
    if (accepted) await deps.markDelivered(task.room, task.user, seq).catch((err: unknown) => log.error({ err }, 'push: marking delivered failed'));
    if (!retry.length || job.attempts >= MAX_PUSH_ATTEMPTS) return { done: true };
    const backoff = Math.min(1_000 * 2 ** (job.attempts - 1), 300_000);
    return { retryInMs: Math.max(retryAfter, retryAfter ? 0 : backoff), payload: { ...task, only: retry }, error: 'push service asked for a retry' };
  }

  function requireEnabled() {
    if (!config.enabled || !keys) throw notEnabled();
  }

  return {
    async start() {
      if (!config.enabled) return;
      keys = await deps.loadKeys();
      sender = deps.makeSender(keys);
      jobs.handle('push', { run: runPush, rerunInMs: config.coalesceMs });
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
      noDevicesUntil = -1;
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
      if (!sender) return;
      if (pending.length >= MAX_PENDING) {
        dropped++;
        return;
      }
      pending.push({ room: message.chat_room, sender: message.sender });
      flushSoon();
    },

    async flushed() {
      await new Promise((resolve) => setImmediate(resolve));
      await flushing;
    },

    async close() {
      await this.flushed();
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
