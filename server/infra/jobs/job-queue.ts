import { prepared, runPrepared, type Sql } from '../db/prepared.ts';

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

/**
 * What a handler decided: finished (`gaveUp` when its attempts ran out before it did what it was
 * for), or run again later (with a new payload, e.g. what is left to do).
 */
export type JobOutcome = { done: true; gaveUp?: true } | { retryInMs: number; payload?: unknown; error?: string };

/** How a run ended, as counted in metrics. */
export type JobOutcomeName = 'done' | 'retry' | 'gave_up';

/** The jobs of one kind in the table: how many, and how long the oldest due one not yet claimed has waited. */
export interface JobBacklog {
  kind: string;
  pending: number;
  oldestDueSeconds: number;
}

export interface JobKind {
  /** One job; or give {@link runBatch}. */
  run?(job: Job): Promise<JobOutcome>;
  /**
   * The jobs of this kind claimed together, one outcome each in their order: a kind whose jobs
   * read the same tables does it in one statement for all of them. A rejection counts as each
   * job's handler having thrown.
   */
  runBatch?(jobs: readonly Job[]): Promise<JobOutcome[]>;
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
  /**
   * Stores the jobs a select yields, as columns `kind, key, payload, delay_ms`, in one statement;
   * for callers that pick their jobs with SQL. Returns how many were new or coalesced.
   */
  addFrom(select: string, params: readonly unknown[]): Promise<number>;
  /**
   * Claims in `ms` (sooner if a claim was due sooner): jobs a statement of this process wrote
   * ({@link writeJobs}, {@link jobsInsertSql}) run without waiting for the poll.
   */
  wakeIn(ms: number): void;
  /** Every kind in the table or handled here, with its backlog (one statement; for metrics). */
  backlog(): Promise<JobBacklog[]>;
  start(): void;
  /** Stops claiming and waits for the jobs running, at most `closeWaitMs` (an unfinished one runs again after its lease). */
  close(): Promise<void>;
}

export interface JobQueueOptions {
  sql: Sql;
  /** How often the table is looked at for jobs no wake-up announced (written by another instance, or come due). */
  pollMs?: number;
  /** Jobs run at once by this process. */
  concurrency?: number;
  /** Jobs one claim takes, at most. */
  batch?: number;
  /**
   * A wake-up claims no sooner than this after the previous claim: under a stream of sends, one
   * statement claims the jobs of many rather than one each.
   */
  gatherMs?: number;
  /** A claimed job not finished within this is claimed again (its process died). */
  leaseMs?: number;
  closeWaitMs?: number;
  onError(err: unknown, job?: Job): void;
  /** Each run's outcome, as its handler decided it. */
  onOutcome?(kind: string, outcome: JobOutcomeName): void;
}

/** A handler that threw: retried with backoff, dropped after this many runs. */
const MAX_FAILED_RUNS = 10;
const backoffMs = (attempts: number) => Math.min(1_000 * 2 ** (attempts - 1), 300_000);

const outcomeName = (outcome: JobOutcome): JobOutcomeName => ('done' in outcome ? (outcome.gaveUp ? 'gave_up' : 'done') : 'retry');

/**
 * Stores jobs in one statement through `sql`: given a transaction, they commit with whatever else
 * it writes, or not at all (an outbox). The queue does not know of them until it looks: tell it
 * ({@link JobQueue.wakeIn}) once the transaction committed.
 */
export async function writeJobs(sql: Pick<Sql, 'execute'>, jobs: readonly NewJob[]): Promise<void> {
  if (!jobs.length) return;
  const rows = jobs.map((j) => ({ kind: j.kind, key: j.key ?? null, payload: j.payload, delay_ms: j.delayMs ?? 0 }));
  await sql.execute(jobsInsertSql('select * from json_to_recordset(?::json) as r(kind text, key text, payload jsonb, delay_ms bigint)'), [JSON.stringify(rows)]);
}
/**
 * The statement that stores the jobs `source` yields (columns `kind, key, payload, delay_ms`);
 * written as a CTE of another statement, the jobs commit with whatever that statement stores.
 * Rows go in key order: the completion statement locks in the same order, so a statement that
 * writes several keyed jobs cannot deadlock with it. A keyed job already waiting with the same
 * payload is left as it is: it has yet to run, and will see what came meanwhile (each pass of a
 * busy room found its push job waiting, and wrote a new version of the row for nothing). A claimed
 * one gets a new version, so it runs once more.
 */
