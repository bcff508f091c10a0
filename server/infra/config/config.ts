import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { DEFAULT_MESSAGE_MAX_CHARS } from '../../../contracts/index.ts';
import { findMisspellings, misspellingMessage, type Misspelling } from './config-typos.ts';

const int = (min: number) => z.coerce.number().int().min(min);

// `*`, `none`, or a comma-separated list of origins (`https://chat.example.com,http://localhost:5173`).
const corsOrigins = z.union([
  z.enum(['*', 'none']),
  z
    .string()
    .transform((list) => list.split(',').map((o) => o.trim()))
    .pipe(z.array(z.url({ protocol: /^https?$/ }).refine((o) => new URL(o).origin === o, 'must be an origin: scheme://host[:port], no path'))),
]);

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0).max(65535).default(3000),
  // Scrapes get a listener of their own, on loopback unless told otherwise; `off` serves none.
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_PORT: z.union([z.literal('off'), int(0).max(65535)]).default(9464),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  // The same database without a transaction-mode pooler between: what needs a session of its own.
  DATABASE_DIRECT_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  // Streaming replicas of DATABASE_URL, comma-separated: history, room lists and feed catch-up read there when they are current enough.
  DATABASE_REPLICA_URLS: z
    .string()
    .transform((list) => list.split(',').map((u) => u.trim()))
    .superRefine((urls, ctx) => {
      // By position, not value: a URL may carry a password.
      const replicaUrl = z.url({ protocol: /^postgres(ql)?$/ });
      urls.forEach((url, i) => {
        if (!replicaUrl.safeParse(url).success) ctx.addIssue({ code: 'custom', message: `entry ${i + 1} of ${urls.length} is not a postgres:// URL (a comma-separated list of replica URLs)` });
      });
    })
    .optional(),
  DB_POOL_MAX: int(1).default(10),
  DATA_DIR: z.string().min(1).default('./data'),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  JWT_JWKS_URL: z.url().optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  JWT_MAX_AGE_SECONDS: int(0).default(30 * 24 * 3600),
  ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  ADMIN_ROLE_CLAIM: z.string().min(1).default('role'),
  CORS_ORIGINS: corsOrigins.optional(),
  MESSAGE_MAX_CHARS: int(1).default(DEFAULT_MESSAGE_MAX_CHARS),
  BODY_LIMIT_BYTES: int(1024).default(64 * 1024),
  WS_MAX_PAYLOAD_BYTES: int(1024).default(64 * 1024),
  WS_PING_MS: int(100).default(30_000),
  WS_SEND_QUEUE_MAX_BYTES: int(1024).default(1024 * 1024),
  WS_MAX_INFLIGHT: int(1).default(32),
  WS_MAX_INFLIGHT_BYTES: int(1024).default(64 * 1024),
  WS_MAX_SUBSCRIPTIONS: int(1).default(1000),
  WS_MAX_SOCKETS_PER_USER: int(1).default(20),
  WS_MAX_SUBSCRIPTIONS_PER_USER: int(1).default(1000),
  INBOX_STREAMS_PER_USER: int(1).default(5),
  HTTP_HEADERS_TIMEOUT_MS: int(100).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(100).default(30_000),
  MAX_CONNECTIONS_PER_IP: int(0).default(1000),
  TYPING_THROTTLE_MS: int(0).default(1000),
  MESSAGE_EDIT_WINDOW_SECONDS: int(0).default(900),
  SHUTDOWN_GRACE_MS: int(0).default(10_000),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_COMMAND_TIMEOUT_MS: int(1).default(50),
  FANOUT: z.enum(['auto', 'local', 'postgres', 'redis', 'redis-cluster', 'nats']).default('auto'),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((list) => list.split(',').map((n) => n.trim()))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port[,host:port...]')).min(1))
    .optional(),
  // One server or several of one cluster, comma-separated; the client moves between them.
  NATS_URL: z
    .string()
    .transform((list) => list.split(',').map((u) => u.trim()))
    .pipe(z.array(z.url({ protocol: /^(nats|tls)$/ })))
    .optional(),
  FANOUT_SWEEP_MS: int(100).default(2_000),
  FANOUT_NOTIFY_WINDOW_MS: int(0).max(1_000).default(5),
  WORKERS: int(1).max(256).default(1),
  SEND_RATE_PER_SEC: z.coerce.number().min(0).default(5),
  SEND_BURST: int(1).default(20),
  TYPING_RATE_PER_SEC: z.coerce.number().min(0).default(10),
  TYPING_BURST: int(1).default(20),
  MARK_READ_RATE_PER_SEC: z.coerce.number().min(0).default(10),
  MARK_READ_BURST: int(1).default(50),
  MARK_DELIVERED_RATE_PER_SEC: z.coerce.number().min(0).default(10),
  MARK_DELIVERED_BURST: int(1).default(50),
  EDIT_RATE_PER_SEC: z.coerce.number().min(0).default(1),
  EDIT_BURST: int(1).default(10),
  DELETE_RATE_PER_SEC: z.coerce.number().min(0).default(2),
  DELETE_BURST: int(1).default(20),
  ROOM_OPEN_RATE_PER_SEC: z.coerce.number().min(0).default(1),
  ROOM_OPEN_BURST: int(1).default(20),
  SAFETY_RATE_PER_SEC: z.coerce.number().min(0).default(1),
  SAFETY_BURST: int(1).default(20),
  ROOMS_OPEN_PER_DAY: int(0).default(200),
  PRESENCE_HEARTBEAT_MS: int(50).default(5_000),
  PRESENCE_TIMEOUT_MS: int(100).default(15_000),
  PRESENCE_OFFLINE_DELAY_MS: int(0).default(3_000),
  PUSH: z.enum(['on', 'off']).optional(),
  VAPID_PUBLIC_KEY: z.string().regex(/^[A-Za-z0-9_-]{87}$/, 'must be a base64url P-256 public key (87 characters)').optional(),
  VAPID_PRIVATE_KEY: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url P-256 private key (43 characters)').optional(),
  VAPID_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)\S+$/, 'must be a mailto: or https: URL').optional(),
  PUSH_COALESCE_MS: int(0).default(2_000),
  PUSH_PREVIEW: z.enum(['true', 'false']).default('true'),
  PUSH_ALLOW_LOCAL_ENDPOINTS: z.enum(['true', 'false']).default('false'),
  PUSH_TIMEOUT_MS: int(100).default(10_000),
  WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  WEBHOOK_TIMEOUT_MS: int(100).default(10_000),
  UPLOAD_RATE_PER_SEC: z.coerce.number().min(0).default(2),
  UPLOAD_BURST: int(1).default(20),
  ATTACHMENT_MAX_BYTES: int(1).default(25 * 1024 * 1024),
  ATTACHMENT_TYPES: z
    .string()
    .transform((list) => list.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[a-z0-9.+-]+\/([a-z0-9.+-]+|\*)$/, 'must be media types (type/subtype or type/*), comma-separated')).min(1))
    .optional(),
  ATTACHMENT_URL_TTL: int(1).default(3600),
  ATTACHMENT_UPLOAD_TTL: int(1).max(600).default(600),
  ATTACHMENT_PENDING_TTL: int(0).default(24 * 3600),
  ATTACHMENT_URL_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  S3_BUCKET: z.string().min(1).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  MODERATION_URL: z.url({ protocol: /^https?$/ }).optional(),
  MODERATION_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  MODERATION_TIMEOUT_MS: int(1).default(300),
  MODERATION_FAIL: z.enum(['open', 'closed']).default('open'),
  MODERATION_CONCURRENCY: int(1).default(64),
  MODERATION_BLOCKLIST_FILE: z.string().min(1).optional(),
  MODERATION_BLOCKLIST_ACTION: z.enum(['reject', 'mask']).default('reject'),
});

