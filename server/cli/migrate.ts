import { loadConfig } from '../infra/config/config.ts';
import { exitOnEmbeddedDatabaseError } from '../infra/db/embedded-errors.ts';
import { startEmbeddedPostgres } from '../infra/db/embedded-postgres.ts';
import { createOrm, migrate } from '../infra/db/orm.ts';

// Same target as `npm start`: DATABASE_DIRECT_URL (past a pooler), DATABASE_URL, or the embedded database under DATA_DIR.
const config = loadConfig();
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir, { logFormat: config.logFormat }).catch(exitOnEmbeddedDatabaseError);
const orm = await createOrm({ clientUrl: config.databaseDirectUrl ?? embedded!.url, poolMax: 1 });
try {
  const applied = await migrate(orm);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
} finally {
  await orm.close(true);
  await embedded?.close();
}
