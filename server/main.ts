import { createApp } from './app.ts';
import { loadConfig } from './config.ts';
import { exitOnEmbeddedDatabaseError } from './db/embedded-errors.ts';

const config = loadConfig();
const app = await createApp(config).catch(exitOnEmbeddedDatabaseError);
const url = await app.listen();
app.fastify.log.info(`Parley serving on ${url} (${config.databaseUrl ? 'PostgreSQL at DATABASE_URL' : `embedded PostgreSQL in ${config.dataDir}/postgres`})`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    app.fastify.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + 5_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.fastify.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