/** What `ATTACHMENT_TYPES` allows when unset: images, PDF, plain text, common office, audio and video files. */
export const DEFAULT_ATTACHMENT_TYPES = [
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/heic', 'image/heif',
  'application/pdf', 'text/plain', 'text/csv', 'text/markdown', 'application/rtf',
  'application/msword', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.ms-excel', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.ms-powerpoint', 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet', 'application/vnd.oasis.opendocument.presentation',
  'audio/mpeg', 'audio/mp4', 'audio/aac', 'audio/ogg', 'audio/opus', 'audio/wav', 'audio/webm', 'audio/flac',
  'video/mp4', 'video/webm', 'video/quicktime', 'video/ogg',
];

/** Every variable Parley reads. */
export const ENV_VARIABLES = Object.keys(EnvSchema.shape) as readonly (keyof typeof EnvSchema.shape)[];

/** Each has a bucket of its own per user, so marking a room read never costs a send. */
export type LimitedAction = 'send' | 'typing' | 'markRead' | 'markDelivered' | 'edit' | 'delete' | 'openRoom' | 'safety' | 'upload';

export interface PresenceTiming {
  /** How often this instance tells the others it is alive, and reaps instances that stopped. */
  heartbeatMs: number;
  /** An instance not heard from for this long is dead: its users are offline unless held elsewhere. */
  timeoutMs: number;
  /**
   * A user's offline is announced once it has lasted this long (a reconnect within it announces
   * nothing), and one user's announced changes are at least this far apart.
   */
  offlineDelayMs: number;
}

