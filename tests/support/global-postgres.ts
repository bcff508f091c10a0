import type { TestProject } from 'vitest/node';
import { scratchPostgres } from '../../server/infra/db/scratch-postgres.ts';
import { createTemplateDatabase, type TemplateState } from './template-database.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The server test files create their databases on (see `tests/support/test-app.ts`). */
    adminDatabaseUrl: string;
    /** A database at the current schema that test databases are created from. */
    templateDatabase: string;
    /** What a database fresh from the template holds, to reset a used one to. */
    templateState: TemplateState;
  }
}

/**
 * vitest globalSetup: one PostgreSQL server for the whole run, so `npm test` needs none installed.
 * Its data is thrown away, so it skips durability work (fsync) that only slows the run.
 */
export default async function setup(project: TestProject) {
  const postgres = await scratchPostgres(process.env.TEST_ADMIN_DATABASE_URL, {
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: 200,
  });
  if (postgres.source === 'throwaway') console.log(`tests: no PostgreSQL on 127.0.0.1:5432, started one on ${new URL(postgres.adminUrl).host}`);
  const templateName = `parley_test_template_${process.pid}`;
  const template = await createTemplateDatabase(postgres.adminUrl, templateName);
  project.provide('adminDatabaseUrl', postgres.adminUrl);
  project.provide('templateDatabase', templateName);
  project.provide('templateState', template.state);
  return async () => {
    await template.drop();
    await postgres.stop();
  };
}
