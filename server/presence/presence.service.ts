import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { PresenceEvent } from '../../contracts/index.ts';
import type { PresenceTiming } from '../infra/config/config.ts';
import { PRESENCE_KEY } from '../live/bus-key.ts';
import { createListenerSets } from '../live/listener-sets.ts';
import type { RoomBus } from '../live/room-bus.ts';

export interface PresenceService {
  /** A WebSocket of `userId` opened (either surface); call the returned function when it closes. */
  connect(userId: string): () => void;
  /** Online on this instance or, as last heard over the bus, on another. */
  isOnline(userId: string): boolean;
  /**
   * `userId`'s presence as of now, as an event: for a reader who could not see it until a moment
   * ago (a request answered, a block lifted), whose stream heard none of the changes before.
   */
  now(userId: string): Promise<PresenceEvent>;
  /** Hears every announced change of `userId`'s presence, from any instance; returns the unsubscribe. */
  watch(userId: string, listener: PresenceListener): () => void;
  /** Resolves once every presence change so far is stored and published (tests, shutdown). */
  settled(): Promise<void>;
  /** After the sockets closed: stops the heartbeat and withdraws this instance from the table. */
  close(): Promise<void>;
}

export type PresenceListener = (event: PresenceEvent) => void;


type Row = Record<string, unknown>;

/**
 * A presence change waiting for its decision: this instance's first socket of the user opened
 * (`arrive`), its last one closed (`leave`), or a dead instance that held the user was reaped
 * (`reap`: no row of ours changes).
 */
interface Transition {
  userId: string;
  kind: 'arrive' | 'leave' | 'reap';
}

/** Users per batch: one statement's parameters and locks stay bounded however many are queued. */
const BATCH_MAX = 500;

/** An instance row heard from within the timeout, as a condition on `presence_instances`. */
const heartbeatFresh = (timeoutMs: number) => `heartbeat_at > now() - ${Math.ceil(timeoutMs)} * interval '1 millisecond'`;

/**
 * One statement for a batch of transitions (a JSON array of `{ n, user_id, kind }`; then this
 * instance's id three times): each user's change to this instance's row, then, per user, whether
 * another live instance holds them (the check does not see the changes, and need not: it leaves
 * this instance out), and their last-seen time, stamped now for those gone offline everywhere. The
 * users' rooms play no part: one event per user reaches every room.
 *
 * Every table is reached by its index from the batch's users: joined to them, the planner expected
 * a hundred users from the JSON and read all of `users` and `presence_users` for each batch.
 */
export function decisionSql(timeoutMs: number): string {
  const fresh = `i.${heartbeatFresh(timeoutMs)}`;
  return `
    with batch as (select * from json_to_recordset(?::json) as b(n int, user_id text, kind text)),
    added as (insert into presence_users (instance_id, user_id) select ?::uuid, user_id from batch where kind = 'arrive' on conflict do nothing),
    removed as (delete from presence_users p where p.instance_id = ?::uuid and p.user_id = any(array(select user_id from batch where kind = 'leave'))),
    decided as (select b.*, h.held is not null as held
                  from batch b left join lateral (
                    select true as held from presence_users u join presence_instances i on i.id = u.instance_id
                     where u.user_id = b.user_id and u.instance_id <> ?::uuid and ${fresh} limit 1) h on true),
    seen as (update users set last_seen_at = date_trunc('minute', now())
              where users.id = any(array(select user_id from decided where kind <> 'arrive' and not held)) returning users.id, users.last_seen_at)
    select d.n, d.held, case when d.kind = 'arrive' then (select u.last_seen_at from users u where u.id = d.user_id) else s.last_seen_at end as last_seen_at
      from decided d left join seen s on s.id = d.user_id`;
}

/**
 * A user is online while at least one of their sockets is open on any instance. The bus carries
 * the events but is at-most-once and forgets, so the truth lives in the database: each instance
 * has a row with a heartbeat (`presence_instances`) and one row per user it holds a socket of
 * (`presence_users`). An instance's first socket of a user and its last one change that row and,
 * under a per-user advisory lock (so instances decide one after another), ask whether another live
 * instance holds the user: only when none does is the change news, published once, to
 * {@link PRESENCE_KEY}. Every instance routes it to the local streams that {@link PresenceService.watch}
 * that user, so a change costs one bus event however many rooms the user has (it was one per room,
 * and a user with thousands of rooms who reconnected in a loop flooded every instance).
 *
 * Changes are debounced per user (see {@link PresenceTiming.offlineDelayMs}): a socket that closes
 * and reopens within the delay announces nothing. Every heartbeat also reaps instances silent for
 * longer than the timeout: their users go offline unless another live instance holds them.
 */