/** Web Push; `enabled` false: the push procedures answer NOT_FOUND and nothing is sent. */
export interface PushConfig {
  readonly enabled: boolean;
  /** Configured keys; unset in development means keys generated once under `dataDir`. */
  readonly vapid: { readonly publicKey: string; readonly privateKey: string; readonly subject: string } | undefined;
  /** At most one notification per room and recipient in this window, carrying the newest message. */
  readonly coalesceMs: number;
  /** Whether notifications carry the sender and the text, or only "New message". */
  readonly preview: boolean;
  /** `http` and private addresses accepted as endpoints (tests, development); never in production. */
  readonly allowLocalEndpoints: boolean;
  /** The longest one request to a push service may take. */
  readonly timeoutMs: number;
}

/** A token bucket: `burst` at once, refilled at `perSec`; `perSec` 0 means unlimited. */
export interface RateRule {
  readonly perSec: number;
  readonly burst: number;
}

/** Everything the service reads from its environment, parsed once and frozen. */
export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  /** `/metrics`'s own listener (`port` 0: any free one); with `token`, scrapes must send it as a bearer token. */
  readonly metrics: { readonly host: string; readonly port: number | 'off'; readonly token: string | undefined };
  /** `pretty`: one human-readable line per entry (pino-pretty); `json`: pino's JSON lines, for collectors. */
  readonly logFormat: 'json' | 'pretty';
  /** Unset: run on the embedded PostgreSQL under `dataDir`. */
  readonly databaseUrl: string | undefined;
  /**
   * The same database reached without a transaction-pooling proxy, for what holds a session:
   * the LISTEN of the PostgreSQL engine and migrations. `databaseUrl` when not set.
   */
  readonly databaseDirectUrl: string | undefined;
  /**
   * Read replicas of `databaseUrl` (empty: none). Reads that may go there are sent to one only when
   * it has replayed every write committed before the read began; see server/infra/db/read-replicas.ts.
   */
  readonly databaseReplicaUrls: readonly string[];
  readonly dbPoolMax: number;
  readonly dataDir: string;
  /**
   * `dev`: no keys are configured, so the server signs tokens itself, for any user name
   * (`POST /demo/token`, `npm run token`), with a secret it generates under `dataDir`. Only with
   * NODE_ENV=development, a loopback HOST and one worker. `keys`: tokens are verified with
   * JWT_SECRET or the keys at JWT_JWKS_URL, and the server mints none.
   */
  readonly tokens: 'dev' | 'keys';
  readonly jwt: {
    readonly hsSecret: string | undefined;
    readonly jwksUrl: string | undefined;
    readonly issuer: string | undefined;
    readonly audience: string | undefined;
    /** Tokens older than this (seconds since `iat`) are refused; 0 = no limit. */
    readonly maxAgeSeconds: number;
    /** The claim whose value `admin` (or a list holding it) makes a token an admin token. */
    readonly roleClaim: string;
  };
  /** A static bearer secret that is an admin credential, besides admin tokens. */
  readonly adminToken: string | undefined;
  /** Origins allowed to call from a browser: a list, `*`, or none; development defaults to loopback origins. */
  readonly corsOrigins: readonly string[] | '*' | 'loopback';
  readonly messageMaxChars: number;
  readonly bodyLimitBytes: number;
  readonly wsMaxPayloadBytes: number;
  readonly wsPingMs: number;
  readonly wsSendQueueMaxBytes: number;
  /** Requests (tRPC) or frames (ws/chat) one socket may have in progress; beyond it reading pauses. */
  readonly wsMaxInflight: number;
  /** ws/chat: bytes of frames read and not yet handled at which reading pauses. */
  readonly wsMaxInflightBytes: number;
  readonly wsMaxSubscriptions: number;
  /** Per instance, over both WebSocket surfaces: one user's sockets, and subscriptions summed over them. */
  readonly wsMaxSocketsPerUser: number;
  readonly wsMaxSubscriptionsPerUser: number;
  /** One user's `rooms.onEvent` streams per instance (they share one set of listeners). */
  readonly inboxStreamsPerUser: number;
  /** New rooms one user may create in any 24 hours, counted in the database; 0 = no cap. */
  readonly roomsOpenPerDay: number;
  readonly httpHeadersTimeoutMs: number;
  readonly httpRequestTimeoutMs: number;
  /** Open TCP connections one client address may hold; 0 = no cap. */
  readonly maxConnectionsPerIp: number;
  readonly typingThrottleMs: number;
  /** How long after sending a message its sender may edit it. */
  readonly messageEditWindowSeconds: number;
  readonly shutdownGraceMs: number;
  readonly redisUrl: string | undefined;
  /** A rate-limit call to Redis answered no sooner than this falls back to this instance's own buckets. */
  readonly redisCommandTimeoutMs: number;
  /** How events reach the other instances; `local` = this process only. */
  readonly fanout: 'local' | 'postgres' | 'redis' | 'redis-cluster' | 'nats';
  /** Startup nodes (`host:port`) of a Redis Cluster: `fanout: 'redis-cluster'`, and the rate limits without `redisUrl`. */
  readonly redisClusterNodes: readonly string[] | undefined;
  /** NATS servers for `fanout: 'nats'`. */
  readonly natsServers: readonly string[] | undefined;
  /** How often watched rooms are checked for messages the engine did not bring. */
  readonly fanoutSweepMs: number;
  /** PostgreSQL engine: how long a NOTIFY waits for more batches to carry (0: none). */
  readonly fanoutNotifyWindowMs: number;
  /** Processes serving one port (node:cluster); more than 1 needs `databaseUrl`. */
  readonly workers: number;
  readonly rateLimits: Readonly<Record<LimitedAction, RateRule>>;
  /** Presence across instances: each instance's heartbeat, and the silence after which it counts as dead. */
  readonly presence: PresenceTiming;
  readonly push: PushConfig;
  /**
   * Where every message and room event is POSTed, signed with `secret`, each request bounded by
   * `timeoutMs` from connect to answer; unset: no webhooks.
   */
  readonly webhook: { readonly url: string; readonly secret: string; readonly timeoutMs: number } | undefined;
  /** Files in messages: limits, URL lifetimes, and where the bytes live (`s3` with S3_BUCKET, else under `dataDir`). */
  readonly attachments: {
    readonly maxBytes: number;
    readonly types: readonly string[];
    readonly urlTtlSeconds: number;
    readonly uploadTtlSeconds: number;
    readonly pendingTtlSeconds: number;
    /** Signs the local store's URLs; unset: derived from the JWT secret. */
    readonly urlSecret: string | undefined;
    readonly s3: { readonly endpoint: string | undefined; readonly bucket: string; readonly region: string; readonly accessKeyId: string | undefined; readonly secretAccessKey: string | undefined } | undefined;
  };
  /** Checks of a send or an edit before it is stored; see server/moderation/. */
  readonly moderation: ModerationConfig;
  /** Variables that look like a mistyped Parley name (ignored, but worth a warning at start). */
  readonly misspellings: readonly Misspelling[];
}

