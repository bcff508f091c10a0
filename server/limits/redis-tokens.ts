import { Redis } from 'ioredis';
import type { TakeToken } from './rate-limiter.ts';

// A token bucket kept in one hash per key, updated atomically; Redis' clock, so instances agree.
const TAKE_SCRIPT = `
local rate = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait`;

/**
 * Token buckets in Redis, shared by every instance. While Redis is unreachable each instance
 * falls back to its own buckets: a send is never refused because the limiter is down.
 */
export async function createRedisTokens(url: string, fallback: TakeToken, onRedisError: (err: unknown) => void): Promise<{ take: TakeToken; close(): Promise<void> }> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: 'parley-limits', retryStrategy: (n) => Math.min(n * 50, 1_000) });
  redis.on('error', () => {});
  await redis.connect();
  return {
    async take(key, rule) {
      if (redis.status !== 'ready') return fallback(key, rule);
      try {
        return Number(await redis.eval(TAKE_SCRIPT, 1, `parley:limit:${key}`, rule.perSec, rule.burst));
      } catch (err) {
        // Redis failing mid-call: this instance limits on its own until it answers again.
        onRedisError(err);
        return fallback(key, rule);
      }
    },
    async close() {
      redis.disconnect();
    },
  };
}
