import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.ts';

/** `GET /metrics` in Prometheus text format, and the open-socket gauge by surface. */
export function registerMetricsRoutes(app: FastifyInstance, { metrics }: Services) {
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.text();
    return reply.type(metrics.registry.contentType).send(text);
  });
  app.websocketServer.on('connection', (socket, req) => {
    const surface = req.url?.startsWith('/trpc') ? 'trpc' : 'legacy-ws';
    metrics.socket(surface, 1);
    socket.once('close', () => metrics.socket(surface, -1));
  });
}