export interface ModerationConfig {
  /** The hook every send and edit is POSTed to; unset: none. */
  readonly url: string | undefined;
  /** Signs the hook's requests (HMAC-SHA256); unset: unsigned. */
  readonly secret: string | undefined;
  /** The longest a send waits for the hook, a wait for a free call included. */
  readonly timeoutMs: number;
  /** What a timeout or a failed hook does: `open` stores the content as it is, `closed` refuses it. */
  readonly fail: 'open' | 'closed';
  /** Hook calls in flight at once, all rooms together. */
  readonly concurrency: number;
  /** Words and phrases of MODERATION_BLOCKLIST_FILE (empty: no filter), and what a match does. */
  readonly blocklist: readonly string[];
  readonly blocklistAction: 'reject' | 'mask';
}

/**
 * The process environment over the `.env` file of the working directory, when there is one: a
 * variable set in the environment wins, as with Node's `--env-file`, whose parser this uses. Read
 * here rather than with `node --env-file-if-exists`, which prints a notice on stderr at every start
 * without the file.
 */
export function environment(cwd = process.cwd(), env: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  try {
    return { ...parseEnv(readFileSync(join(cwd, '.env'), 'utf8')), ...env };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return { ...env };
  }
}

/**
 * Parses the environment (with `.env`, by default); throws one error listing every bad variable.
 * `terminal`: whether the log goes to a person (LOG_FORMAT=auto is pretty then, JSON otherwise).
 */
