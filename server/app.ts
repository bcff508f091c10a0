import { fileURLToPath } from 'node:url';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import type { WebsocketPluginOptions } from '@fastify/websocket';
import { registerLegacyWsAdapter } from './transport/legacy/ws-chat.ts';
import { registerRestAdapter } from './transport/legacy/rest.routes.ts';
import { registerAdminRoutes } from './transport/admin/admin.routes.ts';
import { registerTrpcAdapter } from './transport/trpc/trpc.adapter.ts';
import { devSecretFile, loadOrCreateDevSecret } from './identity/dev-secret.ts';
import type { Config } from './infra/config/config.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './infra/db/embedded-postgres.ts';
import { closeOrm, createOrm, migrateAt } from './infra/db/orm.ts';
import { ParleyError } from '../contracts/index.ts';
import { replyError } from './transport/errors/http-reply.ts';
import { ERROR_MAP } from './transport/errors/transport-codes.ts';
import { httpServerFactory } from './transport/http/http-server.ts';
import { replyToBadUrl } from './transport/http/bad-url.ts';
import { registerCors } from './transport/http/cors.ts';
import { PRETTY_OPTIONS } from './infra/log-line.ts';
import { DATABASE_READ_PERIOD_MS } from './infra/metrics/metrics.ts';
import { sharedRead } from './infra/metrics/shared-read.ts';
import { DebugRequestLog } from './transport/http/request-log.ts';
import { logSerializers } from './transport/http/log-serializers.ts';
import { drainUnreadBodies } from './transport/http/unread-body.ts';
import { refuseInvalidUtf8Bodies } from './transport/http/utf8-body.ts';
import { registerDemoRoutes } from './transport/http/demo.routes.ts';
import { registerFileRoutes } from './transport/http/files.routes.ts';
import { registerDocsRoutes } from './transport/openapi/docs.routes.ts';
import { lazySchemaCompilers } from './transport/http/lazy-schema-compilers.ts';
import { listenForScrapes, type MetricsListener } from './transport/http/metrics-listener.ts';
import { countOpenSockets } from './infra/metrics/socket-metrics.ts';
import { createScaleOut, type ScaleOut } from './scale-out.ts';
import { logSocketError, SessionSocket } from './transport/ws/socket-session.ts';
import { createServices, type Services } from './services.ts';

