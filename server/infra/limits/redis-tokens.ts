import { Cluster, Redis } from 'ioredis';
import { connectCluster } from '../redis/connect-cluster.ts';
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
 * After a call timed out, how long this instance uses its own buckets without asking Redis: a
 * stalled Redis (frozen, or a link that drops packets without closing) then costs one timeout
 * per interval instead of one per call.
 */
const SKIP_AFTER_TIMEOUT_MS = 1_000;

/**
 * Token buckets in Redis, shared by every instance. While Redis is unreachable, or slower than
 * `commandTimeoutMs`, each instance falls back to its own buckets: a send is never refused, nor
 * held, because the limiter is down.
 */
export async function createRedisTokens({
  url,
  cluster,
  commandTimeoutMs,
  fallback,
  onRedisError,
}: {
  /** One Redis server, or (instead) the startup nodes of a Redis Cluster. */
  url?: string;
  cluster?: { host: string; port: number }[];
  commandTimeoutMs: number;
  fallback: TakeToken;
  onRedisError: (err: unknown) => void;
}): Promise<{ take: TakeToken; close(): Promise<void> }> {
  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // No ready check: a call that fails for any reason falls back to this instance's buckets, so
    // the limiter needs none, and with a Redis Cluster a master down at start failed it (and held
    // the start for ever, see connect-cluster.ts).
    enableReadyCheck: false,
    connectionName: 'parley-limits',
    retryStrategy: (n: number) => Math.min(n * 50, 1_000),
  };
  const redis = cluster
    ? new Cluster(cluster, { lazyConnect: true, enableOfflineQueue: false, enableReadyCheck: false, clusterRetryStrategy: options.retryStrategy, redisOptions: options })
    : new Redis(url!, options);
  // In a cluster a bucket's key carries its hash tag, so the script runs on the shard its key
  // hashes to and any key a later version adds beside it (one per user and action) lands there too.
  // A `}` inside the key only shortens the tag: the key stays one key, in one slot.
  const keyOf = cluster ? (key: string) => `parley:limit:{${key}}` : (key: string) => `parley:limit:${key}`;
  redis.on('error', () => {});
  await (redis instanceof Cluster ? connectCluster(redis) : redis.connect());
  let skipUntil = 0;
  return {
    async take(key, rule) {
      if (redis.status !== 'ready' || Date.now() < skipUntil) return fallback(key, rule);
      // A connection that stays open but stops answering errs no call: only a deadline ends the
      // wait. Not ioredis' commandTimeout, which holds every command to it, the connection's own
      // handshake (HELLO, CLIENT SETNAME) too: on a busy machine that took longer, the client
      // dropped the connection it had just made, and a start failed ("Connection is closed").
      let timer: NodeJS.Timeout | undefined;
      const call = redis.eval(TAKE_SCRIPT, 1, keyOf(key), rule.perSec, rule.burst);
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not answer within ${commandTimeoutMs} ms`)), commandTimeoutMs)));
      try {
        return Number(await Promise.race([call, late]));
      } catch (err) {
        // The call left behind still settles when Redis answers (or its connection drops).
        call.catch(() => {});
        // Redis failing or stalling mid-call: this instance limits on its own for a while. The
        // calls started together fail together: one report per window.
        if (Date.now() >= skipUntil) onRedisError(err);
        skipUntil = Date.now() + SKIP_AFTER_TIMEOUT_MS;
        return fallback(key, rule);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      redis.disconnect();
    },
  };
}
