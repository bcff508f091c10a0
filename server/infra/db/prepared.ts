import { createHash } from 'node:crypto';
import type { Pool, QueryResultRow } from 'pg';
import type { Sql } from './read-replicas.ts';

export type { Sql };

/**
 * The `pg` pool under a connection. MikroORM's `execute` writes every parameter into the
 * statement's text (it formats the query for its logger, logging or not) and sends it as a simple
 * query: PostgreSQL parses and plans it anew every time.
 */
const pools = new WeakMap<Sql, Promise<Pool>>();
function poolOf(sql: Sql): Promise<Pool> {
  let pool = pools.get(sql);
  if (!pool) pools.set(sql, (pool = sql.getNativeClient()));
  return pool;
}

/** A statement run by name: parsed and planned once per connection. */
export interface Prepared {
  readonly name: string;
  /** With `$1`, `$2`… placeholders. */
  readonly text: string;
}

/**
 * `text`, written with MikroORM's `?` placeholders (or `$n` ones), as a {@link Prepared}
 * statement named after its text. Throws on `??` and the jsonb operators `?|`/`?&`, which a
 * placeholder would be confused with.
 */
export function prepared(text: string): Prepared {
  if (/\?\?|\?\||\?&/.test(text)) throw new Error('prepared(): the statement uses a ? operator');
  let n = 0;
  const numbered = text.includes('$1') ? text : text.replace(/\?/g, () => `$${++n}`);
  return { name: `parley_${createHash('sha1').update(numbered).digest('hex').slice(0, 24)}`, text: numbered };
}

/**
 * Pools where a statement by name failed as a pooler in transaction mode makes it fail (PgBouncer
 * before 1.21, or without `max_prepared_statements`: the name was prepared on another server
 * connection) or after the table behind a cached plan changed: they run statements unnamed from
 * then on, as before.
 */
const unnamed = new WeakSet<Pool>();
/** "Prepared statement does not exist" or "already exists", or "cached plan must not change result type" (one case of `0A000`). */
const refusedByName = (err: unknown) => {
  const { code, message } = err as { code?: string; message?: string };
  return code === '26000' || code === '42P05' || (code === '0A000' && /cached plan/.test(message ?? ''));
};

/**
 * Runs `statement` on the pool under `sql` (outside any transaction), by name: the hot
 * statements' planning was most of their cost in PostgreSQL (a lone send 680 µs of backend CPU as
 * an unnamed statement, 253 µs by name; a user's privacy rows 440–555 µs, 40–45 µs;
 * docs/architecture.md, "Statements by name").
 */
export async function runPrepared<R extends QueryResultRow>(sql: Sql, statement: Prepared, values: readonly unknown[]): Promise<R[]> {
  const pool = await poolOf(sql);
  if (unnamed.has(pool)) return (await pool.query<R>(statement.text, values as unknown[])).rows;
  try {
    return (await pool.query<R>({ name: statement.name, text: statement.text, values: values as unknown[] })).rows;
  } catch (err) {
    // These fail before the statement runs: running it again unnamed changes nothing twice.
    if (!refusedByName(err)) throw err;
    unnamed.add(pool);
    process.emitWarning('PostgreSQL refused a statement by name (a pooler in transaction mode, or a table changed under a cached plan): statements run unnamed from now on.', { code: 'PARLEY_UNNAMED_STATEMENTS' });
    return (await pool.query<R>(statement.text, values as unknown[])).rows;
  }
}
