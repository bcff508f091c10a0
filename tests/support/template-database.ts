import pg from 'pg';
import { createOrm, migrate } from '../../server/infra/db/orm.ts';

/**
 * What a database created from the template holds: its schema's fingerprint, the rows the
 * migrations seed, and where its sequences stand. A used test database reset to exactly this is
 * as good as a new one, for a tenth of the cost (see `recycleDatabase`).
 */
export interface TemplateState {
  fingerprint: string;
  tables: string[];
  seeds: { table: string; columns: string[]; rows: string }[];
  sequences: { name: string; value: string; isCalled: boolean }[];
}

/**
 * Everything about a database's definition a test could change and a reset of its rows would not
 * undo: relations and their columns, defaults, constraints, indexes, triggers, functions,
 * extensions, schemas, rules, policies, settings, prepared transactions, replication slots. Two
 * databases with the same fingerprint differ at most in their rows and sequences.
 */
const FINGERPRINT = `
  select md5(coalesce(string_agg(x, '|' order by x), '')) as fingerprint from (
    select 'c:' || n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || c.relpersistence::text || ':' || coalesce(array_to_string(c.reloptions, ','), '')
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
    union all
    select 'a:' || c.oid::regclass || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull || ':' || a.attgenerated::text || ':' || a.attidentity::text || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
      from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
     where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%' and a.attnum > 0 and not a.attisdropped
    union all select 'k:' || conrelid::regclass || '.' || conname || ':' || pg_get_constraintdef(oid) from pg_constraint where connamespace not in ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
    union all select 'i:' || pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'
    union all select 't:' || tgrelid::regclass || '.' || tgname || ':' || tgenabled::text || ':' || pg_get_triggerdef(oid) from pg_trigger where not tgisinternal
    union all select 'p:' || p.oid::regprocedure || ':' || md5(p.prosrc) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('pg_catalog', 'information_schema')
    union all select 'e:' || extname || ':' || extversion from pg_extension
    union all select 'n:' || nspname from pg_namespace where nspname not like 'pg\\_toast%' and nspname not like 'pg\\_temp%'
    union all select 'r:' || schemaname || '.' || tablename || '.' || rulename || ':' || definition from pg_rules where schemaname not in ('pg_catalog', 'information_schema')
    union all select 'pol:' || schemaname || '.' || tablename || '.' || policyname from pg_policies
    union all select 'pub:' || pubname from pg_publication
    union all select 'set:' || array_to_string(setconfig, ',') from pg_db_role_setting where setdatabase = (select oid from pg_database where datname = current_database())
    union all select 'db:' || datallowconn || ':' || datconnlimit || ':' || coalesce(array_to_string(datacl, ','), '') from pg_database where datname = current_database()
    union all select 'xact:' || gid from pg_prepared_xacts where database = current_database()
    union all select 'slot:' || slot_name from pg_replication_slots where database = current_database()
  ) f(x)`;

/**
 * One database migrated once per run, that every test database is created from: a test file's
 * server then finds its schema in place instead of running every migration again (about half a
 * second of each app's start, over a hundred starts a run). The run's first start still applies
 * every migration to an empty database, here.
 */
