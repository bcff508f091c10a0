import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ParleyError, type AnyParleyError } from '../../../contracts/index.ts';
import { errorHeaders, httpErrorOf } from '../errors/http-reply.ts';

export interface MetricsListenerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** When set, a scrape must send `Authorization: Bearer <token>`. */
  token: string | undefined;
  /** The Prometheus text of one scrape. */
  scrape(): Promise<string>;
  onError(err: unknown): void;
}

export interface MetricsListener {
  /** Where to scrape, e.g. `http://127.0.0.1:9464/metrics`. */
  url: string;
  close(): Promise<void>;
}

// Digests of equal length, so the comparison takes the same time whatever the guess.
const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * `GET /metrics` on a port of its own, away from the API: the API port is public, and every scrape
 * costs CPU (prom-client renders every family). Answers in the API's error shapes; nothing else is served.
 */
export async function listenForScrapes({ host, port, token, scrape, onError }: MetricsListenerOptions): Promise<MetricsListener> {
  const expected = token === undefined ? undefined : digest(token);
  const fail = (res: ServerResponse, parley: AnyParleyError, headers: Record<string, string> = {}) => {
    const { status, body } = httpErrorOf(parley);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...errorHeaders(parley), ...headers }).end(JSON.stringify(body));
  };
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 10_000 }, (req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (path !== '/metrics') return fail(res, new ParleyError('NOT_FOUND', 'Not found: scrape /metrics.'));
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, new ParleyError('METHOD_NOT_ALLOWED', `Method "${req.method}" not allowed.`), { allow: 'GET, HEAD' });
    if (expected) {
      const bearer = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (bearer === undefined) return fail(res, new ParleyError('UNAUTHENTICATED', 'Send the metrics token (METRICS_TOKEN) as Authorization: Bearer <token>.'));
      if (!timingSafeEqual(digest(bearer), expected)) return fail(res, new ParleyError('TOKEN_INVALID', 'Wrong metrics token.'));
    }
    scrape().then(
      // Node leaves the body out of an answer to HEAD.
      (text) => res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(text),
      (err: unknown) => {
        onError(err);
        fail(res, new ParleyError('INTERNAL', 'The metrics could not be read.'));
      },
    );
  });
  server.listen({ host, port });
  // Rejects on a busy port or an address not of this machine, like the API's listen.
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${address.port}/metrics`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
