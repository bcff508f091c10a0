import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { startFailureMessage } from '../server/cli/start-failure.ts';
import { startEmbeddedPostgres } from '../server/infra/db/embedded-postgres.ts';
import { postgresBinaries } from '../server/infra/db/postgres-binaries.ts';
import { startThrowawayPostgres } from '../server/infra/db/scratch-postgres.ts';
import { connectAsAnotherUser } from './support/another-user.ts';
import { tempDataDir } from './support/temp-dir.ts';

const made: string[] = [];
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))));
async function dataDir() {
  const dir = await tempDataDir('parley-access-');
  made.push(dir);
  return dir;
}

async function sql(url: string, text: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

const portOf = (url: string) => Number(new URL(url).port);

it('asks every client for the password kept in DATA_DIR: another local user cannot connect, Parley can', async () => {
  const dir = await dataDir();
  const embedded = await startEmbeddedPostgres(dir);
  try {
    const other = await connectAsAnotherUser(portOf(embedded.url));
    expect(other.connected, other.output).toBe(false);
    expect(other.output).toMatch(/password/);
    expect(await sql(embedded.url, 'select current_user as who')).toEqual([{ who: 'postgres' }]);
    const file = join(dir, 'postgres-password');
    expect(new URL(embedded.url).password).toBe((await readFile(file, 'utf8')).trim());
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  } finally {
    await embedded.close();
  }
});

it('a data directory made when every local connection was trusted is locked down on its next start, its data kept', async () => {
  const dir = await dataDir();
  const first = await startEmbeddedPostgres(dir);
  await sql(first.url, 'create table kept (x int); insert into kept values (1); alter role postgres password null');
  await first.close();
  // Such a directory: initdb's trust rules, a superuser without a password, no password file.
  await writeFile(join(dir, 'postgres', 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n');
  await rm(join(dir, 'postgres-password'), { force: true });

  const next = await startEmbeddedPostgres(dir);
  try {
    const other = await connectAsAnotherUser(portOf(next.url));
    expect(other.connected, other.output).toBe(false);
    expect(await sql(next.url, 'select x from kept')).toEqual([{ x: 1 }]);
    expect(await readFile(join(dir, 'postgres', 'pg_hba.conf'), 'utf8')).not.toMatch(/trust/);
  } finally {
    await next.close();
  }
});

it('the throwaway server a test run starts when no PostgreSQL answers on 5432 asks for its password too', async () => {
  const scratch = await startThrowawayPostgres();
  try {
    expect(await sql(scratch.adminUrl, 'select 1 as one')).toEqual([{ one: 1 }]);
    const other = await connectAsAnotherUser(portOf(scratch.adminUrl));
    expect(other.connected, other.output).toBe(false);
  } finally {
    await scratch.stop();
  }
});

// As root, PostgreSQL runs as user postgres: the usual container checkout (root's 0700 home, a
// `mktemp -d` folder) puts both the npm binaries and ./data under a directory it cannot enter.
it.runIf(process.getuid?.() === 0)('runs with its binaries and DATA_DIR under a directory user postgres cannot enter, and keeps data across a restart', async () => {
  const closed = await mkdtemp(join(tmpdir(), 'parley-closed-'));
  made.push(closed);
  expect((await stat(closed)).mode & 0o777).toBe(0o700);
  const installed = await postgresBinaries();
  await symlink(dirname(dirname(installed.postgres)), join(closed, 'native'));
  const binaries = { initdb: join(closed, 'native/bin/initdb'), postgres: join(closed, 'native/bin/postgres'), pg_ctl: join(closed, 'native/bin/pg_ctl') };
  const dir = join(closed, 'data');

  const first = await startEmbeddedPostgres(dir, { binaries });
  await sql(first.url, 'create table kept (x int); insert into kept values (1)');
  await first.close();
  const next = await startEmbeddedPostgres(dir, { binaries });
  try {
    expect(await sql(next.url, 'select x from kept')).toEqual([{ x: 1 }]);
  } finally {
    await next.close();
  }
});

it.runIf(process.getuid?.() === 0)('when TMPDIR, where the binaries are copied for user postgres, is closed to it too, the start fails naming the copy', async () => {
  const closed = await mkdtemp(join(tmpdir(), 'parley-closed-'));
  made.push(closed);
  const installed = await postgresBinaries();
  await symlink(dirname(dirname(installed.postgres)), join(closed, 'native'));
  const binaries = { initdb: join(closed, 'native/bin/initdb'), postgres: join(closed, 'native/bin/postgres'), pg_ctl: join(closed, 'native/bin/pg_ctl') };
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = join(closed, 'tmp');
  await mkdir(process.env.TMPDIR);
  try {
    const refusal = await startEmbeddedPostgres(join(closed, 'data'), { binaries }).then(
      (started) => started.close().then(() => undefined),
      (err: unknown) => err,
    );
    expect(startFailureMessage(refusal, undefined)).toMatch(new RegExp(`cannot run ${join(closed, 'tmp')}/parley-postgres-[0-9a-f]+/bin/postgres`));
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
});

it('a start refused on a file or directory names it, instead of blaming the port', async () => {
  const dir = await dataDir();
  const file = join(dir, 'not-a-program');
  await writeFile(file, '', { mode: 0o644 });
  const child = spawn(file);
  const [refusal] = (await once(child, 'error')) as [NodeJS.ErrnoException];
  expect(refusal.code).toBe('EACCES');
  const message = startFailureMessage(refusal, undefined);
  expect(message).toContain(file);
  expect(message).not.toMatch(/port/);
});
