import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ParleyError } from '../../../contracts/index.ts';
import { replyError } from '../errors/http-reply.ts';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { isTrpcRequest, trpcHttpErrorBody } from '../errors/trpc-http-error.ts';

/**
 * Fastify's `frameworkErrors`: a path it cannot decode (a malformed `%`-escape) or route. Its own
 * answer echoes the whole URL, `?token=` JWT included; ours is the surface's usual 404.
 */
export function replyToBadUrl(error: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  // @fastify/websocket ends a refused upgrade's socket in an onResponse hook, which a framework
  // error never reaches: without this the socket stays open and blocks shutdown.
  if (req.headers.upgrade) reply.raw.once('finish', () => req.raw.socket.destroy());
  const parley =
    error.code === 'FST_ERR_ASYNC_CONSTRAINT' ? new ParleyError('INTERNAL', 'Internal server error') : new ParleyError('NOT_FOUND', 'Not found.');
  if (!isTrpcRequest(req)) return replyError(reply, parley);
  return reply.code(ERROR_MAP[parley.code].http).send(trpcHttpErrorBody(req, parley));
}
