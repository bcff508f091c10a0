import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.ts';

/** Keeps the open-socket gauge by surface: tRPC's sockets are the ones upgraded under `/trpc`. */
export function countOpenSockets(app: FastifyInstance, metrics: Metrics) {
  // One close listener per surface, shared by its sockets: no closure per socket.
  const closed = { trpc: () => metrics.socket('trpc', -1), 'legacy-ws': () => metrics.socket('legacy-ws', -1) } as const;
  app.websocketServer.on('connection', (socket, req) => {
    const surface = req.url?.startsWith('/trpc') ? 'trpc' : 'legacy-ws';
    metrics.socket(surface, 1);
    socket.on('close', closed[surface]);
  });
}