export const jobsInsertSql = (source: string) => `insert into jobs (kind, key, payload, run_at)
    select kind, key, payload, now() + delay_ms * interval '1 millisecond' from (${source}) j order by kind, key
    on conflict (kind, key) do update set version = jobs.version + 1, payload = excluded.payload
      where jobs.locked_until is not null or jobs.payload is distinct from excluded.payload`;

/** Claims up to `$3` due jobs of the kinds of the JSON array `$2`, leased for `$1` ms. */
const CLAIM = prepared(`update jobs j set locked_until = now() + $1::double precision * interval '1 millisecond', attempts = j.attempts + 1
     from (select id from jobs
            where run_at <= now() and (locked_until is null or locked_until < now()) and kind in (select json_array_elements_text($2::json))
            order by run_at limit $3::int for update skip locked) due
    where j.id = due.id
   returning j.id, j.kind, j.key, j.payload, j.attempts, j.version`);

/**
 * Stores the outcomes of a JSON array: a finished job enqueued again while it ran (its version
 * moved) stays, to run once more from its first attempt for what came meanwhile.
 */
const COMPLETE = prepared(`with o as (select * from json_to_recordset($1::json) as o(id bigint, version int, done boolean, delay_ms bigint, payload jsonb, error text)),
   locked as (select j.id from jobs j join o on o.id = j.id order by j.kind, j.key for update of j),
   gone as (delete from jobs j using o, locked l where l.id = j.id and o.id = j.id and o.done and j.version = o.version returning j.id)
   update jobs j set run_at = now() + o.delay_ms * interval '1 millisecond', locked_until = null,
          attempts = case when o.done then 0 else j.attempts end,
          payload = case when o.done then j.payload else coalesce(o.payload, j.payload) end,
          last_error = case when o.done then j.last_error else o.error end
     from o, locked l
    where l.id = j.id and o.id = j.id and not exists (select from gone g where g.id = j.id)
    returning o.delay_ms`);

/**
 * A small durable queue in PostgreSQL: one row per pending job, claimed with `FOR UPDATE SKIP
 * LOCKED` by any instance, leased rather than held in a transaction, so a slow job (a push service
 * that hangs) holds no connection and no lock, and a process that dies mid-job leaves it to be
 * claimed again once the lease runs out: at least once.
 *
 * Claims and completions are statements for many jobs: a claim takes up to `batch` due jobs, and
 * the outcomes of jobs that finish in one event-loop turn are stored by one statement.
 */
