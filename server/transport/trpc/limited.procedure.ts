import type { LimitedAction } from '../../infra/config/config.ts';
import { authedProcedure } from './procedures.ts';

/**
 * An authenticated procedure that first takes one of the caller's `action` tokens. Every surface
 * calls procedures (REST and legacy WS through `createCaller`), so this one limiter covers them all.
 * The limit is applied by the caller rules in procedures.ts, which read it from the meta.
 */
export const limitedProcedure = (action: LimitedAction) => authedProcedure.meta({ limit: action });
