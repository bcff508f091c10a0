import type { FastifyReply } from 'fastify';
import type { AnyParleyError } from '../../../contracts/index.ts';
import { ERROR_MAP } from './transport-codes.ts';
import { toParleyError } from './to-parley-error.ts';

/** The HTTP status and DRF-shaped body for any error: field errors for INVALID_INPUT, `{detail}` (plus any field errors) otherwise. */
export function httpErrorOf(err: unknown): { status: number; body: Record<string, unknown>; parley: AnyParleyError } {
  const parley = toParleyError(err);
  const status = ERROR_MAP[parley.code].http;
  const fields = parley.code === 'INVALID_INPUT' || parley.code === 'FORBIDDEN' ? parley.details.fields : undefined;
  const body = parley.code === 'INVALID_INPUT' && fields ? fields : { detail: parley.message, ...fields };
  return { status, body, parley };
}

/** Headers an error answer carries on every HTTP surface: a Bearer challenge on 401 (RFC 6750), Retry-After on 429. */
export function errorHeaders(parley: AnyParleyError): Record<string, string> {
  const headers: Record<string, string> = {};
  if (ERROR_MAP[parley.code].http === 401) {
    headers['www-authenticate'] = parley.code === 'UNAUTHENTICATED' ? 'Bearer realm="parley"' : 'Bearer realm="parley", error="invalid_token"';
  }
  if (parley.code === 'RATE_LIMITED' && parley.details.retryAfterSeconds !== undefined) headers['retry-after'] = String(parley.details.retryAfterSeconds);
  return headers;
}

/** Sends an error the way DRF clients parse it, with its {@link errorHeaders}. */
export function replyError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body, parley } = httpErrorOf(err);
  if (parley.code === 'INTERNAL') reply.log.error({ err }, 'request failed');
  return reply.code(status).headers(errorHeaders(parley)).send(body);
}
