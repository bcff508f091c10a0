import { ParleyError } from '../../contracts/index.ts';
import { startEpochSweep } from '../infra/db/epoch-sweep.ts';
import { BANS_KEY } from '../live/bus-key.ts';
import { createListenerSets } from '../live/listener-sets.ts';
import type { BusEvent, RoomBus } from '../live/room-bus.ts';
import type { Sql } from '../messages/message-store.ts';

/** Why a user's sockets are closed: their ban, or their account's erasure. */
export type Eviction = ParleyError<'BANNED'> | ParleyError<'TOKEN_INVALID'>;

export interface BanView {
  /** Throws BANNED while `userId`'s ban stands. From memory: no database read per request. */
  check(userId: string): Promise<void>;
  /** Calls `evict` once when the user is banned or erased (at once if banned now); returns the stop function. */
  watch(userId: string, evict: (why: Eviction) => void): () => void;
  /** A ban, unban or erasure of `userId` committed here: re-read it here, and tell the other instances. */
  changed(userId: string, erased?: boolean): Promise<void>;
  close(): void;
}

export const bannedRefusal = (until: number | null) =>
  new ParleyError('BANNED', until === null ? 'This account is banned.' : `This account is banned until ${new Date(until).toISOString()}.`, until === null ? {} : { until: new Date(until).toISOString() });
const erasedRefusal = () => new ParleyError('TOKEN_INVALID', 'The account was erased.', { reason: 'erased' });

const ACTIVE_BANS_SQL = `select user_id, floor(extract(epoch from until) * 1000)::bigint as until from user_bans where until is null or until > now()`;

/**
 * Every ban in force, held by each process: there are few of them, and authentication asks on
 * every request, so one Map lookup replaces a query. It is loaded at start, updated here before a
 * ban call returns, on other instances through the fan-out bus (key `bans`), and, because the
 * engines are at-most-once, every `sweepMs` from the one-row `ban_epoch` when it moved (or after
 * an engine reconnect). A ban whose `until` passes simply stops refusing.
 */
export function createBanView({ bus, sql, sweepMs, onError, onErased }: { bus: RoomBus; sql: Sql; sweepMs: number; onError: (err: unknown) => void; onErased?: (userId: string) => void }): BanView {
  let bans = new Map<string, number | null>();
  // Most users have one socket: a key with one watcher holds it without a Set.
  const watchers = createListenerSets<string, Eviction>(onError);
  // Bumped by every single-user update: a full reload that began before one is read again.
  let gen = 0;

  const banOf = (userId: string): { until: number | null } | undefined => {
    if (!bans.has(userId)) return undefined;
    const until = bans.get(userId)!;
    return until === null || until > Date.now() ? { until } : undefined;
  };

  function evict(userId: string, why: Eviction) {
    watchers.publish(userId, why);
  }

  function apply(userId: string, until: number | null | undefined) {
    gen++;
    if (until === undefined) bans.delete(userId);
    else bans.set(userId, until);
    const ban = banOf(userId);
    if (ban) evict(userId, bannedRefusal(ban.until));
  }

  async function readOne(userId: string) {
    const [row] = await sql.execute<Array<{ until: string | null }>>(`${ACTIVE_BANS_SQL} and user_id = ?`, [userId]);
    apply(userId, row ? (row.until === null ? null : Number(row.until)) : undefined);
  }

  async function loadAll(): Promise<void> {
    const started = gen;
    const rows = await sql.execute<Array<{ user_id: string; until: string | null }>>(ACTIVE_BANS_SQL);
    if (gen !== started) return loadAll();
    const before = bans;
    bans = new Map(rows.map((r) => [r.user_id, r.until === null ? null : Number(r.until)]));
    for (const userId of bans.keys()) if (!before.has(userId)) evict(userId, bannedRefusal(bans.get(userId)!));
  }

  let ready: Promise<void> | undefined;
  const loaded = () =>
    (ready ??= loadAll().catch((err: unknown) => {
      ready = undefined;
      onError(err);
      throw new ParleyError('AUTH_UNAVAILABLE', 'Bans cannot be read right now.', { reason: 'ban list unavailable' });
    }));
  void loaded().catch(() => {});

  bus.subscribe(BANS_KEY, (event: BusEvent) => {
    if (event.type === 'bans_changed') {
      if (event.erased) {
        onErased?.(event.user);
        evict(event.user, erasedRefusal());
      }
      void readOne(event.user).catch(onError);
    } else if (event.type === 'catch-up') void loadAll().catch(onError);
  });

  const sweep = startEpochSweep({ sql, table: 'ban_epoch', periodMs: sweepMs, onMoved: loadAll, onError });

  return {
    async check(userId) {
      await loaded();
      const ban = banOf(userId);
      if (ban) throw bannedRefusal(ban.until);
    },

    watch(userId, fn) {
      let done = false;
      const once = (why: Eviction) => {
        if (done) return;
        stop();
        fn(why);
      };
      const unsubscribe = watchers.subscribe(userId, once);
      const stop = () => {
        done = true;
        unsubscribe();
      };
      // Banned between the socket's authentication and now.
      const ban = banOf(userId);
      if (ban) once(bannedRefusal(ban.until));
      return stop;
    },

    async changed(userId, erased = false) {
      if (erased) {
        onErased?.(userId);
        evict(userId, erasedRefusal());
      }
      await readOne(userId);
      bus.publish(BANS_KEY, { type: 'bans_changed', user: userId, ...(erased && { erased }) });
    },

    close: () => sweep.stop(),
  };
}