export function loadConfig(env: Record<string, string | undefined> = environment(), terminal = process.stdout.isTTY === true): Config {
  // A blank value is a mistake, not a default: `JWT_SECRET=` must not quietly mean "mint tokens for anyone".
  const misspellings = findMisspellings(env, ENV_VARIABLES);
  const blank = new Set<string>(ENV_VARIABLES.filter((name) => env[name]?.trim() === ''));
  const parsed = EnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([name]) => !blank.has(name))));
  const invalid = [
    ...[...blank].map((name) => `${name}: set but blank: give it a value, or remove it to use the default`),
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)),
  ];
  if (invalid.length || !parsed.success) throw configError(invalid, misspellings);
  const e = parsed.data;
  const problems: string[] = [];
  const tokens = e.JWT_SECRET || e.JWT_JWKS_URL ? 'keys' : 'dev';
  if (tokens === 'dev') {
    const refusal = devModeRefusal(e);
    if (refusal) problems.push(refusal);
  }
  const fanout = e.FANOUT === 'auto' ? (e.REDIS_URL ? 'redis' : e.DATABASE_URL ? 'postgres' : 'local') : e.FANOUT;
  if (fanout === 'redis' && !e.REDIS_URL) problems.push('FANOUT: redis needs REDIS_URL');
  if (fanout === 'postgres' && !e.DATABASE_URL) problems.push('FANOUT: postgres needs DATABASE_URL');
  if (e.DATABASE_DIRECT_URL && !e.DATABASE_URL) problems.push('DATABASE_DIRECT_URL: needs DATABASE_URL (the pooled address of the same database)');
  if (e.DATABASE_REPLICA_URLS && !e.DATABASE_URL) problems.push('DATABASE_REPLICA_URLS: needs DATABASE_URL (the primary they replicate; the embedded PostgreSQL has no replicas)');
  if (fanout === 'nats' && !e.NATS_URL) problems.push('FANOUT: nats needs NATS_URL');
  if (fanout === 'redis-cluster' && !e.REDIS_CLUSTER_NODES) problems.push('FANOUT: redis-cluster needs REDIS_CLUSTER_NODES');
  if (e.WORKERS > 1 && !e.DATABASE_URL) {
    problems.push('WORKERS: more than one worker needs DATABASE_URL (the embedded PostgreSQL serves a single process)');
  }
  if (e.WORKERS > 1 && fanout === 'local') problems.push('WORKERS: more than one worker needs a fan-out engine (FANOUT is local)');
  if (e.METRICS_PORT !== 'off' && e.METRICS_PORT !== 0 && e.METRICS_PORT === e.PORT) problems.push('METRICS_PORT: must differ from PORT (or be off)');
  if (e.PRESENCE_TIMEOUT_MS <= e.PRESENCE_HEARTBEAT_MS) problems.push('PRESENCE_TIMEOUT_MS: must be longer than PRESENCE_HEARTBEAT_MS, or live instances would be reaped between beats');
  // Push is on by default only in development, where its keys can be generated and kept.
  const pushEnabled = (e.PUSH ?? (e.NODE_ENV === 'development' ? 'on' : 'off')) === 'on';
  const vapidSet = [e.VAPID_PUBLIC_KEY, e.VAPID_PRIVATE_KEY, e.VAPID_SUBJECT].filter(Boolean).length;
  if (vapidSet > 0 && vapidSet < 3) problems.push('VAPID_PUBLIC_KEY: set VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT together');
  else if (pushEnabled && vapidSet === 0 && e.NODE_ENV !== 'development') {
    problems.push(`PUSH: on with NODE_ENV=${e.NODE_ENV} needs VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT (npx web-push generate-vapid-keys), or PUSH=off`);
  }
  if (e.PUSH_ALLOW_LOCAL_ENDPOINTS === 'true' && e.NODE_ENV === 'production') problems.push('PUSH_ALLOW_LOCAL_ENDPOINTS: never with NODE_ENV=production (it lets clients make the server call private addresses)');
  if (e.WEBHOOK_URL && !e.WEBHOOK_SECRET) problems.push('WEBHOOK_SECRET: required with WEBHOOK_URL (receivers check the signature made with it)');
  if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined)) problems.push('S3_ACCESS_KEY_ID: set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither (the AWS default credentials)');
  if (e.S3_ENDPOINT && !e.S3_BUCKET) problems.push('S3_BUCKET: required with S3_ENDPOINT');
  const blocklist = e.MODERATION_BLOCKLIST_FILE === undefined ? [] : readBlocklist(e.MODERATION_BLOCKLIST_FILE, problems);
  if (problems.length) throw configError(problems, misspellings);
  return deepFreeze({
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    metrics: { host: e.METRICS_HOST, port: e.METRICS_PORT, token: e.METRICS_TOKEN },
    logFormat: e.LOG_FORMAT === 'auto' ? (terminal ? 'pretty' : 'json') : e.LOG_FORMAT,
    databaseUrl: e.DATABASE_URL,
    databaseDirectUrl: e.DATABASE_DIRECT_URL ?? e.DATABASE_URL,
    databaseReplicaUrls: e.DATABASE_REPLICA_URLS ?? [],
    dbPoolMax: e.DB_POOL_MAX,
    dataDir: e.DATA_DIR,
    tokens,
    jwt: { hsSecret: e.JWT_SECRET, jwksUrl: e.JWT_JWKS_URL, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE, maxAgeSeconds: e.JWT_MAX_AGE_SECONDS, roleClaim: e.ADMIN_ROLE_CLAIM },
    adminToken: e.ADMIN_TOKEN,
    corsOrigins: e.CORS_ORIGINS === 'none' ? [] : (e.CORS_ORIGINS ?? (e.NODE_ENV === 'development' ? 'loopback' : [])),
    messageMaxChars: e.MESSAGE_MAX_CHARS,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    wsMaxPayloadBytes: e.WS_MAX_PAYLOAD_BYTES,
    wsPingMs: e.WS_PING_MS,
    wsSendQueueMaxBytes: e.WS_SEND_QUEUE_MAX_BYTES,
    wsMaxInflight: e.WS_MAX_INFLIGHT,
    wsMaxInflightBytes: e.WS_MAX_INFLIGHT_BYTES,
    wsMaxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
    httpHeadersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
    httpRequestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
    maxConnectionsPerIp: e.MAX_CONNECTIONS_PER_IP,
    typingThrottleMs: e.TYPING_THROTTLE_MS,
    messageEditWindowSeconds: e.MESSAGE_EDIT_WINDOW_SECONDS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    redisUrl: e.REDIS_URL,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    fanout,
    natsServers: e.NATS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    fanoutSweepMs: e.FANOUT_SWEEP_MS,
    fanoutNotifyWindowMs: e.FANOUT_NOTIFY_WINDOW_MS,
    workers: e.WORKERS,
    wsMaxSocketsPerUser: e.WS_MAX_SOCKETS_PER_USER,
    wsMaxSubscriptionsPerUser: e.WS_MAX_SUBSCRIPTIONS_PER_USER,
    inboxStreamsPerUser: e.INBOX_STREAMS_PER_USER,
    roomsOpenPerDay: e.ROOMS_OPEN_PER_DAY,
    presence: { heartbeatMs: e.PRESENCE_HEARTBEAT_MS, timeoutMs: e.PRESENCE_TIMEOUT_MS, offlineDelayMs: e.PRESENCE_OFFLINE_DELAY_MS },
    rateLimits: {
      send: { perSec: e.SEND_RATE_PER_SEC, burst: e.SEND_BURST },
      typing: { perSec: e.TYPING_RATE_PER_SEC, burst: e.TYPING_BURST },
      markRead: { perSec: e.MARK_READ_RATE_PER_SEC, burst: e.MARK_READ_BURST },
      markDelivered: { perSec: e.MARK_DELIVERED_RATE_PER_SEC, burst: e.MARK_DELIVERED_BURST },
      edit: { perSec: e.EDIT_RATE_PER_SEC, burst: e.EDIT_BURST },
      delete: { perSec: e.DELETE_RATE_PER_SEC, burst: e.DELETE_BURST },
      openRoom: { perSec: e.ROOM_OPEN_RATE_PER_SEC, burst: e.ROOM_OPEN_BURST },
      // Blocks, unblocks and reports: acts a person makes now and then, each one a stored row.
      safety: { perSec: e.SAFETY_RATE_PER_SEC, burst: e.SAFETY_BURST },
      upload: { perSec: e.UPLOAD_RATE_PER_SEC, burst: e.UPLOAD_BURST },
    },
    attachments: {
      maxBytes: e.ATTACHMENT_MAX_BYTES,
      types: e.ATTACHMENT_TYPES ?? DEFAULT_ATTACHMENT_TYPES,
      urlTtlSeconds: e.ATTACHMENT_URL_TTL,
      uploadTtlSeconds: e.ATTACHMENT_UPLOAD_TTL,
      pendingTtlSeconds: e.ATTACHMENT_PENDING_TTL,
      urlSecret: e.ATTACHMENT_URL_SECRET,
      s3: e.S3_BUCKET
        ? { endpoint: e.S3_ENDPOINT, bucket: e.S3_BUCKET, region: e.S3_REGION, accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY }
        : undefined,
    },
    push: {
      enabled: pushEnabled,
      vapid: e.VAPID_PUBLIC_KEY && e.VAPID_PRIVATE_KEY && e.VAPID_SUBJECT ? { publicKey: e.VAPID_PUBLIC_KEY, privateKey: e.VAPID_PRIVATE_KEY, subject: e.VAPID_SUBJECT } : undefined,
      coalesceMs: e.PUSH_COALESCE_MS,
      preview: e.PUSH_PREVIEW === 'true',
      allowLocalEndpoints: e.PUSH_ALLOW_LOCAL_ENDPOINTS === 'true',
      timeoutMs: e.PUSH_TIMEOUT_MS,
    },
    webhook: e.WEBHOOK_URL && e.WEBHOOK_SECRET ? { url: e.WEBHOOK_URL, secret: e.WEBHOOK_SECRET, timeoutMs: e.WEBHOOK_TIMEOUT_MS } : undefined,
    moderation: {
      url: e.MODERATION_URL,
      secret: e.MODERATION_SECRET,
      timeoutMs: e.MODERATION_TIMEOUT_MS,
      fail: e.MODERATION_FAIL,
      concurrency: e.MODERATION_CONCURRENCY,
      blocklist,
      blocklistAction: e.MODERATION_BLOCKLIST_ACTION,
    },
    misspellings,
  });
}

