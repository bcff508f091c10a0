import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError } from '../../../contracts/index.ts';

/** Runs raw SQL on one server: the primary's connection or a replica's. */
export type Sql = ReturnType<EntityManager['getConnection']>;

/** The reads that may be answered by a replica. */
export type ReplicaRead = 'history' | 'rooms' | 'feed';

/**
 * Why such a read went to the primary: the replica had not replayed every write committed before
 * the read began (`behind`), could not be reached or is not a standby (`down`), or failed the
 * read itself, which the primary then answered (`error`).
 */
export type FallbackReason = 'behind' | 'down' | 'error';

export interface ReadRouterOptions {
  primary: Sql;
  /** Each replica's connection and a name for logs. */
  replicas: ReadonlyArray<{ name: string; sql: Sql }>;
  onRead?(read: ReplicaRead, server: 'replica' | 'primary'): void;
  onFallback?(reason: FallbackReason): void;
  /** A replica was found down or not a standby, or failed a read; it is tried again after `retryMs`. */
  onReplicaDown?(name: string, err: unknown): void;
  /** How long a replica found down (or far behind) is left alone before it is asked again. */
  retryMs?: number;
  /** A replica further behind than this many bytes of WAL is left alone for `retryMs`: it will not catch up within one read. */
  farBehindBytes?: bigint;
  /** The longest a read waits for a replica to say how far it has replayed. */
  checkTimeoutMs?: number;
}

export interface ReadRouter {
  /**
   * Runs `read` on a replica that has replayed every write the primary had committed when the
   * call began, so a caller reads its own writes (made on any instance); on the primary otherwise.
   * Reads must not write: a replica refuses it.
   */
  run<T>(read: ReplicaRead, fn: (sql: Sql) => Promise<T>): Promise<T>;
  readonly replicaCount: number;
}

interface Replica {
  name: string;
  sql: Sql;
  /** The furthest replay position seen: it only grows, so a read fenced at or before it may go there at once. */
  replayed: bigint;
  skipUntil: number;
  /** Why it is being left alone, for the reads that go to the primary meanwhile. */
  skipped: FallbackReason;
  replayedNow: () => Promise<bigint>;
}

/** `16/B374D848` as a number of bytes. */
export function parseLsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/**
 * One query for every caller that asks before it is sent (within one turn of the event loop), so
 * each caller's answer is read after it asked; concurrent reads share a round trip.
 */
function sharedAfterAsking<T>(query: () => Promise<T>): () => Promise<T> {
  let next: Promise<T> | undefined;
  return () =>
    (next ??= new Promise<T>((resolve, reject) => {
      setImmediate(() => {
        next = undefined;
        query().then(resolve, reject);
      });
    }));
}

function timeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      timer.unref();
    }),
  ]);
}

/**
 * Sends the reads that tolerate a replica (history pages, room lists, feed catch-up) to one that
 * is current enough, else to the primary. "Current enough" is measured in WAL positions: the
 * primary's insert position, read after the call began, is at or past the commit record of every
 * write acknowledged before it, and a standby shows a transaction once it has replayed its commit
 * record. So a replica whose replay position has reached that fence shows the caller's own
 * writes, wherever they were made, and never an older list than a caller's last write. Each
 * position is asked once for every read in the same turn of the event loop, and the replica's
 * only when the one last seen falls short: with few writes, a read costs one small query on the
 * primary besides itself.
 *
 * Without replicas, `run` calls `fn` with the primary directly: nothing is asked or counted.
 */
export function createReadRouter({
  primary,
  replicas: configured,
  onRead,
  onFallback,
  onReplicaDown,
  retryMs = 1_000,
  farBehindBytes = 16n * 1024n * 1024n,
  checkTimeoutMs = 1_000,
}: ReadRouterOptions): ReadRouter {
  if (configured.length === 0) return { run: (_read, fn) => fn(primary), replicaCount: 0 };

  const fence = sharedAfterAsking(async () => {
    const [row] = await primary.execute<Array<{ lsn: string }>>('select pg_current_wal_insert_lsn()::text as lsn');
    return parseLsn(row!.lsn);
  });
  const replicas: Replica[] = configured.map(({ name, sql }) => {
    const replica: Replica = {
      name,
      sql,
      replayed: 0n,
      skipUntil: 0,
      skipped: 'down',
      replayedNow: sharedAfterAsking(async () => {
        const [row] = await timeout(sql.execute<Array<{ lsn: string | null }>>('select pg_last_wal_replay_lsn()::text as lsn'), checkTimeoutMs, name);
        // A server not in recovery (a promoted replica, or a primary named by mistake) may have
        // diverged from the primary: its positions say nothing about what it shows.
        if (!row?.lsn) throw new Error(`${name} is not a streaming replica (not in recovery)`);
        const lsn = parseLsn(row.lsn);
        if (lsn > replica.replayed) replica.replayed = lsn;
        return replica.replayed;
      }),
    };
    return replica;
  });
  let turn = 0;

  async function onPrimary<T>(read: ReplicaRead, fn: (sql: Sql) => Promise<T>, reason: FallbackReason): Promise<T> {
    onFallback?.(reason);
    onRead?.(read, 'primary');
    return fn(primary);
  }

  return {
    replicaCount: replicas.length,
    async run<T>(read: ReplicaRead, fn: (sql: Sql) => Promise<T>): Promise<T> {
      const now = Date.now();
      const ready = replicas.filter((r) => r.skipUntil <= now);
      if (ready.length === 0) return onPrimary(read, fn, replicas[0]!.skipped);
      const replica = ready[turn++ % ready.length]!;
      // If the primary fails, the read fails as it would without replicas.
      const needed = await fence();
      // A replica seen at or past the fence already is past it still: only a fresh read costs a round trip.
      const at =
        replica.replayed >= needed
          ? replica.replayed
          : await replica.replayedNow().catch((err: unknown) => {
              replica.skipUntil = Date.now() + retryMs;
              replica.skipped = 'down';
              onReplicaDown?.(replica.name, err);
              return undefined;
            });
      if (at === undefined) return onPrimary(read, fn, 'down');
      if (at < needed) {
        if (needed - at > farBehindBytes) {
          replica.skipUntil = Date.now() + retryMs;
          replica.skipped = 'behind';
        }
        return onPrimary(read, fn, 'behind');
      }
      let result: T;
      try {
        result = await fn(replica.sql);
      } catch (err) {
        // The caller's own mistake (a bad cursor) would be the same on the primary.
        if (err instanceof ParleyError) throw err;
        // A recovery conflict cancels a standby's query; a dropped connection fails it. The read
        // is safe to repeat, and the primary's answer (or its error) is the one a caller gets.
        // The replica is left alone a while: one that is gone would otherwise cost every read a
        // failed attempt first, for as long as its last known position covers the fence.
        replica.skipUntil = Date.now() + retryMs;
        replica.skipped = 'error';
        onReplicaDown?.(replica.name, err);
        return onPrimary(read, fn, 'error');
      }
      onRead?.(read, 'replica');
      return result;
    },
  };
}