export function createPresenceService({
  bus,
  em,
  timing,
  onError,
}: {
  bus: RoomBus;
  em: () => EntityManager;
  timing: PresenceTiming;
  onError: (err: unknown) => void;
}): PresenceService {
  const instanceId = randomUUID();
  const sockets = new Map<string, number>();
  const heard = new Map<string, boolean>();
  // The streams watching each user: one broken listener starves no other.
  const watchers = createListenerSets<string, PresenceEvent>(onError);
  /** Users with a `presence_users` row of this instance (decided or on its way). */
  const stored = new Set<string>();
  /** When each user's last socket here closed, while they have none. */
  const idleSince = new Map<string, number>();
  /** When this instance last changed each user's row, for the spacing of changes. */
  const lastChange = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();

  bus.subscribe(PRESENCE_KEY, (event) => {
    if (event.type !== 'presence') return;
    heard.set(event.user, event.online);
    watchers.publish(event.user, event);
  });

  /** Alive (again): true when the row had to be created, i.e. others reaped us or this is the start. */
  async function beat(): Promise<boolean> {
    const [row] = await em().execute<Row[]>(
      `insert into presence_instances (id) values (?) on conflict (id) do update set heartbeat_at = now() returning (xmax = 0) as created`,
      [instanceId],
    );
    return row?.created === true;
  }

  /**
   * Every user of a batch locked, in one statement, in key order: two instances batching
   * overlapping users take the shared locks in the same order, so neither can hold one the other
   * waits for while waiting itself. The planner evaluates output expressions after the ORDER BY's
   * sort, so the order of the calls is the sorted one. The keys are those a single user's decision
   * has always locked.
   */
  const LOCK_SQL = `select pg_advisory_xact_lock(hashtextextended(k, 0))
                      from (select 'presence:' || u as k from json_array_elements_text(?::json) u) s order by k`;

  const fresh = heartbeatFresh(timing.timeoutMs);
  const DECISION_SQL = decisionSql(timing.timeoutMs);

  /**
   * Decides a batch (at most one transition per user) in one transaction of four round trips,
   * however many users it holds. The locks come in a statement of their own, so the decision's
   * snapshot (READ COMMITTED) sees every decision made before ours. Returns each transition's news,
   * in the batch's order: none when another live instance holds the user.
   */
  async function decideBatch(batch: Transition[]): Promise<Array<PresenceEvent | undefined>> {
    const rows = await em().transactional(async (tx) => {
      await tx.execute(LOCK_SQL, [JSON.stringify(batch.map((t) => t.userId))]);
      const input = JSON.stringify(batch.map((t, n) => ({ n, user_id: t.userId, kind: t.kind })));
      return tx.execute<Row[]>(DECISION_SQL, [input, instanceId, instanceId, instanceId]);
    });
    const byIndex = new Map(rows.map((r) => [Number(r.n), r]));
    return batch.map((t, n) => {
      const row = byIndex.get(n);
      if (!row || row.held === true) return undefined;
      const seen = row.last_seen_at;
      return { type: 'presence', user: t.userId, online: t.kind === 'arrive', last_seen_at: seen ? new Date(seen as string).toISOString() : null };
    });
  }

  function publish(event: PresenceEvent | undefined) {
    if (event) bus.publish(PRESENCE_KEY, event);
  }

  // Transitions are stored and published in order, so a quick reconnect cannot publish "online"
  // before the "offline" it follows. The first beat comes first: a user row of ours must never sit
  // in the table while our instance row is missing, or others would think it dead.
  let chain: Promise<void> = (async () => {
    await beat();
    const rows = await em().execute<Row[]>(`select distinct u.user_id from presence_users u join presence_instances i on i.id = u.instance_id where i.${fresh}`);
    for (const row of rows) heard.set(row.user_id as string, true);
  })().catch(onError);
  /** Transitions not yet taken into a batch, in the order they happened. */
  let queue: Transition[] = [];
  /** A drain is on the chain: it takes whatever is queued before it ends. */
  let draining = false;

  function enqueue(userId: string, kind: Transition['kind']) {
    queue.push({ userId, kind });
    if (draining) return;
    draining = true;
    chain = chain.then(drain);
  }

  /**
   * Decides the queue batch by batch until it is empty. A reconnect storm queues thousands of
   * arrivals while a batch is out: the next batch takes them all (up to the cap); one transaction
   * per user would make them a chain of serial transactions seconds long.
   */
  async function drain() {
    try {
      // Transitions of the same turn (a burst of sockets authenticated together) share the first batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (queue.length) {
        const batch = takeBatch();
        try {
          for (const event of await decideBatch(batch)) publish(event);
        } catch (err) {
          onError(err);
        }
      }
    } finally {
      // In the same turn as the empty check: a transition queued after it starts a new drain.
      draining = false;
    }
  }

  /**
   * The first queued transition of each user, in queue order, up to the cap. A user's next one
   * waits for a later batch: their transitions are decided and published in the order they happened.
   */
  function takeBatch(): Transition[] {
    const batch: Transition[] = [];
    const rest: Transition[] = [];
    const users = new Set<string>();
    for (const t of queue) {
      if (batch.length < BATCH_MAX && !users.has(t.userId)) {
        users.add(t.userId);
        batch.push(t);
      } else rest.push(t);
    }
    queue = rest;
    return batch;
  }

  /** Reaps instances that stopped beating; their users each get the decision a closing socket gets, in the same queue. */
  async function reap() {
    const gone = await em().execute<Row[]>(
      `with dead as (delete from presence_instances where not (${fresh}) returning id)
       delete from presence_users where instance_id in (select id from dead) returning user_id`,
    );
    for (const user of new Set(gone.map((r) => r.user_id as string))) {
      // A user we hold ourselves is still online; our own last socket's close will decide.
      if (!stored.has(user)) enqueue(user, 'reap');
    }
  }

  let beating = false;
  const heartbeat = setInterval(() => {
    if (beating) return;
    beating = true;
    void (async () => {
      // Paused past the timeout (a long stall, a database outage): others reaped our rows, so our users are announced again.
      if (await beat()) for (const user of stored) enqueue(user, 'arrive');
      await reap();
      const now = Date.now();
      for (const [user, at] of lastChange) if (at + timing.offlineDelayMs <= now) lastChange.delete(user);
    })()
      .catch(onError)
      .finally(() => (beating = false));
  }, timing.heartbeatMs);
  heartbeat.unref();

  /**
   * Brings the user's row here in line with their sockets: at once for a first socket, after the
   * delay for a last one closed, and never sooner than the delay after the previous change.
   */
  function reconcile(userId: string) {
    clearTimeout(timers.get(userId));
    timers.delete(userId);
    const online = sockets.has(userId);
    if (online === stored.has(userId)) return;
    const now = Date.now();
    const due = Math.max(online ? now : idleSince.get(userId)! + timing.offlineDelayMs, (lastChange.get(userId) ?? -Infinity) + timing.offlineDelayMs);
    if (due > now) return void timers.set(userId, setTimeout(() => reconcile(userId), due - now).unref());
    lastChange.set(userId, now);
    if (online) {
      stored.add(userId);
      enqueue(userId, 'arrive');
    } else {
      stored.delete(userId);
      idleSince.delete(userId);
      enqueue(userId, 'leave');
    }
  }

  return {
    connect(userId) {
      const n = (sockets.get(userId) ?? 0) + 1;
      sockets.set(userId, n);
      if (n === 1) {
        idleSince.delete(userId);
        reconcile(userId);
      }
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = sockets.get(userId)! - 1;
        if (left > 0) return void sockets.set(userId, left);
        sockets.delete(userId);
        idleSince.set(userId, Date.now());
        reconcile(userId);
      };
    },
    isOnline: (userId) => sockets.has(userId) || heard.get(userId) === true,
    async now(userId) {
      const [row] = await em().execute<Row[]>(
        `select exists (select 1 from presence_users u join presence_instances i on i.id = u.instance_id where u.user_id = ? and i.${fresh}) as held,
                (select last_seen_at from users where id = ?) as last_seen_at`,
        [userId, userId],
      );
      const seen = row?.last_seen_at;
      return { type: 'presence', user: userId, online: sockets.has(userId) || row?.held === true, last_seen_at: seen ? new Date(seen as string).toISOString() : null };
    },
    watch: (userId, listener) => watchers.subscribe(userId, listener),
    settled: () => chain,
    async close() {
      clearInterval(heartbeat);
      // Offline changes still waiting out their delay are stored now: their last-seen times count.
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      for (const user of stored) {
        if (sockets.has(user)) continue;
        stored.delete(user);
        enqueue(user, 'leave');
      }
      await chain;
      // Users still held here (sockets the shutdown did not close) are left to the others' reaper.
      if (!sockets.size) await em().execute('delete from presence_instances where id = ?', [instanceId]).catch(onError);
    },
  };
}
