import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.ts';

/** Keeps the open-socket gauge by surface: tRPC's sockets are the ones upgraded under `/trpc`. */
export function countOpenSockets(app: FastifyInstance, metrics: Metrics) {
  app.websocketServer.on('connection', (socket, req) => {
    const surface = req.url?.startsWith('/trpc') ? 'trpc' : 'legacy-ws';
    metrics.socket(surface, 1);
    socket.once('close', () => metrics.socket(surface, -1));
  });
}
