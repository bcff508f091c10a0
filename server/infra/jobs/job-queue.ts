import type { EntityManager } from '@mikro-orm/postgresql';

type Sql = ReturnType<EntityManager['getConnection']>;

/** A claimed job. `version` counts the enqueues its key coalesced. */
export interface Job {
  id: string;
  kind: string;
  key: string | null;
  payload: unknown;
  /** 1 on the first run. */
  attempts: number;
  version: number;
}

/** What a handler decided: finished, or run again later (with a new payload, e.g. what is left to do). */
export type JobOutcome = { done: true } | { retryInMs: number; payload?: unknown; error?: string };

export interface JobKind {
  run(job: Job): Promise<JobOutcome>;
  /**
   * A keyed job enqueued again while it ran (its version moved) runs once more this long after it
   * finished, for what came meanwhile; default 0.
   */
  rerunInMs?: number;
}

export interface NewJob {
  kind: string;
  /**
   * Jobs of one kind with one key coalesce: while one is pending, enqueueing the key again bumps its
   * version and replaces its payload, and its run time stays.
   */
  key?: string;
  payload: unknown;
  delayMs?: number;
}

export interface JobQueue {
  handle(kind: string, handler: JobKind): void;
  /** Stores jobs in one statement. */
  add(jobs: readonly NewJob[]): Promise<void>;
  /**
   * Stores the jobs a select yields, as columns `kind, key, payload, delay_ms`, in one statement;
   * for callers that pick their jobs with SQL. Returns how many were new or coalesced.
   */
  addFrom(select: string, params: readonly unknown[]): Promise<number>;
  /** Polls in `ms` (sooner if it was due sooner): jobs added here run without waiting for the poll. */
  wakeIn(ms: number): void;
  start(): void;
  /** Stops claiming and waits for the jobs running, at most `closeWaitMs` (an unfinished one runs again after its lease). */
  close(): Promise<void>;
}

export interface JobQueueOptions {
  sql: Sql;
  pollMs?: number;
  /** Jobs run at once by this process. */
  concurrency?: number;
  /** A claimed job not finished within this is claimed again (its process died). */
  leaseMs?: number;
  closeWaitMs?: number;
  onError(err: unknown, job?: Job): void;
}

/** A handler that threw: retried with backoff, dropped after this many runs. */
const MAX_FAILED_RUNS = 10;
const backoffMs = (attempts: number) => Math.min(1_000 * 2 ** (attempts - 1), 300_000);

/**
 * A small durable queue in PostgreSQL: one row per pending job, claimed with `FOR UPDATE SKIP
 * LOCKED` by any instance, leased rather than held in a transaction, so a slow job (a push service
 * that hangs) holds no connection and no lock, and a process that dies mid-job leaves it to be
 * claimed again once the lease runs out: at least once.
 */
export function createJobQueue({ sql, pollMs = 500, concurrency = 8, leaseMs = 120_000, closeWaitMs = 5_000, onError }: JobQueueOptions): JobQueue {
  const kinds = new Map<string, JobKind>();
  const running = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let nextPollAt = Infinity;
  let started = false;
  let closed = false;
  let polling: Promise<void> | undefined;

  const insert = (source: string) => `insert into jobs (kind, key, payload, run_at)
    select kind, key, payload, now() + delay_ms * interval '1 millisecond' from (${source}) j
    on conflict (kind, key) do update set version = jobs.version + 1, payload = excluded.payload`;

  function schedule(ms: number) {
    if (!started || closed) return;
    const at = Date.now() + Math.max(0, ms);
    if (at >= nextPollAt) return;
    clearTimeout(timer);
    nextPollAt = at;
    timer = setTimeout(() => {
      nextPollAt = Infinity;
      poll();
    }, at - Date.now());
    timer.unref();
  }

  function poll() {
    if (polling || closed) return;
    polling = claim().finally(() => (polling = undefined));
  }

  async function claim() {
    let claimed = 0;
    const room = concurrency - running.size;
    try {
      if (room > 0 && kinds.size) {
        const jobs = await sql.execute<Array<{ id: string; kind: string; key: string | null; payload: unknown; attempts: number; version: number }>>(
          `update jobs j set locked_until = now() + ? * interval '1 millisecond', attempts = j.attempts + 1
             from (select id from jobs
                    where run_at <= now() and (locked_until is null or locked_until < now()) and kind in (select json_array_elements_text(?::json))
                    order by run_at limit ? for update skip locked) due
            where j.id = due.id
           returning j.id, j.kind, j.key, j.payload, j.attempts, j.version`,
          [leaseMs, JSON.stringify([...kinds.keys()]), room],
        );
        claimed = jobs.length;
        for (const job of jobs) track(run({ ...job, id: String(job.id) }));
      }
    } catch (err) {
      onError(err);
    } finally {
      // A full claim may have left more due: poll again at once, else at the next period.
      schedule(claimed > 0 && claimed === room ? 0 : pollMs);
    }
  }

  function track(p: Promise<void>) {
    running.add(p);
    void p.finally(() => {
      running.delete(p);
      schedule(0);
    });
  }

  async function run(job: Job) {
    const kind = kinds.get(job.kind)!;
    let outcome: JobOutcome;
    try {
      outcome = await kind.run(job);
    } catch (err) {
      onError(err, job);
      outcome = job.attempts >= MAX_FAILED_RUNS ? { done: true } : { retryInMs: backoffMs(job.attempts), error: String(err) };
    }
    try {
      if ('done' in outcome) {
        // Enqueued again while it ran: it runs once more, from its first attempt, for what came meanwhile.
        await sql.execute(
          `with gone as (delete from jobs where id = ? and version = ? returning id)
           update jobs set run_at = now() + ? * interval '1 millisecond', locked_until = null, attempts = 0
            where id = ? and not exists (select from gone)`,
          [job.id, job.version, kind.rerunInMs ?? 0, job.id],
        );
        schedule(kind.rerunInMs ?? 0);
      } else {
        await sql.execute(`update jobs set run_at = now() + ? * interval '1 millisecond', locked_until = null, payload = coalesce(?::jsonb, payload), last_error = ? where id = ?`, [
          outcome.retryInMs,
          outcome.payload === undefined ? null : JSON.stringify(outcome.payload),
          outcome.error ?? null,
          job.id,
        ]);
        schedule(outcome.retryInMs);
      }
    } catch (err) {
      // The lease runs out and the job runs again.
      onError(err, job);
    }
  }

  return {
    handle(kind, handler) {
      kinds.set(kind, handler);
    },
    async add(jobs) {
      if (!jobs.length) return;
      const rows = jobs.map((j) => ({ kind: j.kind, key: j.key ?? null, payload: j.payload, delay_ms: j.delayMs ?? 0 }));
      await sql.execute(insert('select * from json_to_recordset(?::json) as r(kind text, key text, payload jsonb, delay_ms bigint)'), [JSON.stringify(rows)]);
      schedule(Math.min(...rows.map((r) => r.delay_ms)));
    },
    async addFrom(select, params) {
      const result = await sql.execute<Array<unknown>>(`${insert(select)} returning id`, [...params]);
      return result.length;
    },
    wakeIn: (ms) => schedule(ms),
    start() {
      if (started) return;
      started = true;
      schedule(0);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await polling;
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => (waited = setTimeout(resolve, closeWaitMs)))]);
      clearTimeout(waited);
    },
  };
}
