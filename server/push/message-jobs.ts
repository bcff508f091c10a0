import { inJsonKeys } from '../infra/db/json-keys.ts';
import { prepared, runPrepared, type Sql } from '../infra/db/prepared.ts';
import { MESSAGE_COLUMNS } from '../messages/message-store.ts';

/**
 * Makes the jobs that follow from stored messages (push notifications, `message.created`
 * webhooks) from the committed messages themselves, never on the send's path: a send writes
 * nothing for them, and a process killed at any point after a send's commit leaves nothing undone.
 *
 * Each room has a cursor, the last seq whose jobs are made (`message_job_cursors`). A pass takes rooms
 * whose last seq is past their cursor and, in one statement, makes the jobs of the messages in
 * between and moves the cursors: jobs and cursor commit together, so each message's jobs are made
 * exactly once, by whichever instance gets there first (the cursor rows are locked for the pass).
 * A room's seqs are dense and commit in order, so every seq up to the last one a snapshot shows is
 * in that snapshot.
 *
 * Which rooms to look at: the rooms this process just stored messages in (told in memory, right
 * after each commit), and at start and every few minutes the rooms with a recent message whose
 * cursor is behind (a process that died before its pass, or sends stored by another instance that
 * died), found by a scan of the rooms table.
 */
export interface MessageJobs {
  start(): void;
  /** A message was stored and committed in this room. Synchronous and cheap. */
  stored(roomId: string): void;
  /** Resolves once the jobs of every message stored so far are made (tests, shutdown). */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

export interface MessageJobsDeps {
  sql: Sql;
  /**
   * CTEs that make jobs from `stored` (the messages of the pass, as MESSAGE_COLUMNS): push and
   * webhooks each give theirs. None: there is nothing to do, and nothing is done.
   */
  makers: readonly string[];
  /** After a pass made jobs: when its queue should look. */
  woke(): void;
  sweepMs?: number;
  log: { error(obj: object, msg: string): void };
}

/** Messages older than this when their pass runs are not announced (a cursor left behind while push and webhooks were off). */
const MAX_AGE_MS = 24 * 3600_000;
/** At most this many messages of one room per pass: the rest in the next. */
const PER_ROOM = 1_000;
/** Rooms per statement. */
const ROOMS_PER_PASS = 500;
const RETRY_MS = 1_000;
/**
 * A pass starts no sooner than this after the previous one: under a stream of sends, one
 * statement then covers the rooms of many (a pass per few sends cost the database more than the
 * jobs it made), for a few milliseconds more on each push.
 */
const GATHER_MS = 25;

/**
 * One pass over the rooms of a JSON array (given twice): their cursors locked, the jobs `makers`
 * make from the messages past them, the cursors moved; and how many messages it saw, how many
 * rooms have more, and how many of the rooms have no cursor yet.
 */
export function jobPassSql(makers: readonly string[]): string {
  return `
    with cur as (
      select c.chat_room_id as id, c.seq as from_seq from message_job_cursors c
       where ${inJsonKeys('c.chat_room_id', 'uuid')}
       order by c.chat_room_id
         for update),
    rooms as (
      select r.id, least(r.last_seq, cur.from_seq + ${PER_ROOM}) as to_seq, cur.from_seq
        from cur join chat_rooms r on r.id = cur.id
       where r.last_seq > cur.from_seq),
    advanced as (update message_job_cursors c set seq = rooms.to_seq from rooms where c.chat_room_id = rooms.id),
    stored as (
      select m.* from rooms cross join lateral (
        select ${MESSAGE_COLUMNS} from messages
         where chat_room_id = rooms.id and seq > rooms.from_seq and seq <= rooms.to_seq
           and created_at > now() - ${MAX_AGE_MS} * interval '1 millisecond') m),
    ${makers.join(',\n    ')}
    select (select count(*) from stored)::int as messages,
           (select count(*) from rooms r join chat_rooms c on c.id = r.id where c.last_seq > r.to_seq)::int as behind,
           (select count(*) from json_array_elements_text(?::json) i where not exists (select from cur where cur.id = i::uuid))::int as uncharted`;
}

export function createMessageJobs({ sql, makers, woke, sweepMs = 300_000, log }: MessageJobsDeps): MessageJobs {
  const enabled = makers.length > 0;
  let hinted = new Set<string>();
  let running: Promise<void> | undefined;
  let scheduled = false;
  let sweepTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** The last pass failed: its rooms wait for the retry, and flushing waits no longer. */
  let failing = false;

  const passStatement = prepared(jobPassSql(makers));

  /** One pass over these rooms; rooms with no cursor yet (new since the migration) get one at 0 first. */
  async function pass(rooms: string[]) {
    const list = JSON.stringify(rooms);
    const [row] = await runPrepared<{ messages: number; behind: number; uncharted: number }>(sql, passStatement, [list, list]);
    const missing = !row!.uncharted ? [] : await sql.execute<Array<{ id: string }>>(
      `insert into message_job_cursors (chat_room_id, seq)
       select r.id, 0 from chat_rooms r where ${inJsonKeys('r.id', 'uuid')}
           and not exists (select from message_job_cursors c where c.chat_room_id = r.id)
       on conflict do nothing returning chat_room_id as id`,
      [list],
    );
    if (row!.messages > 0) woke();
    // Rooms just given a cursor, and rooms with more than one pass's worth, go again.
    return { again: missing.map((m) => m.id), more: row!.behind > 0 };
  }

  function soon() {
    if (scheduled || closed || !enabled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (!running) running = drain().finally(() => (running = undefined));
    });
  }

  let lastPassAt = 0;

  async function drain() {
    while (hinted.size && !closed) {
      const wait = lastPassAt + GATHER_MS - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      lastPassAt = Date.now();
      const all = [...hinted];
      const rooms = all.slice(0, ROOMS_PER_PASS);
      hinted = new Set(all.slice(ROOMS_PER_PASS));
      try {
        const { again, more } = await pass(rooms);
        failing = false;
        for (const id of again) hinted.add(id);
        if (more) for (const id of rooms) hinted.add(id);
      } catch (err) {
        failing = true;
        log.error({ err, rooms: rooms.length }, 'message jobs: making push and webhook jobs failed; retrying');
        for (const id of rooms) hinted.add(id);
        clearTimeout(retryTimer);
        retryTimer = setTimeout(soon, RETRY_MS);
        retryTimer.unref();
        return;
      }
    }
  }

  async function sweep(windowMs: number) {
    try {
      const rows = await sql.execute<Array<{ id: string }>>(
        `select r.id from chat_rooms r left join message_job_cursors c on c.chat_room_id = r.id
          where r.last_message_at > now() - ? * interval '1 millisecond' and r.last_seq > coalesce(c.seq, 0)`,
        [windowMs],
      );
      for (const { id } of rows) hinted.add(id);
      soon();
    } catch (err) {
      log.error({ err }, 'message jobs: looking for rooms left behind failed');
    }
  }

  return {
    start() {
      if (!enabled || sweepTimer) return;
      void sweep(MAX_AGE_MS);
      sweepTimer = setInterval(() => void sweep(2 * sweepMs), sweepMs);
      sweepTimer.unref();
    },
    stored(roomId) {
      if (!enabled) return;
      hinted.add(roomId);
      soon();
    },
    async flushed() {
      while (enabled && !closed && (running || scheduled || (hinted.size && !failing))) {
        await new Promise((resolve) => setImmediate(resolve));
        await running;
      }
    },
    async close() {
      await this.flushed();
      closed = true;
      clearInterval(sweepTimer);
      clearTimeout(retryTimer);
    },
  };
}
