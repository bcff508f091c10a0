import { startEpochSweep } from '../infra/db/epoch-sweep.ts';
import { prepared, runPrepared } from '../infra/db/prepared.ts';
import { SAFETY_KEY } from '../live/bus-key.ts';
import type { BusEvent, RoomBus } from '../live/room-bus.ts';
import type { Sql } from '../messages/message-store.ts';
import { createReadBatcher } from '../messages/read-batcher.ts';

/** Bus key of block changes: every instance listens to it. */

/** What one reader may not see of the users it is severed from; asked per event, so it follows blocks made later. */
export interface EventScreen {
  hides(event: { type: string; user?: string }): boolean;
  /**
   * Called after each re-read of the reader's view with what it could see before and now: a
   * feed shows a partner's presence the moment it becomes visible (an answered request, an
   * unblock), rather than at that partner's next change. Returns the unsubscribe.
   */
  onChange(listener: VisibilityChange): () => void;
  /** The reader is gone: its view may be dropped. */
  release(): void;
}

/** What one viewer may see of another user: the rules of the screen, for lists and snapshots. */
export interface Visibility {
  /** A block either way, or a declined request between them. */
  severed(other: string): boolean;
  presenceOf(other: string): boolean;
  receiptsOf(other: string): boolean;
  typingOf(other: string): boolean;
}

export type VisibilityChange = (before: Visibility, after: Visibility) => void;

export interface BlockView {
  /** The users `user` is severed from (a block either way, or a declined request), loaded on first use. */
  severedFrom(user: string): Promise<ReadonlySet<string>>;
  /** What `viewer` may see of others now, loaded on first use. */
  visibility(viewer: string): Promise<Visibility>;
  /** Keeps `viewer`'s view loaded until released, and hides the typing, presence and read events of users severed from them. */
  screen(viewer: string): Promise<EventScreen>;
  /** A block or a request's answer between `a` and `b` committed here: re-read both at once and tell the other instances. */
  changed(a: string, b: string): Promise<void>;
  /** `user`'s privacy settings changed here: every entry may name them as a partner, so all are read again, here and elsewhere. */
  privacyChanged(user: string): Promise<void>;
  close(): void;
}

interface Seen {
  /** Blocks either way and declined requests. */
  others: ReadonlySet<string>;
  /** Recipients of the viewer's requests not answered yet: the viewer may not watch them. */
  pending: ReadonlySet<string>;
  /** Partners who hide their presence, or their read receipts, from everyone. */
  privatePresence: ReadonlySet<string>;
  privateReceipts: ReadonlySet<string>;
  /** The viewer's own settings: whoever hides theirs sees nobody's (reciprocity). */
  showPresence: boolean;
  sendReceipts: boolean;
}

// Most users have no blocks, requests or private partners: every user connected holds an entry,
// and four empty sets apiece cost more than an idle socket's own state.
const NONE: ReadonlySet<string> = new Set();
const nothingSeen = (): Seen => ({ others: NONE, pending: NONE, privatePresence: NONE, privateReceipts: NONE, showPresence: true, sendReceipts: true });
function addTo(seen: Seen, field: 'others' | 'pending' | 'privatePresence' | 'privateReceipts', user: string) {
  if (seen[field] === NONE) seen[field] = new Set();
  (seen[field] as Set<string>).add(user);
}

/** One listener alone, a Set from the second: a viewer mostly has one screen with one listener, and a Set weighs more than both. */
type Listeners = VisibilityChange | Set<VisibilityChange>;
const withListener = (held: Listeners | undefined, listener: VisibilityChange): Listeners =>
  held === undefined || held === listener ? listener : typeof held === 'function' ? new Set([held, listener]) : held.add(listener);
function withoutListener(held: Listeners | undefined, listener: VisibilityChange): Listeners | undefined {
  if (held === listener) return undefined;
  if (typeof held === 'object') held.delete(listener);
  return held;
}
const listenersIn = (held: Listeners | undefined): Iterable<VisibilityChange> => (held === undefined ? [] : typeof held === 'function' ? [held] : [...held]);

