import { SAFETY_KEY } from '../live/bus-key.ts';
import type { BusEvent, RoomBus } from '../live/room-bus.ts';
import type { Sql } from '../messages/message-store.ts';

/** Bus key of block changes: every instance listens to it. */

/** What one reader may not see of the users it is severed from; asked per event, so it follows blocks made later. */
export interface EventScreen {
  hides(event: { type: string; user?: string }): boolean;
  /** The reader is gone: its view may be dropped. */
  release(): void;
}

export interface BlockView {
  /** The users `user` is severed from (a block either way), loaded on first use. */
  severedFrom(user: string): Promise<ReadonlySet<string>>;
  /** Keeps `viewer`'s view loaded until released, and hides the typing, presence and read events of users severed from them. */
  screen(viewer: string): Promise<EventScreen>;
  /** A block between `a` and `b` committed here: re-read both at once and tell the other instances. */
  changed(a: string, b: string): Promise<void>;
  close(): void;
}

interface Entry {
  others: Set<string>;
  holds: number;
  usedAt: number;
  /** Bumped by every invalidation; a read that started under an older one is read again. */
  gen: number;
  loaded?: Promise<void>;
}

/** Events that speak for a user and are hidden between a blocked pair. Messages stay: history is readable for both. */
const SCREENED = new Set(['typing', 'presence', 'read', 'delivered']);

/**
 * This process's view of who is severed from whom, for the users it serves now. Live events are
 * filtered against it synchronously, so it is kept loaded rather than asked per event:
 * a change made here re-reads both users before the call returns; the fan-out bus tells the other
 * instances, which re-read the two users they hold; and every `sweepMs` each instance reads the
 * one-row `safety_epoch` and, if it moved, re-reads every user it holds — the bound when the
 * bus lost the event (the engines are at-most-once). Entries nobody holds are dropped after idling
 * two sweeps.
 */
export function createBlockView({ bus, sql, sweepMs, onError }: { bus: RoomBus; sql: Sql; sweepMs: number; onError: (err: unknown) => void }): BlockView {
  const entries = new Map<string, Entry>();
  let epoch: string | undefined;

  async function read(users: string[]) {
    const gens = users.map((u) => entries.get(u)?.gen);
    const rows = await sql.execute<Array<{ blocker_id: string; blocked_id: string }>>(
      `with ids as (select json_array_elements_text(?::json) as id)
       select blocker_id, blocked_id from user_blocks where blocker_id in (select id from ids)
       union select blocker_id, blocked_id from user_blocks where blocked_id in (select id from ids)`,
      [JSON.stringify(users)],
    );
    const found = new Map(users.map((u) => [u, new Set<string>()]));
    for (const { blocker_id, blocked_id } of rows) {
      found.get(blocker_id)?.add(blocked_id);
      found.get(blocked_id)?.add(blocker_id);
    }
    const stale: string[] = [];
    users.forEach((u, i) => {
      const entry = entries.get(u);
      if (!entry) return;
      if (entry.gen === gens[i]) entry.others = found.get(u)!;
      else stale.push(u);
    });
    if (stale.length) await read(stale);
  }

  function entryOf(user: string): Entry {
    const known = entries.get(user);
    if (known) {
      known.usedAt = Date.now();
      return known;
    }
    const entry: Entry = { others: new Set(), holds: 0, usedAt: Date.now(), gen: 0 };
    entries.set(user, entry);
    entry.loaded = read([user]);
    // A failed first read leaves no entry behind: the next caller reads again.
    entry.loaded.catch(() => entries.get(user) === entry && entries.delete(user));
    return entry;
  }

  async function reread(users: string[]) {
    const held = users.filter((u) => entries.has(u));
    for (const u of held) entries.get(u)!.gen++;
    if (held.length) await read(held);
  }

  bus.subscribe(SAFETY_KEY, (event: BusEvent) => {
    if (event.type === 'blocks_changed') void reread(event.users).catch(onError);
    // The engine may have lost events: everything held is read again.
    else if (event.type === 'catch-up') void reread([...entries.keys()]).catch(onError);
  });

  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void (async () => {
      const now = Date.now();
      for (const [user, entry] of entries) if (entry.holds === 0 && now - entry.usedAt > 2 * sweepMs) entries.delete(user);
      const [row] = await sql.execute<Array<{ n: string }>>('select n from safety_epoch where id = 1');
      const seen = String(row?.n ?? 0);
      // Read before the users, so whatever moved the epoch is in what they read. The first sweep
      // reads everyone: entries loaded before any epoch was known may predate a change.
      if (seen !== epoch) await reread([...entries.keys()]);
      epoch = seen;
    })()
      .catch(onError)
      .finally(() => (sweeping = false));
  }, sweepMs);
  sweeper.unref();

  return {
    async severedFrom(user) {
      const entry = entryOf(user);
      await entry.loaded;
      return entry.others;
    },

    async screen(viewer) {
      const entry = entryOf(viewer);
      entry.holds++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        entry.holds--;
        entry.usedAt = Date.now();
      };
      try {
        await entry.loaded;
      } catch (err) {
        release();
        throw err;
      }
      return {
        // The entry's set is replaced on every re-read: look it up at each event.
        hides: (event) => event.user !== undefined && event.user !== viewer && SCREENED.has(event.type) && entry.others.has(event.user),
        release,
      };
    },

    async changed(a, b) {
      await reread([a, b]);
      bus.publish(SAFETY_KEY, { type: 'blocks_changed', users: [a, b] });
    },

    close: () => clearInterval(sweeper),
  };
}
