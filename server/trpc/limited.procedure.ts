import { toParleyError } from '../errors/to-parley-error.ts';
import type { LimitedAction } from '../limits/rate-limiter.ts';
import { authedProcedure } from './procedures.ts';

/**
 * An authenticated procedure that first takes one of the caller's `action` tokens. Every surface
 * calls procedures (REST and legacy WS through `createCaller`), so this one limiter covers them all.
 * Sends are measured here too, by surface and outcome.
 */
export const limitedProcedure = (action: LimitedAction) =>
  authedProcedure.use(async ({ ctx, next }) => {
    const { limiter, metrics } = ctx.services;
    const started = performance.now();
    const done = (outcome: string) => {
      if (action === 'send') metrics.sendDone(ctx.surface, outcome, (performance.now() - started) / 1000);
    };
    try {
      await limiter.take(action, ctx.userId);
    } catch (err) {
      done(toParleyError(err).code);
      throw err;
    }
    const result = await next();
    done(result.ok ? 'ok' : toParleyError(result.error).code);
    return result;
  });
