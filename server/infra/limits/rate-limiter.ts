import { ParleyError } from '../../../contracts/index.ts';
import type { LimitedAction, RateRule } from '../config/config.ts';


/** One limiter for every surface: it runs in the procedures that REST and legacy WS call too. */
export interface RateLimiter {
  /** Takes one token of `action` for `userId`, or throws RATE_LIMITED with the seconds to wait. */
  take(action: LimitedAction, userId: string): Promise<void>;
  /** Where the counts live: `redis` (shared by every instance) or `memory` (this process). */
  readonly scope: 'redis' | 'memory';
  close(): Promise<void>;
}

/** Milliseconds until the next token, or 0 when one was taken. */
export type TakeToken = (key: string, rule: RateRule) => Promise<number>;

export function rateLimited(retryAfterMs: number): ParleyError<'RATE_LIMITED'> {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ParleyError('RATE_LIMITED', `Request was throttled. Expected available in ${retryAfterSeconds} seconds.`, { retryAfterSeconds });
}

/** Token buckets in this process: exact for one instance; with N instances a user gets up to N times the rate. */
export function createMemoryTokens(now = Date.now): TakeToken {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return async (key, { perSec, burst }) => {
    const t = now();
    const b = buckets.get(key) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + ((t - b.at) * perSec) / 1000);
    b.at = t;
    // A full bucket says nothing a missing one does not, so the map holds only recent senders.
    if (buckets.size > 10_000) for (const [k, v] of buckets) if (v.tokens + ((t - v.at) * perSec) / 1000 >= burst) buckets.delete(k);
    buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return ((1 - b.tokens) * 1000) / perSec;
  };
}

export function createRateLimiter({
  rules,
  tokens,
  scope,
  close = async () => {},
}: {
  rules: Readonly<Record<LimitedAction, RateRule>>;
  tokens: TakeToken;
  scope: RateLimiter['scope'];
  close?: () => Promise<void>;
}): RateLimiter {
  return {
    scope,
    async take(action, userId) {
      const rule = rules[action];
      if (rule.perSec === 0) return;
      const waitMs = await tokens(`${action}:${userId}`, rule);
      if (waitMs > 0) throw rateLimited(waitMs);
    },
    close,
  };
}
