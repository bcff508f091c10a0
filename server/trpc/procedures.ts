import { initTRPC, TRPCError } from '@trpc/server';
import type { z } from 'zod';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { toParleyError } from '../errors/to-parley-error.ts';
import { trpcErrorShape } from '../errors/trpc-error-shape.ts';
import type { Context } from './context.ts';

/**
 * A procedure's result shape, for the OpenAPI document. Results are not re-validated at run time:
 * the server builds them from typed rows, the SDK type tests pin them to the contracts, and
 * validating every message of every page cost more CPU than serializing it.
 */
export interface ProcedureMeta {
  output?: z.ZodType;
}

const t = initTRPC.context<Context>().meta<ProcedureMeta>().create({
  errorFormatter: ({ shape, error }) => trpcErrorShape(toParleyError(error), shape.data.path),
  // Subscriptions are served over the WebSocket only, where socket rules (token expiry, slow
  // reader cut-off) apply; the HTTP adapter answers them with METHOD_NOT_ALLOWED first.
  sse: { enabled: false },
});

/** Domain errors become tRPC errors with the mapped code; the ParleyError stays as `cause`. */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.code === 'INTERNAL_SERVER_ERROR') {
    const parley = toParleyError(result.error.cause);
    if (parley.code !== 'INTERNAL') {
      throw new TRPCError({ code: ERROR_MAP[parley.code].trpc, message: parley.message, cause: parley });
    }
  }
  return result;
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(mapDomainErrors);

/** Resolves the caller from the token once per call and gives it a fresh EntityManager fork. */
export const authedProcedure = publicProcedure.use(async ({ ctx, next, type }) => {
  const userId = await ctx.authenticate();
  const result = next({ ctx: { userId, em: ctx.services.orm.em.fork() } });
  // A send accepted before SIGTERM is finished and stored, not cut off by the database closing.
  return type === 'mutation' ? ctx.services.shutdownDrain.track(result) : result;
});
