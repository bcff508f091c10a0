import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { prepared, runPrepared, type Sql } from '../server/infra/db/prepared.ts';
import { createTestDatabase } from './support/instance-process.ts';

const db = await createTestDatabase('prepared_statements');
afterAll(() => db.drop());

/** A pool of one connection behind the interface the server's statements run through: every call lands on the same session. */
function oneConnection() {
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  const sql = { getNativeClient: async () => pool } as unknown as Sql;
  return { pool, sql, [Symbol.asyncDispose]: () => pool.end() };
}

describe('hot statements run by name', () => {
  it('are parsed and planned once per connection, then executed from the plan PostgreSQL keeps', async () => {
    await using c = oneConnection();
    const plusOne = prepared('select ?::int + 1 as n');
    for (let i = 0; i < 7; i++) expect(await runPrepared(c.sql, plusOne, [i])).toEqual([{ n: i + 1 }]);
    const { rows } = await c.pool.query<{ plans: number }>('select (generic_plans + custom_plans)::int as plans from pg_prepared_statements where name = $1', [plusOne.name]);
    expect(rows).toEqual([{ plans: 7 }]);
  });

  it('a table changed under a cached plan (a migration while serving): the call still answers, with the new column, and the pool runs statements unnamed from then on', async () => {
    await using c = oneConnection();
    await c.pool.query('create table migrated (a int); insert into migrated values (1)');
    const all = prepared('select * from migrated');
    expect(await runPrepared(c.sql, all, [])).toEqual([{ a: 1 }]);
    await c.pool.query('alter table migrated add column b int default 2');
    const warned = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      expect(await runPrepared(c.sql, all, [])).toEqual([{ a: 1, b: 2 }]);
      expect(warned).toHaveBeenCalledTimes(1);
      // Unnamed now: nothing new is prepared on the session.
      const two = prepared('select 2 as two');
      expect(await runPrepared(c.sql, two, [])).toEqual([{ two: 2 }]);
      const { rows } = await c.pool.query('select name from pg_prepared_statements where name = $1', [two.name]);
      expect(rows).toEqual([]);
    } finally {
      warned.mockRestore();
    }
  });

  it('placeholders are numbered in order, and a statement whose ? could be a jsonb operator is refused when the module loads', () => {
    expect(prepared('select ?::int, ?::text').text).toBe('select $1::int, $2::text');
    expect(prepared('select $1::int, $1::int').text).toBe('select $1::int, $1::int');
    expect(() => prepared("select '{}'::jsonb ?| array['a']")).toThrow(/operator/);
  });
});
