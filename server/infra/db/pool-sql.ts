import type { Pool } from 'pg';
import { prepared, type Sql } from './prepared.ts';

/**
 * A `pg` pool standing in for a MikroORM connection where only raw statements run (a worker
 * thread with no ORM of its own): `execute` with `?` placeholders, and the pool under it for
 * statements by name.
 */
export function poolSql(pool: Pool): Sql {
  const stand: Pick<Sql, 'execute' | 'getNativeClient'> = {
    execute: (async (text: string, params: readonly unknown[] = []) => (await pool.query(prepared(text).text, [...params])).rows) as Sql['execute'],
    getNativeClient: (() => pool) as unknown as Sql['getNativeClient'],
  };
  return stand as Sql;
}
