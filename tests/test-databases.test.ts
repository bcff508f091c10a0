import type pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { adminQuery, databaseUrl, withClient } from './support/template-database.ts';
import { ADMIN_URL, dropTestDatabase, freshDatabase } from './support/test-app.ts';

// Test databases are recycled: one a file is done with is reset and handed to the next file's
// fresh database. These are the promises the other files rely on: a fresh database is as empty as
// a copy of the template, whatever the last user did to its rows, and one whose definition a test
// changed is never handed on.
const name = `parley_test_recycling_${process.pid}`;
afterAll(() => dropTestDatabase(name));

const onDatabase = <T>(fn: (c: pg.Client) => Promise<T>) => withClient(databaseUrl(ADMIN_URL, name), fn);
/** A database keeps its OID through renames: whether the one let go still exists, under any name. */
const oidOf = async (db: string) => (await adminQuery(ADMIN_URL, 'select oid from pg_database where datname = $1', [db]))[0]!.oid as number;
const exists = async (oid: number) => (await adminQuery(ADMIN_URL, 'select 1 from pg_database where oid = $1', [oid])).length === 1;

/** Every table's row count, the migrations' ids and the sequences: what a test could leave behind. */
const contents = () =>
  onDatabase(async (c) => {
    const { rows: tables } = await c.query<{ name: string }>(`select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname = 'public' order by 1`);
    const counts: Record<string, number> = {};
    for (const { name: table } of tables) counts[table] = (await c.query<{ n: number }>(`select count(*)::int as n from ${table}`)).rows[0]!.n;
    const migrations = (await c.query<{ id: number; name: string }>('select id, name from mikro_orm_migrations order by id')).rows;
    const sequences = (await c.query('select sequencename, last_value from pg_sequences order by 1')).rows;
    const triggers = (await c.query<{ tgname: string }>('select tgname from pg_trigger where not tgisinternal order by 1')).rows.map((r) => r.tgname);
    return { counts, migrations, sequences, triggers };
  });

/**
 * A fresh database, changed by `use`, then let go: what it held before and after `use`, whether it
 * was set aside rather than dropped, and what the next fresh database of that name holds.
 */
async function useAndLetGo(use: (c: pg.Client) => Promise<unknown>) {
  await freshDatabase(name);
  const pristine = await contents();
  await onDatabase(use);
  const used = await contents();
  const oid = await oidOf(name);
  await dropTestDatabase(name);
  // Set aside, not dropped, if it still exists (another process may have taken it already).
  const setAside = await exists(oid);
  await freshDatabase(name);
  return { pristine, used, setAside, next: await contents() };
}

it('a database used and let go comes back as empty as a copy of the template: rows gone, seeded rows and sequences as the migrations left them', async () => {
  const { pristine, used, setAside, next } = await useAndLetGo(async (c) => {
    await c.query(`insert into users (id) values ('u1'), ('u2')`);
    await c.query(`insert into chat_rooms (id, participant1_id, participant2_id) values (gen_random_uuid(), 'u1', 'u2')`);
    await c.query(`insert into jobs (kind, payload) values ('left-behind', '{}')`);
    await c.query(`delete from mikro_orm_migrations where id = (select max(id) from mikro_orm_migrations)`);
  });
  expect(pristine.migrations.length).toBeGreaterThan(0);
  expect(used).not.toEqual(pristine);
  expect(setAside).toBe(true);
  expect(next).toEqual(pristine);
});

it('a database whose definition a test changed is dropped, not handed on: the next fresh one has the template’s', async () => {
  const { pristine, used, setAside, next } = await useAndLetGo((c) =>
    c.query(`create trigger refuse_users before insert on users for each row execute function suppress_redundant_updates_trigger()`),
  );
  expect(used.triggers).toContain('refuse_users');
  expect(setAside).toBe(false);
  expect(next).toEqual(pristine);
});

it('the kept admin connection ended under it (a test terminating sessions, a server restart) is replaced: the process carries on', async () => {
  const pid = (await adminQuery(ADMIN_URL, 'select pg_backend_pid() as pid'))[0]!.pid;
  await withClient(ADMIN_URL, (c) => c.query('select pg_terminate_backend($1)', [pid]));
  // The idle connection's end reaches the pool as an error event.
  await new Promise((r) => setTimeout(r, 200));
  await freshDatabase(name);
  expect((await contents()).migrations.length).toBeGreaterThan(0);
  expect((await adminQuery(ADMIN_URL, 'select pg_backend_pid() as pid'))[0]!.pid).not.toBe(pid);
});