export async function createTemplateDatabase(adminUrl: string, name: string) {
  await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
  await adminQuery(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const orm = await createOrm({ clientUrl: url.href, poolMax: 1 });
  try {
    await migrate(orm);
  } finally {
    await orm.close(true);
  }
  // Read now: once test databases are created from it, the template takes no connections.
  const state = await withClient(url.href, (c) => readTemplateState(c));
  return {
    state,
    async drop() {
      // The recycled databases the workers left behind (see `recycleDatabase`), then the template.
      const { rows } = await withClient(adminUrl, (c) => c.query<{ datname: string }>('select datname from pg_database where left(datname, length($1)) = $1', [`${name}_free_`]));
      for (const { datname } of rows) await adminQuery(adminUrl, `drop database if exists ${datname} with (force)`);
      await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

async function readTemplateState(c: pg.Client): Promise<TemplateState> {
  const { rows: fp } = await c.query<{ fingerprint: string }>(FINGERPRINT);
  const { rows: tables } = await c.query<{ name: string }>(`select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname not in ('pg_catalog', 'information_schema') order by 1`);
  const seeds: TemplateState['seeds'] = [];
  for (const { name } of tables) {
    const { rows } = await c.query<{ rows: string | null }>(`select json_agg(t)::text as rows from ${name} t`);
    if (rows[0]!.rows === null) continue;
    const { rows: columns } = await c.query<{ name: string }>(`select quote_ident(attname) as name from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = ''::"char" order by attnum`, [name]);
    seeds.push({ table: name, columns: columns.map((col) => col.name), rows: rows[0]!.rows });
  }
  const { rows: sequences } = await c.query<{ name: string; value: string; isCalled: boolean }>(
    `select format('%I.%I', schemaname, sequencename) as name, coalesce(last_value, start_value)::text as value, last_value is not null as "isCalled" from pg_sequences where schemaname not in ('pg_catalog', 'information_schema')`,
  );
  return { fingerprint: fp[0]!.fingerprint, tables: tables.map((t) => t.name), seeds, sequences };
}

/**
 * Databases a test is done with are reset to the template's state and renamed aside, and the next
 * fresh database of the run is renamed from one: creating a database copies the template's 8 MB
 * and cost about 270 ms of CPU here, a reset and two renames about 75 ms. The run's teardown drops
 * what is left aside.
 */
let recycledCount = 0;

let adminPool: pg.Pool | undefined;
/** One admin connection per process, kept: a connection costs PostgreSQL about 20 ms of CPU, and a test database takes several admin statements. */
async function admin(adminUrl: string, sql: string, values?: unknown[]) {
  adminPool ??= new pg.Pool({ connectionString: adminUrl, max: 1, allowExitOnIdle: true, idleTimeoutMillis: 30_000 });
  return (await adminPool.query(sql, values)).rows;
}

/**
 * A fresh, empty database `name` at the current schema (any old one of that name dropped first): a
 * database of the run recycled by any of its processes when there is one (a file in a process of
 * its own finds them too), else a copy of the template.
 */
export async function createDatabaseFrom(adminUrl: string, template: string, name: string) {
  await admin(adminUrl, `drop database if exists ${name} with (force)`);
  const spares = await admin(adminUrl, 'select datname from pg_database where left(datname, length($1)) = $1 limit 5', [`${template}_free_`]);
  for (const { datname } of spares) {
    try {
      await admin(adminUrl, `alter database ${datname} rename to ${name}`);
      return;
    } catch {
      // Another process renamed it first: the next one.
    }
  }
  await admin(adminUrl, `create database ${name} template ${template}`);
}

/** How many sessions are still on `name`: a test's pools close before their database is let go. */
export async function sessionsOn(adminUrl: string, name: string) {
  const rows = await admin(adminUrl, 'select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
  return rows[0]!.n as number;
}

/**
 * Lets a test database go: reset to the template's state and kept for the next fresh database of
 * this process when nothing but rows and sequences changed (its fingerprint is the template's),
 * else dropped. A database with sessions still on it is dropped too.
 */
export async function recycleDatabase(adminUrl: string, template: string, state: TemplateState, name: string) {
  const spare = `${template}_free_${process.pid}_${++recycledCount}`;
  try {
    if ((await sessionsOn(adminUrl, name)) > 0) throw new Error('sessions left');
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const reset = await withClient(url.href, async (c) => {
      await c.query('begin');
      const { rows } = await c.query<{ fingerprint: string }>(FINGERPRINT);
      if (rows[0]!.fingerprint !== state.fingerprint) return false;
      // Deletes, not TRUNCATE: a test leaves few rows, and TRUNCATE makes every table's and
      // index's files anew (three times the CPU here). As a replica, the deletes fire no triggers and
      // check no foreign keys, so their order does not matter.
      await c.query('set local session_replication_role = replica');
      for (const table of state.tables) await c.query(`delete from ${table}`);
      for (const seed of state.seeds) {
        const columns = seed.columns.join(', ');
        await c.query(`insert into ${seed.table} (${columns}) overriding system value select ${columns} from json_populate_recordset(null::${seed.table}, $1)`, [seed.rows]);
      }
      for (const s of state.sequences) await c.query('select setval($1::regclass, $2::bigint, $3)', [s.name, s.value, s.isCalled]);
      await c.query('commit');
      return true;
    });
    if (!reset) throw new Error('schema changed');
    // The reset's own session may still be ending: a rename needs the database to itself.
    for (let i = 0; ; i++) {
      try {
        await admin(adminUrl, `alter database ${name} rename to ${spare}`);
        break;
      } catch (err) {
        if (i >= 20 || (err as { code?: string }).code !== '55006') throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  } catch {
    await admin(adminUrl, `drop database if exists ${name} with (force)`);
  }
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function adminQuery(adminUrl: string, sql: string) {
  await withClient(adminUrl, (c) => c.query(sql));
}