interface Entry {
  seen: Seen;
  holds: number;
  usedAt: number;
  /** Bumped by every invalidation; a read that started under an older one is read again. */
  gen: number;
  /** The open screens' listeners of this viewer (see {@link EventScreen.onChange}). */
  listeners?: Listeners;
  loaded?: Promise<void>;
}

/**
 * The one rule of what a viewer sees of another user. Messages are never hidden (history stays
 * readable); typing, presence and receipts (`read`, `delivered`) are hidden between a blocked pair,
 * from the opener of a request its recipient has not answered, and by privacy settings.
 */
const watched = (seen: Seen, u: string) => !seen.others.has(u) && !seen.pending.has(u);
const presenceSeen = (seen: Seen, u: string) => watched(seen, u) && seen.showPresence && !seen.privatePresence.has(u);
const receiptsSeen = (seen: Seen, u: string) => watched(seen, u) && seen.sendReceipts && !seen.privateReceipts.has(u);

function visibilityOf(seen: Seen): Visibility {
  return {
    severed: (u) => seen.others.has(u),
    typingOf: (u) => watched(seen, u),
    presenceOf: (u) => presenceSeen(seen, u),
    receiptsOf: (u) => receiptsSeen(seen, u),
  };
}

/** Asked for every live event of every reader: no allocation, messages answered first. */
function hidesFor(viewer: string, seen: Seen, event: { type: string; user?: string }): boolean {
  const u = event.user;
  if (u === undefined || u === viewer) return false;
  switch (event.type) {
    case 'typing':
      return !watched(seen, u);
    case 'presence':
      return !presenceSeen(seen, u);
    case 'read':
    case 'delivered':
      return !receiptsSeen(seen, u);
    default:
      return false;
  }
}

/**
 * Who is severed from the users of a JSON array (kind b: either way; p: `a` waits for `b` to
 * answer): from the blocks and the partial indexes on unanswered and declined rooms. The users are
 * compared as an array, which the indexes answer (see infra/db/json-keys.ts).
 */
export const BLOCK_PAIRS_SQL = `with ids as (select json_array_elements_text(?::json) as id)
         select 'b' as kind, blocker_id as a, blocked_id as b from user_blocks where blocker_id = any(array(select id from ids))
         union select 'b', blocker_id, blocked_id from user_blocks where blocked_id = any(array(select id from ids))
         union select 'b', participant1_id, participant2_id from chat_rooms where declined_at is not null and participant1_id = any(array(select id from ids))
         union select 'b', participant1_id, participant2_id from chat_rooms where declined_at is not null and participant2_id = any(array(select id from ids))
         union select 'p', participant1_id, participant2_id from chat_rooms where accepted_at is null and participant1_id = any(array(select id from ids))`;

/** Privacy rows of the users of a JSON array, only for those who hide something: theirs, and their partners'. */
export const PRIVACY_SQL = `with ids as (select json_array_elements_text(?::json) as id)
         select u.id as viewer, null as other, u.show_presence, u.send_read_receipts from users u
          where u.id = any(array(select id from ids)) and not (u.show_presence and u.send_read_receipts)
         union all select r.participant1_id, u.id, u.show_presence, u.send_read_receipts from chat_rooms r join users u on u.id = r.participant2_id
          where r.participant1_id = any(array(select id from ids)) and not (u.show_presence and u.send_read_receipts)
         union all select r.participant2_id, u.id, u.show_presence, u.send_read_receipts from chat_rooms r join users u on u.id = r.participant1_id
          where r.participant2_id = any(array(select id from ids)) and not (u.show_presence and u.send_read_receipts)`;