export function createJobQueue({ sql, pollMs = 500, concurrency = 1024, batch = 256, gatherMs = 25, leaseMs = 120_000, closeWaitMs = 5_000, onError, onOutcome }: JobQueueOptions): JobQueue {
  const kinds = new Map<string, JobKind>();
  const running = new Set<Promise<void>>();
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let nextPollAt = Infinity;
  let lastClaimAt = 0;
  let started = false;
  let closed = false;
  let polling: Promise<void> | undefined;
  /** Claimed again as soon as the running claim is over: a wake-up came while it ran. */
  let again = false;
  /**
   * The last claim took all it had room for (or had none): due jobs may be waiting for room, and a
   * completion that makes room claims at once. Otherwise a completion claims only for the jobs it
   * kept due now: a claim after every completion found nothing, one statement per batch for naught.
   */
  let capped = false;
  let outcomes: Array<{ job: Job; outcome: JobOutcome; rerunInMs: number }> = [];
  let completing: Promise<void> = Promise.resolve();
  let completeScheduled = false;

  function schedule(ms: number) {
    if (!started || closed) return;
    // The clock is read once: a delay worked out from a second read can be negative, and Node
    // prints a warning for that.
    const delay = Math.max(0, ms);
    const at = Date.now() + delay;
    if (at >= nextPollAt) return;
    clearTimeout(timer);
    nextPollAt = at;
    timer = setTimeout(() => {
      nextPollAt = Infinity;
      poll();
    }, delay);
    timer.unref();
  }

  function poll() {
    if (closed) return;
    if (polling) return void (again = true);
    lastClaimAt = Date.now();
    polling = claim().finally(() => {
      polling = undefined;
      if (again) {
        again = false;
        schedule(gatherMs);
      }
    });
  }

  async function claim() {
    let claimed = 0;
    const room = Math.min(batch, concurrency - inFlight);
    try {
      if (room <= 0) capped = true;
      if (room > 0 && kinds.size) {
        const jobs = await runPrepared<{ id: string; kind: string; key: string | null; payload: unknown; attempts: number; version: number }>(sql, CLAIM, [leaseMs, JSON.stringify([...kinds.keys()]), room]);
        claimed = jobs.length;
        capped = claimed === room;
        const byKind = new Map<string, Job[]>();
        for (const row of jobs) {
          const job = { ...row, id: String(row.id) };
          (byKind.get(job.kind) ?? byKind.set(job.kind, []).get(job.kind)!).push(job);
        }
        for (const [kind, list] of byKind) track(runKind(kinds.get(kind)!, list), list.length);
      }
    } catch (err) {
      onError(err);
    } finally {
      // A full claim may have left more due: claim again at once, else at the next period.
      if (claimed > 0 && claimed === room) schedule(0);
      else schedule(pollMs);
    }
  }

  function track(p: Promise<void>, n: number) {
    inFlight += n;
    running.add(p);
    void p.finally(() => {
      inFlight -= n;
      running.delete(p);
    });
  }

  async function runKind(kind: JobKind, jobs: Job[]) {
    let results: JobOutcome[];
    if (kind.runBatch) {
      try {
        results = await kind.runBatch(jobs);
      } catch (err) {
        results = jobs.map((job) => failed(err, job));
      }
    } else {
      results = await Promise.all(jobs.map((job) => kind.run!(job).catch((err: unknown) => failed(err, job))));
    }
    jobs.forEach((job, i) => {
      const outcome = results[i] ?? failed(new Error('no outcome'), job);
      onOutcome?.(job.kind, outcomeName(outcome));
      outcomes.push({ job, outcome, rerunInMs: kind.rerunInMs ?? 0 });
    });
    await completeSoon();
  }

  function failed(err: unknown, job: Job): JobOutcome {
    onError(err, job);
    return job.attempts >= MAX_FAILED_RUNS ? { done: true, gaveUp: true } : { retryInMs: backoffMs(job.attempts), error: String(err) };
  }

  /** Resolves once the outcomes gathered so far are stored. */
  function completeSoon(): Promise<void> {
    if (!completeScheduled) {
      completeScheduled = true;
      completing = completing.then(
        () =>
          new Promise<void>((resolve) =>
            setImmediate(() => {
              completeScheduled = false;
              void complete().finally(resolve);
            }),
          ),
      );
    }
    return completing;
  }

  async function complete() {
    const list = outcomes;
    outcomes = [];
    if (!list.length) return;
    const rows = list.map(({ job, outcome, rerunInMs }) =>
      'done' in outcome
        ? { id: job.id, version: job.version, done: true, delay_ms: rerunInMs, payload: null, error: null }
        : { id: job.id, version: job.version, done: false, delay_ms: outcome.retryInMs, payload: outcome.payload === undefined ? null : outcome.payload, error: outcome.error ?? null },
    );
    let kept: Array<{ delay_ms: string | number }> = [];
    try {
      kept = await runPrepared<{ delay_ms: string | number }>(sql, COMPLETE, [JSON.stringify(rows)]);
    } catch (err) {
      // The leases run out and the jobs run again.
      onError(err);
    }
    // Room was made: claim again at once if due jobs may be waiting behind a full claim; and when
    // the soonest of the jobs kept is due again (a retry, a rerun: at once for a rerun without delay).
    if (capped) schedule(0);
    const soonest = Math.min(...kept.map((r) => Number(r.delay_ms)));
    if (soonest <= 0) schedule(0);
    else if (Number.isFinite(soonest) && !closed) setTimeout(() => schedule(0), soonest).unref();
  }

  return {
    handle(kind, handler) {
      kinds.set(kind, handler);
    },
    async addFrom(select, params) {
      const result = await sql.execute<Array<unknown>>(`${jobsInsertSql(select)} returning id`, [...params]);
      return result.length;
    },
    wakeIn: (ms) => schedule(Math.max(ms, lastClaimAt + gatherMs - Date.now())),
    async backlog() {
      const rows = await sql.execute<Array<{ kind: string; pending: string; oldest_due: number | string | null }>>(
        `select kind, count(*) as pending,
                extract(epoch from now() - min(run_at) filter (where run_at <= now() and (locked_until is null or locked_until < now()))) as oldest_due
           from jobs group by kind`,
      );
      const found = new Map(rows.map((r) => [r.kind, { kind: r.kind, pending: Number(r.pending), oldestDueSeconds: Math.max(0, Number(r.oldest_due ?? 0)) }]));
      // A kind with nothing pending is 0, not a series that vanishes.
      for (const kind of kinds.keys()) if (!found.has(kind)) found.set(kind, { kind, pending: 0, oldestDueSeconds: 0 });
      return [...found.values()];
    },
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
