import { initTRPC, TRPCError } from '@trpc/server';
import type { z } from 'zod';
import { ParleyError } from '../../../contracts/index.ts';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { toParleyError } from '../errors/to-parley-error.ts';
import { trpcErrorShape } from '../errors/trpc-error-shape.ts';
import type { LimitedAction } from '../../infra/config/config.ts';
import type { Context } from './context.ts';

/**
 * A procedure's result shape, for the OpenAPI document. Results are not re-validated at run time:
 * the server builds them from typed rows, the SDK type tests pin them to the contracts, and
 * validating every message of every page cost more CPU than serializing it.
 */
export interface ProcedureMeta {
  output?: z.ZodType;
  /** The rate-limited action a call takes one token of (see server/infra/limits/). */
  limit?: LimitedAction;
}

const t = initTRPC.context<Context>().meta<ProcedureMeta>().create({
  errorFormatter: ({ shape, error }) => trpcErrorShape(toParleyError(error), shape.data.path),
  // Subscriptions are served over the WebSocket only, where socket rules (token expiry, slow
  // reader cut-off) apply; the HTTP adapter answers them with METHOD_NOT_ALLOWED first.
  sse: { enabled: false },
});

/** The tRPC error of a domain error, with its mapped code (the ParleyError stays as `cause`); none for an unexpected one. */
function trpcErrorOf(parley: ParleyError): TRPCError | undefined {
  return parley.code === 'INTERNAL' ? undefined : new TRPCError({ code: ERROR_MAP[parley.code].trpc, message: parley.message, cause: parley });
}

export const router = t.router;
/** The bare procedure, for rules other than a user's (see admin.procedure.ts). */
export const baseProcedure = t.procedure;
export const createCallerFactory = t.createCallerFactory;

/**
 * Every rule a caller's procedure runs under, in one middleware: tRPC copies its options and the
 * context at every middleware level, and with one level per rule that copying was a tenth of the
 * server's CPU on the send path. In order: admit the call on its WebSocket (in-flight and
 * subscription bounds, before anything is awaited, so a burst read at once is counted at once),
 * resolve the caller from the token (once per context), take a rate-limit token when the
 * procedure's meta names an action, give the procedure a fresh EntityManager fork, keep a mutation
 * accepted before SIGTERM running until it is stored, count sends by surface and outcome, and map
 * domain errors to their tRPC codes.
 */
const callerRules = t.middleware(async ({ ctx, next, type, meta, signal }) => {
  const action = meta?.limit;
  const started = performance.now();
  const measure = (outcome: string) => {
    if (action === 'send') ctx.services.metrics.sendDone(ctx.surface, outcome, (performance.now() - started) / 1000);
  };
  let userId: string;
  let leave: (() => void) | undefined;
  let release: (() => void) | undefined;
  try {
    leave = ctx.socket?.admit(type);
    userId = await ctx.authenticate();
    if (action) await ctx.services.limiter.take(action, userId);
    if (type === 'subscription' && signal) {
      release = takeSubscription(ctx, userId);
      holdUntilStopped(signal, leave, release);
    }
  } catch (err) {
    leave?.();
    const parley = toParleyError(err);
    measure(parley.code);
    throw trpcErrorOf(parley) ?? err;
  }
  const running = next({ ctx: { userId, em: ctx.services.procedureEm() } });
  const result = await (type === 'mutation' ? ctx.services.shutdownDrain.track(running) : running);
  // A running subscription keeps its hold on the socket until its signal aborts.
  if (type !== 'subscription' || !result.ok) leave?.();
  if (result.ok) {
    measure('ok');
    return result;
  }
  release?.();
  // tRPC wraps what a procedure throws as INTERNAL_SERVER_ERROR; a domain error inside gets its own code.
  const parley = toParleyError(result.error.code === 'INTERNAL_SERVER_ERROR' ? result.error.cause : result.error);
  measure(parley.code);
  const mapped = result.error.code === 'INTERNAL_SERVER_ERROR' ? trpcErrorOf(parley) : undefined;
  if (mapped) throw mapped;
  return result;
});

/**
 * A subscription holds one of its user's slots until it stops (its signal aborts on stop, when its
 * stream ends or fails, and when the socket closes): the sum over all of a user's sockets is capped, not each socket alone.
 */
function takeSubscription(ctx: Context, userId: string) {
  const { subscriptionSlots } = ctx.services;
  const release = subscriptionSlots.take(userId);
  if (!release) throw new ParleyError('RATE_LIMITED', `At most ${subscriptionSlots.max} subscriptions per user at once; stop one first.`);
  return release;
}

/**
 * A running subscription holds its socket's slot and its user's until its signal aborts: one
 * listener for both, as an idle subscription keeps its listeners for its whole life.
 */
function holdUntilStopped(signal: AbortSignal, leave: (() => void) | undefined, release: () => void) {
  const stopped = () => {
    leave?.();
    release();
  };
  if (signal.aborted) stopped();
  else signal.addEventListener('abort', stopped, { once: true });
}

/** A procedure for a caller identified by their token; see {@link callerRules}. */
export const authedProcedure = t.procedure.use(callerRules);
