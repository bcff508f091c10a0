import { fastifyTRPCPlugin, type FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import type { FastifyInstance } from 'fastify';
import { TRPC_BATCH_MAX_ITEMS } from '../../contracts/index.ts';
import type { Services } from '../services.ts';
import { appRouter, type AppRouter } from '../trpc/app.router.ts';
import { createContextFactory } from '../trpc/context.ts';

/** tRPC over HTTP (batched) at /trpc and over WebSocket at the same path. */
export async function registerTrpcAdapter(app: FastifyInstance, services: Services) {
  // A batch carries up to TRPC_BATCH_MAX_ITEMS calls (the SDK's limit), each within the body limit.
  const bodyLimit = services.config.bodyLimitBytes * TRPC_BATCH_MAX_ITEMS;
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/trpc')) route.bodyLimit = bodyLimit;
  });
  const options: FastifyTRPCPluginOptions<AppRouter> = {
    prefix: '/trpc',
    useWSS: true,
    trpcOptions: {
      router: appRouter,
      createContext: createContextFactory(services),
      keepAlive: { enabled: true, pingMs: services.config.wsPingMs, pongWaitMs: 5_000 },
      onError({ error, path }) {
        if (error.code === 'INTERNAL_SERVER_ERROR') app.log.error({ err: error.cause ?? error, path }, 'tRPC procedure failed');
      },
    },
  };
  await app.register(fastifyTRPCPlugin, options);
}
