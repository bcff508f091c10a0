import { TRPCError } from '@trpc/server';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { toParleyError } from '../errors/to-parley-error.ts';
import { baseProcedure } from './procedures.ts';

/**
 * The admin API's caller rules: an admin's credentials (a user's token is FORBIDDEN), a fresh
 * EntityManager fork, the shutdown drain for mutations, and domain errors mapped to their tRPC
 * codes. No rate limit: admins are few and their credentials are the operator's.
 */
export const adminProcedure = baseProcedure.use(async ({ ctx, next, type }) => {
  let actor;
  try {
    actor = await ctx.authenticateAdmin();
  } catch (err) {
    const parley = toParleyError(err);
    if (parley.code === 'INTERNAL') throw err;
    throw new TRPCError({ code: ERROR_MAP[parley.code].trpc, message: parley.message, cause: parley });
  }
  const running = next({ ctx: { actor: actor.id, em: ctx.services.orm.em.fork() } });
  const result = await (type === 'mutation' ? ctx.services.shutdownDrain.track(running) : running);
  if (result.ok || result.error.code !== 'INTERNAL_SERVER_ERROR') return result;
  const parley = toParleyError(result.error.cause);
  if (parley.code === 'INTERNAL') return result;
  throw new TRPCError({ code: ERROR_MAP[parley.code].trpc, message: parley.message, cause: parley });
});
