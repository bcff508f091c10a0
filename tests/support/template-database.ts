import pg from 'pg';
import { createOrm, migrate } from '../../server/infra/db/orm.ts';

/**
 * What a database created from the template is: its definition's fingerprint, and the one script
 * that brings a database of that definition back to the template's rows (what the migrations seed)
 * and sequences. A used test database reset so is as good as a new one, for a fraction of the cost
 * (see `releaseDatabase`).
 */
export interface TemplateState {
  fingerprint: string;
  reset: string;
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
  const orm = await createOrm({ clientUrl: databaseUrl(adminUrl, name), poolMax: 1 });
  try {
    await migrate(orm);
  } finally {
    await orm.close(true);
  }
  // Read now: once test databases are created from it, the template takes no connections.
  const state = await withClient(databaseUrl(adminUrl, name), readTemplateState);
  return {
    state,
    async drop() {
      // The databases set aside for reuse (see `releaseDatabase`), then the template.
      for (const { datname } of await spares(adminUrl, name)) await adminQuery(adminUrl, `drop database if exists ${datname} with (force)`);
      await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
      await adminPool?.end();
      adminPool = undefined;
    },
  };
}

async function readTemplateState(c: pg.Client): Promise<TemplateState> {
  const { rows: fp } = await c.query<{ fingerprint: string }>(FINGERPRINT);
  const { rows: tables } = await c.query<{ name: string }>(`select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname not in ('pg_catalog', 'information_schema') order by 1`);
  // Deletes, not TRUNCATE: a test leaves few rows, and TRUNCATE makes every table's and index's
  // files anew (three times the CPU here). As a replica, the deletes fire no triggers and check no
  // foreign keys, so their order does not matter.
  const script = ['set local session_replication_role = replica', ...tables.map(({ name }) => `delete from ${name}`)];
  for (const { name } of tables) {
    const { rows } = await c.query<{ rows: string | null }>(`select json_agg(t)::text as rows from ${name} t`);
    if (rows[0]!.rows === null) continue;
    const { rows: columns } = await c.query<{ list: string }>(`select string_agg(quote_ident(attname), ', ' order by attnum) as list from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = ''::"char"`, [name]);
    const list = columns[0]!.list;
    script.push(`insert into ${name} (${list}) overriding system value select ${list} from json_populate_recordset(null::${name}, ${c.escapeLiteral(rows[0]!.rows)})`);
  }
  const { rows: sequences } = await c.query<{ setval: string }>(
    `select format('select setval(%L::regclass, %s, %s)', format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value), (last_value is not null)::text) as setval
       from pg_sequences where schemaname not in ('pg_catalog', 'information_schema')`,
  );
  script.push(...sequences.map((s) => s.setval));
  return { fingerprint: fp[0]!.fingerprint, reset: script.join(';\n') };
}

/**
 * A test database let go is reset to the template's state and renamed aside, and the run's next
 * fresh database, in any of its processes, is renamed from one: creating a database copies the
 * template's 8 MB and cost about 270 ms of CPU here, a reset and two renames about 75 ms. The
 * run's teardown drops what is left aside.
 */
let setAside = 0;
const spares = (adminUrl: string, template: string) => adminQuery(adminUrl, 'select datname from pg_database where left(datname, length($1)) = $1', [`${template}_free_`]);

let adminPool: pg.Pool | undefined;
/**
 * A statement on the server's `postgres` database, over one connection per process that is kept: a
 * connection costs PostgreSQL about 20 ms of CPU, and each test database takes several of these.
 */
export async function adminQuery(adminUrl: string, sql: string, values?: unknown[]): Promise<Record<string, any>[]> {
  if (!adminPool) {
    adminPool = new pg.Pool({ connectionString: adminUrl, max: 1, allowExitOnIdle: true, idleTimeoutMillis: 30_000 });
    // A test that terminates sessions, or a server restarted, ends the idle connection: the next
    // statement opens another. Unheard, the pool's error would be the process's.
    adminPool.on('error', () => {});
  }
  return (await adminPool.query(sql, values)).rows;
}

/**
 * A fresh, empty database `name` at the current schema (any old one of that name dropped first): one
 * set aside by any process of the run when there is one, else a copy of the template.
 */
export async function createDatabaseFrom(adminUrl: string, template: string, name: string) {
  await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
  for (const { datname } of await spares(adminUrl, template)) {
    try {
      await adminQuery(adminUrl, `alter database ${datname} rename to ${name}`);
      return;
    } catch {
      // Another process renamed it first: the next one.
    }
  }
  await adminQuery(adminUrl, `create database ${name} template ${template}`);
}

/**
 * Lets a test database go once its sessions are gone (a closed pool's sockets may still be
 * closing): reset to the template's state and set aside when nothing but rows and sequences
 * changed (its fingerprint is the template's), else dropped, as is one whose sessions stay.
 * Dropping `with (force)` while a closed pool's sockets are still shutting down makes the server
 * kill them, and pg reports that as an unhandled error in the test run: hence the wait.
 */
export async function releaseDatabase(adminUrl: string, template: string, state: TemplateState, name: string) {
  /** Waits, up to a second, until no session is on the database (a closed pool's, or the reset's own, may still be ending). */
  const alone = async () => {
    for (let i = 0; i < 50; i++) {
      if ((await adminQuery(adminUrl, 'select count(*)::int as n from pg_stat_activity where datname = $1', [name]))[0]!.n === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('sessions left');
  };
  try {
    await alone();
    const reset = await withClient(databaseUrl(adminUrl, name), async (c) => {
      const { rows } = await c.query<{ fingerprint: string }>(FINGERPRINT);
      if (rows[0]!.fingerprint !== state.fingerprint) return false;
      await c.query(`begin;\n${state.reset};\ncommit`);
      return true;
    });
    if (!reset) throw new Error('definition changed');
    // A rename needs the database to itself.
    await alone();
    await adminQuery(adminUrl, `alter database ${name} rename to ${template}_free_${process.pid}_${++setAside}`);
  } catch {
    await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
  }
}

/** The URL of database `name` on the server of `adminUrl`. */
export function databaseUrl(adminUrl: string, name: string) {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.href;
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
