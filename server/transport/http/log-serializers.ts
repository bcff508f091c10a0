import type { FastifyRequest } from 'fastify';

/** The URL with the value of any `token=` query parameter replaced, so a JWT never reaches a log. */
export function redactToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/**
 * pino's request serializer, as Fastify's default but for the URL: WebSocket clients put their
 * JWT in `?token=`, and requests are logged at `debug`.
 */
export const logSerializers = {
  req(req: FastifyRequest) {
    return { method: req.method, url: redactToken(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
  },
};