/** One word or phrase a line; blank lines and lines starting with `#` are skipped. Read at start: a missing file stops it. */
function readBlocklist(path: string, problems: string[]): string[] {
  try {
    return readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
  } catch (err) {
    problems.push(`MODERATION_BLOCKLIST_FILE: cannot read ${path}: ${(err as Error).message}`);
    return [];
  }
}

/** One error naming every problem; a misspelt name is often their cause (JWT_SECERT: "JWT_SECRET required"). */
function configError(problems: string[], misspellings: readonly Misspelling[]): Error {
  const lines = [...problems, ...misspellings.map(misspellingMessage)];
  return new Error(`Invalid configuration:\n${lines.map((line) => `  ${line}`).join('\n')}`);
}

/**
 * Without keys the server signs a token for anyone who asks, which is only safe on a developer's
 * own machine: development mode, reachable from this machine alone, one process.
 */
function devModeRefusal(e: z.infer<typeof EnvSchema>): string | undefined {
  const setKeys = 'set JWT_SECRET (at least 32 characters) or JWT_JWKS_URL';
  if (e.NODE_ENV !== 'development') {
    return `JWT_SECRET: required with NODE_ENV=${e.NODE_ENV}: ${setKeys}; tokens are minted locally only in development`;
  }
  if (!isLoopback(e.HOST)) {
    return `JWT_SECRET: required with HOST=${e.HOST}, which other machines can reach: ${setKeys}, or listen on HOST=127.0.0.1 to mint development tokens locally`;
  }
  if (e.WORKERS > 1) return `JWT_SECRET: required with WORKERS=${e.WORKERS}: ${setKeys}; development tokens are minted by a single process`;
  return undefined;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped or written out), or `localhost`. */
function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (!family) return false;
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  return loopback.check(host, family === 6 ? 'ipv6' : 'ipv4');
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(value);
}