export interface ParleyApp {
  fastify: FastifyInstance;
  services: Services;
  /** The HS256 secret tokens are verified with (the dev secret on the embedded default). */
  jwtSecret: string | undefined;
  /** Starts listening (the metrics listener first); resolves to the base URL, e.g. `http://127.0.0.1:3000`. */
  listen(): Promise<string>;
  /** Where `/metrics` is scraped once listening, e.g. `http://127.0.0.1:9464/metrics`; undefined with `METRICS_PORT=off`. */
  readonly metricsUrl: string | undefined;
  /** Graceful: stop accepting, close sockets with 1001, drain in-flight requests, close the database. */
  close(): Promise<void>;
  /** What a close in progress is waiting for (`connections`, `presence`, `database`, …), so a stuck shutdown can say where. */
  readonly shutdownStage: string | undefined;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Connections the kernel holds for the server before it accepts them. A restarted instance is met
 * by every client that lost it: with Node's default (511) the queue of a reconnect storm overflowed,
 * and the kernel dropped handshakes, which clients retry only after 1, 3, 7, 15 s. The kernel caps
 * it at `net.core.somaxconn`.
 */
export const LISTEN_BACKLOG = 4096;

/** The one way to build the service; `main` and every test use it. */
export async function createApp(config: Config): Promise<ParleyApp> {
  let embedded: EmbeddedPostgres | undefined;
  if (!config.databaseUrl) embedded = await startEmbeddedPostgres(config.dataDir, { logFormat: config.logFormat });
  const orm = await createOrm({ clientUrl: config.databaseUrl ?? embedded!.url, poolMax: config.dbPoolMax, replicaUrls: config.databaseReplicaUrls });
  try {
    await migrateAt(orm, config);
  } catch (err) {
    await orm.close(true);
    await embedded?.close();
    throw err;
  }
  const jwtSecret = config.tokens === 'dev' ? await loadOrCreateDevSecret(config.dataDir) : config.jwt.hsSecret;

  const fastify = Fastify({
    logger: {
      level: config.logLevel,
      serializers: logSerializers,
      ...(config.logFormat === 'pretty' ? { transport: { target: 'pino-pretty', options: PRETTY_OPTIONS } } : {}),
    },
    logController: new DebugRequestLog(),
    frameworkErrors: replyToBadUrl,
    bodyLimit: config.bodyLimitBytes,
    // tRPC batches put every procedure name in the path: the default 100 fails at ~10 calls.
    routerOptions: { maxParamLength: 5_000, ignoreTrailingSlash: true },
    return503OnClosing: true,
    serverFactory: httpServerFactory(config),
    schemaController: lazySchemaCompilers,
  });
  if (config.tokens === 'dev') {
    fastify.log.warn(
      `Development mode: tokens are minted locally for any user name (POST /demo/token, npm run token), signed with the generated secret kept in ${devSecretFile(config.dataDir)}; set JWT_SECRET or JWT_JWKS_URL to accept only real tokens`,
    );
  }
  let scale: ScaleOut;
  try {
    scale = await createScaleOut({ config, orm, log: fastify.log });
  } catch (err) {
    await orm.close(true);
    await embedded?.close();
    throw err;
  }
  const services = await createServices({ config, orm, log: fastify.log, jwtSecret, scale });
  try {
    await services.push.start();
    services.webhooks.start();
  } catch (err) {
    await scale.close();
    await orm.close(true);
    await embedded?.close();
    throw err;
  }

  await registerCors(fastify, config);
  refuseInvalidUtf8Bodies(fastify);
  drainUnreadBodies(fastify, { maxMs: config.httpRequestTimeoutMs });
  await fastify.register(websocket, {
    // Sockets that apply their session's rules through the prototype (see socket-session.ts).
    options: { maxPayload: config.wsMaxPayloadBytes, WebSocket: SessionSocket as unknown as NonNullable<WebsocketPluginOptions['options']>['WebSocket'] },
    // Errors thrown by a handler; once its session started, a socket's errors are logged there alike.
    errorHandler: (err, socket, req) => {
      logSocketError(req.log, err);
      socket.terminate();
    },
    preClose(done) {
      const { wsClose } = ERROR_MAP.SHUTTING_DOWN;
      for (const client of fastify.websocketServer.clients) client.close(wsClose, 'server shutting down');
      done();
    },
  });
  fastify.get('/healthz', async () => ({ status: 'ok' }));
  // Probes are public: however often they come, the database is asked at most once a period.
  const databaseReachable = sharedRead(DATABASE_READ_PERIOD_MS, () =>
    orm.em.fork().execute('select 1').then(
      () => true,
      (err: unknown) => {
        fastify.log.warn({ err }, 'readiness: database unreachable');
        return false;
      },
    ),
  );
  fastify.get('/readyz', async (_req, reply) => {
    if (!(await databaseReachable())) return reply.code(503).send({ status: 'unavailable', detail: 'database unreachable' });
    // Sends still work without the engine, but live events from other instances stop until it returns.
    if (!services.fanout.isUp()) return reply.code(503).send({ status: 'unavailable', detail: `fan-out engine (${services.fanout.name}) disconnected` });
    return { status: 'ok' };
  });
  // Outside /trpc (whose plugin answers in tRPC's shape) errors keep DRF's shapes.
  fastify.setErrorHandler((err, _req, reply) => replyError(reply, err));
  fastify.setNotFoundHandler((_req, reply) => replyError(reply, new ParleyError('NOT_FOUND', 'Not found.')));
  await registerTrpcAdapter(fastify, services);
  await registerRestAdapter(fastify, services);
  await registerLegacyWsAdapter(fastify, services);
  await registerAdminRoutes(fastify, services);
  if (services.localFiles) await registerFileRoutes(fastify, services.localFiles, services.attachments.arrivals);
  await registerDocsRoutes(fastify);
  countOpenSockets(fastify, services.metrics);
  await registerDemoRoutes(fastify, {
    distDir: fileURLToPath(new URL('../demo/dist/', import.meta.url)),
    devSecret: config.tokens === 'dev' ? jwtSecret : undefined,
    roleClaim: config.jwt.roleClaim,
      messageEditWindowSeconds: config.messageEditWindowSeconds,
  });
  // The root is what a newcomer opens first: in development it leads to the demo, not to a JSON 404.
  if (config.env === 'development') fastify.get('/', (_req, reply) => reply.redirect('/demo/'));

  services.attachments.start();

  let metricsListener: MetricsListener | undefined;
  let shutdownStage: string | undefined;
  fastify.addHook('onClose', async () => {
    shutdownStage = 'metrics listener';
    await metricsListener?.close();
    shutdownStage = 'in-flight sends';
    if (!(await services.shutdownDrain.drain(config.shutdownGraceMs))) fastify.log.warn('shutdown: in-flight sends did not finish in time');
    shutdownStage = 'push and webhook jobs';
    await services.push.close();
    await services.webhooks.close();
    await services.jobs.close();
    // Closed sockets store their users' last-seen times (and publish it) before the bus and the database go.
    shutdownStage = 'attachment jobs';
    await services.attachments.close();
    shutdownStage = 'presence';
    await services.presence.close();
    services.blocks.view.close();
    services.admin.bans.view.close();
    services.moderator?.close();
    shutdownStage = 'fan-out engine and rate limiter';
    await scale.close();
    shutdownStage = 'database pool';
    // A connection still checked out would hold the pool's close for ever: the grace period bounds it.
    const poolClosed = await closeOrm(orm, config.shutdownGraceMs);
    if (!poolClosed) fastify.log.warn('shutdown: the database pool did not close within the grace period (a connection still checked out); going on without it');
    shutdownStage = 'embedded database';
    await embedded?.close();
    shutdownStage = 'closed';
  });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      shutdownStage = 'connections';
      // The grace period is a bound, not a hope: a client that never answers the closing
      // handshake would otherwise hold the process for ws's 30 s close timeout, past the point
      // where main.ts gives up and exits 1.
      const timer = setTimeout(() => {
        fastify.log.warn({ stage: shutdownStage }, 'shutdown grace period elapsed: dropping the connections still open');
        for (const client of fastify.websocketServer.clients) client.terminate();
        fastify.server.closeAllConnections();
      }, config.shutdownGraceMs);
      try {
        await fastify.close();
      } finally {
        clearTimeout(timer);
      }
    })());

  return {
    fastify,
    services,
    jwtSecret,
    async listen() {
      const scrapes = config.metrics;
      if (scrapes.port !== 'off') {
        metricsListener = await listenForScrapes({ ...scrapes, port: scrapes.port, scrape: services.metrics.text, onError: (err) => fastify.log.error({ err }, 'metrics scrape failed') });
      }
      await fastify.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG });
      const address = fastify.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    },
    get shutdownStage() {
      return shutdownStage;
    },
    get metricsUrl() {
      return metricsListener?.url;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
