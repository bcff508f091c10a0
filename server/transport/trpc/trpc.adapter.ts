import type { TRPCError } from '@trpc/server';
import { fastifyRequestHandler } from '@trpc/server/adapters/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { ParleyError, TRPC_BATCH_MAX_ITEMS } from '../../../contracts/index.ts';
import { extractToken } from '../http/token-sources.ts';
import { errorHeaders } from '../errors/http-reply.ts';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { toParleyError } from '../errors/to-parley-error.ts';
import { trpcHttpErrorBody } from '../errors/trpc-http-error.ts';
import type { Services } from '../../services.ts';
import { appRouter } from './app.router.ts';
import { contextForToken, type Context } from './context.ts';
import { procedureType } from './procedure-types.ts';
import { SocketContext } from './socket-context.ts';
import { answerJsonCalls } from './trpc-json-calls.ts';
import { startSocketSession } from '../ws/socket-session.ts';
import { TrpcSocket } from './ws-connection.ts';

/**
 * tRPC over HTTP (batched) at /trpc, through tRPC's own adapter (plain JSON calls take the path in
 * trpc-json-calls.ts, see why there), and over WebSocket at the same path (ws-connection.ts).
 */
export async function registerTrpcAdapter(app: FastifyInstance, services: Services) {
  const { config } = services;
  const log = app.log;
  const onError = ({ error, path, type }: { error: TRPCError; path: string | undefined; type: string }) => {
    const { code } = toParleyError(error);
    // Client mistakes are routine; `error` is for our own faults, so a client cannot flood it.
    if (code === 'INTERNAL') log.error({ err: error.cause ?? error, path, type }, 'tRPC procedure failed');
    else log.info({ code, path, type }, 'tRPC call refused');
  };

  // tRPC's own handler answers errors with the same headers as every other HTTP surface.
  const responseMeta = ({ errors }: { errors: TRPCError[] }) => ({ headers: Object.assign({}, ...errors.map((e) => errorHeaders(toParleyError(e)))) as Record<string, string> });

  // Subscriptions live on the WebSocket, where the socket rules apply. With Server-Sent Events
  // turned off tRPC still runs the procedure and answers with an event stream holding the error,
  // so they are refused before tRPC sees them.
  async function refuseSubscriptionsOverHttp(req: FastifyRequest<{ Params: { path: string } }>, reply: FastifyReply) {
    if (!req.params.path.split(',').some((path) => procedureType(path) === 'subscription')) return;
    const refusal = new ParleyError('METHOD_NOT_ALLOWED', 'Subscriptions are served over the WebSocket at /trpc, not over HTTP.');
    return reply.code(ERROR_MAP.METHOD_NOT_ALLOWED.http).send(trpcHttpErrorBody(req, refusal));
  }

  const socketOptions = { router: appRouter, onError };
  const rules = { maxBufferedBytes: config.wsSendQueueMaxBytes, maxInflight: config.wsMaxInflight, maxInflightBytes: config.wsMaxInflightBytes, pingMs: config.wsPingMs };

  await app.register(async (scope) => {
    // Everything under /trpc answers in tRPC's error shape: Fastify's own failures (body limit,
    // bad media type) and unknown paths included.
    const replyTrpcError = (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
      const parley = toParleyError(err);
      if (parley.code === 'INTERNAL') req.log.error({ err }, 'tRPC request failed');
      return reply.code(ERROR_MAP[parley.code].http).headers(errorHeaders(parley)).send(trpcHttpErrorBody(req, parley));
    };
    scope.setErrorHandler((err, req, reply) => replyTrpcError(err, req, reply));
    scope.setNotFoundHandler((req, reply) => replyTrpcError(new ParleyError('NOT_FOUND', 'Not found.'), req, reply));
    // tRPC parses bodies itself.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));

    scope.all<{ Params: { path: string } }>(
      '/:path',
      // A batch carries up to TRPC_BATCH_MAX_ITEMS calls, each within the body limit.
      { bodyLimit: config.bodyLimitBytes * TRPC_BATCH_MAX_ITEMS, preHandler: refuseSubscriptionsOverHttp },
      async (req, reply) => {
        // One context per request, whichever path answers: the token is verified once.
        const ctx = contextForToken(services, extractToken({ authorization: req.headers.authorization, url: req.url }));
        if (await answerJsonCalls(req, reply, req.params.path, ctx, { onError, responseMeta })) return reply;
        return fastifyRequestHandler({ router: appRouter, onError, responseMeta, maxBatchSize: TRPC_BATCH_MAX_ITEMS, createContext: () => ctx, req, res: reply, path: req.params.path });
      },
    );

    scope.get('/', { websocket: true }, (socket: WebSocket, req: FastifyRequest) => {
      const session = startSocketSession(socket, req, rules);
      // What the context needs of the upgrade request, read now: an idle socket must not keep the request alive.
      const { authorization } = req.headers;
      const { url } = req;
      // No batch limit here: tRPC's WebSocket client sends every call of a tick as one batch (all
      // subscriptions at once after a reconnect); the socket's bounds (socket-context.ts) bound the work.
      const trpc = new TrpcSocket<Context>(
        socket,
        socketOptions,
        // Made once per socket: its context carries the socket's bounds to every call on it.
        (connectionParams) => new SocketContext(services, extractToken({ authorization, url, connectionParams }), session, config.wsMaxSubscriptions),
        new URL(url, 'http://localhost').searchParams.get('connectionParams') === '1',
      );
      session.serve(trpc);
    });
  }, { prefix: '/trpc' });
}