const BLOCK_PAIRS = prepared(BLOCK_PAIRS_SQL);
const PRIVACY = prepared(PRIVACY_SQL);

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

  async function read(users: string[]) {
    const gens = users.map((u) => entries.get(u)?.gen);
    const ids = JSON.stringify(users);
    // Pairs (kind b: severed either way, p: `a` waits for `b` to answer) come from the partial
    // indexes on unanswered and declined rooms; privacy rows only for users who hide something.
    const [pairs, privacy] = await Promise.all([
      runPrepared<{ kind: 'b' | 'p'; a: string; b: string }>(sql, BLOCK_PAIRS, [ids]),
      runPrepared<{ viewer: string; other: string | null; show_presence: boolean; send_read_receipts: boolean }>(sql, PRIVACY, [ids]),
    ]);
    const found = new Map(users.map((u) => [u, nothingSeen()]));
    for (const { kind, a, b } of pairs) {
      const seenA = found.get(a);
      const seenB = found.get(b);
      if (kind === 'p') {
        if (seenA) addTo(seenA, 'pending', b);
      } else {
        if (seenA) addTo(seenA, 'others', b);
        if (seenB) addTo(seenB, 'others', a);
      }
    }
    for (const { viewer, other, show_presence, send_read_receipts } of privacy) {
      const seen = found.get(viewer);
      if (!seen) continue;
      if (other === null) Object.assign(seen, { showPresence: show_presence, sendReceipts: send_read_receipts });
      else {
        if (!show_presence) addTo(seen, 'privatePresence', other);
        if (!send_read_receipts) addTo(seen, 'privateReceipts', other);
      }
    }
    const stale: string[] = [];
    users.forEach((u, i) => {
      const entry = entries.get(u);
      if (!entry) return;
      if (entry.gen !== gens[i]) return void stale.push(u);
      const before = entry.seen;
      entry.seen = found.get(u)!;
      if (entry.listeners) {
        const [was, now] = [visibilityOf(before), visibilityOf(entry.seen)];
        for (const listener of listenersIn(entry.listeners)) {
          try {
            listener(was, now);
          } catch (err) {
            onError(err);
          }
        }
      }
    });
    if (stale.length) await read(stale);
  }

  // Users first seen in one turn (a reconnect storm) are read together.
  const firstReads = createReadBatcher<string, void>({
    keyOf: (user) => user,
    run: async (users) => {
      await read(users);
      return users.map(() => undefined);
    },
  });

  function entryOf(user: string): Entry {
    const known = entries.get(user);
    if (known) {
      known.usedAt = Date.now();
      return known;
    }
    const entry: Entry = { seen: nothingSeen(), holds: 0, usedAt: Date.now(), gen: 0 };
    entries.set(user, entry);
    entry.loaded = firstReads.load(user);
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
    if (event.type === 'blocks_changed') void reread(event.everyone ? [...entries.keys()] : event.users).catch(onError);
    // The engine may have lost events: everything held is read again.
    else if (event.type === 'catch-up') void reread([...entries.keys()]).catch(onError);
  });

  const sweep = startEpochSweep({
    sql,
    table: 'safety_epoch',
    periodMs: sweepMs,
    // Entries no reader holds, unused for two periods, go first: the view's memory follows its readers.
    beforeEach: () => {
      const now = Date.now();
      for (const [user, entry] of entries) if (entry.holds === 0 && now - entry.usedAt > 2 * sweepMs) entries.delete(user);
    },
    onMoved: () => reread([...entries.keys()]),
    onError,
  });

  return {
    async severedFrom(user) {
      const entry = entryOf(user);
      await entry.loaded;
      return entry.seen.others;
    },

    async visibility(viewer) {
      const entry = entryOf(viewer);
      await entry.loaded;
      return visibilityOf(entry.seen);
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
      // Most screens have no listener, or one: a screen lives as long as its feed.
      let mine: Listeners | undefined;
      return {
        // The entry's set is replaced on every re-read: look it up at each event.
        hides: (event) => hidesFor(viewer, entry.seen, event),
        onChange(listener) {
          entry.listeners = withListener(entry.listeners, listener);
          mine = withListener(mine, listener);
          return () => {
            entry.listeners = withoutListener(entry.listeners, listener);
            mine = withoutListener(mine, listener);
          };
        },
        release() {
          for (const listener of listenersIn(mine)) entry.listeners = withoutListener(entry.listeners, listener);
          mine = undefined;
          release();
        },
      };
    },

    async changed(a, b) {
      await reread([a, b]);
      bus.publish(SAFETY_KEY, { type: 'blocks_changed', users: [a, b] });
    },

    async privacyChanged(user) {
      await reread([...entries.keys()]);
      bus.publish(SAFETY_KEY, { type: 'blocks_changed', users: [user], everyone: true });
    },

    close: () => sweep.stop(),
  };
}
