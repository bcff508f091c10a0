import cluster from 'node:cluster';
import { createApp, type ParleyApp } from './app.ts';
import { startBanner } from './cli/start-banner.ts';
import { startFailureMessage } from './cli/start-failure.ts';
import { runPrimary } from './cluster-primary.ts';
import { loadConfig, type Config } from './infra/config/config.ts';
import { misspellingMessage } from './infra/config/config-typos.ts';
import { logLine } from './infra/log-line.ts';

let config: Config | undefined;
let app: ParleyApp | undefined;
async function start() {
  config = loadConfig();
  // Once per cluster (the workers read the same environment), and before anything that can fail:
  // a mistyped DATABASE_URL is named before the embedded database starts in its place.
  if (cluster.isPrimary) for (const m of config.misspellings) warnBeforeLogger(config, misspellingMessage(m));
  // WORKERS>1: this process only deals connections to workers, each of which runs the code below.
  if (config.workers > 1 && cluster.isPrimary) return void (await runPrimary(config));
  app = await createApp(config);
  return { config, app, url: await app.listen() };
}
/** A warn line before the app's logger exists, unless the configured level hides warnings. */
function warnBeforeLogger({ logLevel, logFormat }: Config, msg: string) {
  if (!['error', 'fatal', 'silent'].includes(logLevel)) logLine(logFormat, 'warn', msg);
}

const started = await start().catch(async (err: unknown) => {
  console.error(startFailureMessage(err, config));
  // A start that failed exits promptly whatever its partial close waits for; if that wait is what
  // holds it, the line says which stage.
  const bound = config?.shutdownGraceMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const closedInTime = await Promise.race([
    (app?.close() ?? Promise.resolve()).then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), bound))),
  ]);
  clearTimeout(timer);
  if (!closedInTime) console.error(`(closing after the failed start was still waiting for: ${app?.shutdownStage ?? 'unknown'} after ${bound} ms; exiting anyway)`);
  return process.exit(1);
});
if (started) {
  const { url } = started;
  const { metricsUrl } = started.app;
  const metrics = metricsUrl ? `on ${metricsUrl}` : cluster.isWorker ? 'served by the primary' : 'off';
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      started.app.fastify.log.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), started.config.shutdownGraceMs + 5_000);
      force.unref();
      started.app.close().then(
        () => process.exit(0),
        (err: unknown) => {
          started.app.fastify.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  // Only now: a supervisor may stop the server as soon as it reads that it serves.
  started.app.fastify.log.info(startBanner(started.config, url, metrics));
}
