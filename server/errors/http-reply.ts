import type { FastifyReply } from 'fastify';
import type { ParleyError } from '../../contracts/index.ts';
import { ERROR_MAP } from './map.ts';
import { toParleyError } from './to-parley-error.ts';

/** The HTTP status and DRF-shaped body for any error: field errors for INVALID_INPUT, `{detail}` (plus any field errors) otherwise. */
export function httpErrorOf(err: unknown): { status: number; body: Record<string, unknown>; parley: ParleyError } {
  const parley = toParleyError(err);
  const status = ERROR_MAP[parley.code].http;
  const fields = parley.details.fields;
  const body = parley.code === 'INVALID_INPUT' && fields ? fields : { detail: parley.message, ...fields };
  return { status, body, parley };
}

/** Sends an error the way DRF clients parse it; 401s carry `WWW-Authenticate: Bearer` (RFC 6750). */
export function replyError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body, parley } = httpErrorOf(err);
  if (status === 401) {
    const challenge = parley.code === 'UNAUTHENTICATED' ? 'Bearer realm="parley"' : `Bearer realm="parley", error="invalid_token"`;
    void reply.header('www-authenticate', challenge);
  }
  if (parley.details.retryAfterSeconds !== undefined) void reply.header('retry-after', String(parley.details.retryAfterSeconds));
  if (parley.code === 'INTERNAL') reply.log.error({ err }, 'request failed');
  return reply.code(status).send(body);
}
