import pg from 'pg';
import { createOrm, migrate } from '../../server/infra/db/orm.ts';

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
  return { drop: () => adminQuery(adminUrl, `drop database if exists ${name} with (force)`) };
}

/** `drop database` then `create database … template` the migrated one: a fresh, empty database at the current schema. */
export async function createDatabaseFrom(adminUrl: string, template: string, name: string) {
  await adminQuery(adminUrl, `drop database if exists ${name} with (force)`);
  await adminQuery(adminUrl, `create database ${name} template ${template}`);
}

async function adminQuery(adminUrl: string, sql: string) {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
