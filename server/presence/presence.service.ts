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
  const fresh = `heartbeat_at > now() - ${Math.ceil(timing.timeoutMs)} * interval '1 millisecond'`;

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
   * Under the user's lock (taken in a statement of its own, so the next one's snapshot sees every
   * decision made before ours): `change` edits this instance's row and, in the same statement, the
   * user's state anywhere decides the news. The check does not see the change, and need not: it
   * leaves this instance out. One round trip for the decision, the user's rooms included.
   */
  async function decide(userId: string, online: boolean, change?: string): Promise<PresenceEvent | undefined> {
    return em().transactional(async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`presence:${userId}`]);
      const [row] = await tx.execute<Row[]>(
        `with change as (${change ?? 'select'}),
         elsewhere as (select exists (select 1 from presence_users u join presence_instances i on i.id = u.instance_id
                         where u.user_id = ? and u.instance_id <> ? and i.${fresh}) as held),
         seen as (${online ? 'select last_seen_at from users' : "update users set last_seen_at = date_trunc('minute', now())"}
                  where id = ? and not (select held from elsewhere)${online ? '' : ' returning last_seen_at'})
         select (select held from elsewhere) as held, (select last_seen_at from seen) as last_seen_at`,
        [...(change ? [instanceId, userId] : []), userId, instanceId, userId],
      );
      if (!row || row.held === true) return undefined;
      const seen = row.last_seen_at;
      return { type: 'presence', user: userId, online, last_seen_at: seen ? new Date(seen as string).toISOString() : null };
    });
  }

  function publish(event: PresenceEvent | undefined) {
    if (event) bus.publish(PRESENCE_KEY, event);
  }

  const arrive = async (userId: string) =>
    publish(await decide(userId, true, 'insert into presence_users (instance_id, user_id) values (?, ?) on conflict do nothing'));
  const leave = async (userId: string) => publish(await decide(userId, false, 'delete from presence_users where instance_id = ? and user_id = ?'));

  // Transitions are stored and published one at a time, so a quick reconnect cannot publish
  // "online" before the "offline" it follows. The first beat comes first: a user row of ours must
  // never sit in the table while our instance row is missing, or others would think it dead.
  let chain: Promise<void> = (async () => {
    await beat();
    const rows = await em().execute<Row[]>(`select distinct u.user_id from presence_users u join presence_instances i on i.id = u.instance_id where i.${fresh}`);
    for (const row of rows) heard.set(row.user_id as string, true);
  })().catch(onError);
  const enqueue = (step: () => Promise<void>) => {
    chain = chain.then(step).catch(onError);
  };

  /** Reaps instances that stopped beating; their users each get the same decision a closing socket gets. */
  async function reap() {
    const gone = await em().execute<Row[]>(
      `with dead as (delete from presence_instances where not (${fresh}) returning id)
       delete from presence_users where instance_id in (select id from dead) returning user_id`,
    );
    for (const user of new Set(gone.map((r) => r.user_id as string))) {
      // A user we hold ourselves is still online; our own last socket's close will decide.
      if (!stored.has(user)) publish(await decide(user, false));
    }
  }

  let beating = false;
  const heartbeat = setInterval(() => {
    if (beating) return;
    beating = true;
    void (async () => {
      // Paused past the timeout (a long stall, a database outage): others reaped our rows, so our users are announced again.
      if (await beat()) for (const user of stored) enqueue(() => arrive(user));
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
      enqueue(() => arrive(userId));
    } else {
      stored.delete(userId);
      idleSince.delete(userId);
      enqueue(() => leave(userId));
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
        enqueue(() => leave(user));
      }
      await chain;
      // Users still held here (sockets the shutdown did not close) are left to the others' reaper.
      if (!sockets.size) await em().execute('delete from presence_instances where id = ?', [instanceId]).catch(onError);
    },
  };
}
