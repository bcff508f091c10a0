import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../../infra/config/config.ts';
import { httpErrorOf } from '../errors/http-reply.ts';
import { ParleyError } from '../../../contracts/index.ts';

/**
 * The HTTP server under Fastify, with the limits a public chat server needs: a client that
 * sends its headers a byte at a time is cut off after `httpHeadersTimeoutMs`, a request body
 * after `httpRequestTimeoutMs`, and one address holds at most `maxConnectionsPerIp` connections
 * (WebSockets included) — beyond it a connection is answered 429 and closed.
 */
export function httpServerFactory(config: Config) {
  return (handler: RequestListener): Server => {
    const server = createServer(
      {
        headersTimeout: config.httpHeadersTimeoutMs,
        requestTimeout: Math.max(config.httpRequestTimeoutMs, config.httpHeadersTimeoutMs),
        // Node checks those timeouts only this often (default 30 s).
        connectionsCheckingInterval: Math.min(1_000, config.httpHeadersTimeoutMs),
      },
      handler,
    );
    if (config.maxConnectionsPerIp > 0) capConnectionsPerIp(server, config.maxConnectionsPerIp);
    return server;
  };
}

function capConnectionsPerIp(server: Server, max: number) {
  const open = new Map<string, number>();
  const { status, body } = httpErrorOf(new ParleyError('RATE_LIMITED', 'Too many connections from your address.'));
  const refusal = JSON.stringify(body);
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const count = (open.get(ip) ?? 0) + 1;
    if (count > max) {
      socket.end(`HTTP/1.1 ${status} Too Many Requests\r\nConnection: close\r\nRetry-After: 10\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(refusal)}\r\n\r\n${refusal}`);
      socket.destroySoon();
      return;
    }
    open.set(ip, count);
    socket.once('close', () => {
      const left = open.get(ip)! - 1;
      if (left > 0) open.set(ip, left);
      else open.delete(ip);
    });
  });
}
