import { createAuthenticator, type Authenticator } from './identity/authenticator.ts';
import { createTokenVerifier, tokenKeys } from './identity/token-verifier.ts';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './infra/config/config.ts';
import { forkOnUse, replicaConnections, type Orm } from './infra/db/orm.ts';
import { createReadRouter } from './infra/db/read-replicas.ts';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createShutdownDrain, type ShutdownDrain } from './messages/shutdown-drain.ts';
import { createMessageChangeService, type MessageChangeService } from './messages/message-changes.service.ts';
import { createMessageStore } from './messages/message-store.ts';
import { createPresenceService, type PresenceService } from './presence/presence.service.ts';
import { createRoomChangeLog } from './messages/room-changes.ts';
import { createMessageService, type MessageService } from './messages/messages.service.ts';
import type { RoomBus } from './live/room-bus.ts';
import { createRoomService, type RoomService } from './rooms/rooms.service.ts';
import { createTypingService, type TypingService } from './presence/typing.service.ts';
import { createUserDirectory } from './identity/user-directory.ts';
import type { ScaleOut } from './scale-out.ts';
import { createInboxFeeds, type InboxFeeds } from './rooms/inbox-feed.ts';
import { createUserSlots, type UserSlots } from './infra/limits/user-slots.ts';
import { createBlockView } from './safety/block-view.ts';
import { blockedNewConversation, createBlockService, type BlockService } from './safety/blocks.service.ts';
import { createReportService, type ReportService } from './safety/reports.service.ts';
import { createRequestService, type RequestService } from './safety/requests.service.ts';
import { createAdminService, type AdminService } from './admin/admin.service.ts';
import { createJobQueue, type JobQueue } from './infra/jobs/job-queue.ts';
import { createWebhookService, webhookJobsFromStored, type WebhookService } from './webhooks/webhooks.service.ts';
import { createPushService, pushJobsFromStored, type PushService } from './push/push.service.ts';
import { createMessageJobs } from './push/message-jobs.ts';
import { createWebPushSender } from './push/push-sender.ts';
import { loadVapidKeys } from './push/vapid-keys.ts';
import { createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { roomKey } from './live/bus-key.ts';
import { createReadBatcher } from './messages/read-batcher.ts';
import type { Position } from './messages/room-feed.ts';
import { createAttachmentService, type AttachmentService } from './attachments/attachments.service.ts';
import { makeThumbnail } from './attachments/thumbnail.ts';
import { createLocalStorage, type LocalStorage } from './infra/storage/local-storage.ts';
import { createModerator, type Moderator } from './moderation/moderator.ts';

/** Everything procedures need, built once per app; passed down explicitly, never global. */
export interface Services {
  config: Config;
  orm: Orm;
  /** A procedure's EntityManager: forked only if the procedure uses it (see forkOnUse). */
  procedureEm(): EntityManager;
  bus: RoomBus;
  authenticator: Authenticator;
  rooms: RoomService;
  /** Inbox streams (`rooms.onEvent`), one listener set per user. */
  inbox: InboxFeeds;
  messages: MessageService;
  typing: TypingService;
  /** Edits, deletions and read markers. */
  changes: MessageChangeService;
  presence: PresenceService;
  /** Blocks between users, and this process's view of them. */
  blocks: BlockService;
  reports: ReportService;
  /** Message requests (accept, decline, the first reply) and privacy settings. */
  requests: RequestService;
  /** The admin API: its authority, bans, moderation, export, erasure and audit log. */
  admin: AdminService;
  /** Web Push: subscriptions, muted rooms, and the jobs that notify recipients with no socket open. */
  push: PushService;
  /** One signed POST per message and room event to WEBHOOK_URL, when set. */
  webhooks: WebhookService;
  /** The durable queue push and webhook deliveries run from. */
  jobs: JobQueue;
  /** Files in messages: uploads, checks at send, signed URLs, deletion and thumbnails. */
  attachments: AttachmentService;
  /** The local store, which Parley serves itself at `/files/`; undefined with S3. */
  localFiles: LocalStorage | undefined;
  /** Per user in this process: open WebSockets (both surfaces), and subscriptions over them. */
  socketSlots: UserSlots;
  subscriptionSlots: UserSlots;
  /** Mutations in progress; shutdown waits for them before closing the database. */
  shutdownDrain: ShutdownDrain;
  fanout: ScaleOut['fanout'];
  metrics: ScaleOut['metrics'];
  limiter: ScaleOut['limiter'];
  /** Checks of sends and edits (hook, word list); undefined when none is configured. */
  moderator: Moderator | undefined;
}

export async function createServices({ config, orm, log, jwtSecret, scale }: { config: Config; orm: Orm; log: FastifyBaseLogger; jwtSecret: string | undefined; scale: ScaleOut }): Promise<Services> {
  const { bus, fanout, metrics, limiter } = scale;
  const users = createUserDirectory();
  const presence = createPresenceService({ bus, em: () => orm.em.fork(), timing: config.presence, onError: (err) => log.error({ err }, 'presence change failed') });
  const sql = orm.em.getConnection();
  const reads = createReadRouter({
    primary: sql,
    replicas: replicaConnections(orm).map((replica, i) => ({ name: `replica ${i + 1} of DATABASE_REPLICA_URLS`, sql: replica })),
    onRead: metrics.dbRead,
    onFallback: metrics.replicaFallback,
    onReplicaDown: (name, err) => log.warn({ err }, `${name} failed (unreachable, not a standby, or a read cancelled): its reads go to the primary for a second`),
  });
  const blocks = createBlockService({
    view: createBlockView({ bus, sql, sweepMs: config.fanoutSweepMs, onError: (err) => log.error({ err }, 'reading blocks failed') }),
  });
  const jobs = createJobQueue({ sql, onError: (err, job) => log.error({ err, job: job && { id: job.id, kind: job.kind } }, 'job failed'), onOutcome: metrics.jobOutcome });
  metrics.watchJobs(jobs.backlog);
  const store = createMessageStore();
  const webhooks = createWebhookService({ config: config.webhook, jobs, readMessages: (reads) => store.readAfterMany(sql, reads), log });
  const rooms = createRoomService({
    users,
    bus,
    isOnline: presence.isOnline,
    maxNewPerDay: config.roomsOpenPerDay,
    requireUnblocked: (em, a, b) => blocks.requireUnblocked(em, a, b, blockedNewConversation()),
    visibility: blocks.view.visibility,
    outbox: { write: webhooks.roomCreatedIn, committed: webhooks.committed },
    replicaRead: reads.run,
  });
  const requests = createRequestService({ sql, view: blocks.view, pairOf: (roomId) => rooms.pair(orm.em.fork(), roomId),
    onError: (err) => log.error({ err }, 'recording a reply as accepting a message request failed'),
  });
  const moderator = createModerator({
    hook: config.moderation.url === undefined ? undefined : { ...config.moderation, url: config.moderation.url },
    fail: config.moderation.fail,
    blocklist: config.moderation.blocklist,
    blocklistAction: config.moderation.blocklistAction,
    maxChars: config.messageMaxChars,
    onHookFailure: (err, outcome) => log.warn({ err, outcome }, `moderation hook failed; the content was ${outcome === 'open' ? 'let through' : 'refused'}`),
  });
  const changes = createRoomChangeLog();
  const transaction = <T>(fn: (tx: import('@mikro-orm/postgresql').EntityManager) => Promise<T>) => orm.em.fork().transactional(fn);
  // The AWS SDK loads only for an S3 store: it is as many modules as the rest of a start's.
  const s3 = config.attachments.s3 && (await import('./infra/storage/s3-storage.ts')).createS3Storage(config.attachments.s3);
  const localFiles = s3 ? undefined : createLocalStorage({ root: join(config.dataDir, 'attachments'), secret: filesSecret(config, jwtSecret, log) });
  const attachments = createAttachmentService({
    storage: s3 || localFiles!,
    sql,
    limits: config.attachments,
    transaction,
    recordUpdate: async (tx, roomId, message) => (await changes.record(tx, roomId, { type: 'message_updated', message })).event,
    publish: (roomId, event) => bus.publish(roomKey(roomId), event),
    thumbnailer: makeThumbnail,
    onError: (err, what) => log.warn({ err }, what),
  });
  const changeService = createMessageChangeService({
    bus,
    store,
    changes,
    maxChars: config.messageMaxChars,
    editWindowSeconds: config.messageEditWindowSeconds,
    outbox: { write: webhooks.changedIn, committed: webhooks.committed },
    attachmentsOf: attachments,
    ...(moderator && { moderate: moderator.moderate }),
  });
  const push = createPushService({
    config: config.push,
    dataDir: config.dataDir,
    sql,
    jobs,
    loadKeys: () => loadVapidKeys(config.push, config.dataDir),
    makeSender: (vapid) => createWebPushSender({ vapid, timeoutMs: config.push.timeoutMs, allowLocal: config.push.allowLocalEndpoints }),
    isOnline: presence.isOnline,
    offlineDelayMs: config.presence.offlineDelayMs,
    onRequest: metrics.pushRequest,
    markDelivered: (moves) => changeService.markDeliveredMany(orm.em.fork(), moves),
    messageJobs: createMessageJobs({
      sql,
      makers: [...pushJobsFromStored(config.push), ...webhookJobsFromStored(config.webhook)],
      woke: () => {
        jobs.wakeIn(0);
        // Push jobs come due after the coalescing window; the poll would find them up to a period late.
        if (config.push.enabled && config.push.coalesceMs > 0) setTimeout(() => jobs.wakeIn(0), config.push.coalesceMs).unref();
      },
      log,
    }),
    log,
  });
  const verifier = createTokenVerifier({ ...config.jwt, ...tokenKeys(jwtSecret, config.jwt.jwksUrl) });
  // Feeds that open in one turn (a reconnect storm) read their rooms' positions in one statement.
  const positions = createReadBatcher<string, Position>({ keyOf: (id) => id, run: (ids) => rooms.positions(sql, ids) });
  const admin = createAdminService({
    bus,
    sql,
    verifier,
    adminToken: config.adminToken,
    sweepMs: config.fanoutSweepMs,
    changes: changeService,
    blocks: blocks.view,
    onError: (err) => log.error({ err }, 'reading bans failed'),
    forgetUser: (userId) => {
      users.forget(userId);
      rooms.forgetUser(userId);
    },
  });
  return {
    config,
    orm,
    procedureEm: () => forkOnUse(orm),
    bus,
    authenticator: createAuthenticator({ verifier, users, sql, admit: admin.bans.view.check }),
    rooms,
    inbox: createInboxFeeds({
      bus,
      watchPresence: presence.watch,
      partners: (userId) => rooms.partners(orm.em.fork(), userId),
      maxStreamsPerUser: config.inboxStreamsPerUser,
      screen: blocks.view.screen,
      presenceNow: presence.now,
      onError: (err) => log.warn({ err }, 'reading a presence just made visible failed; the next change carries it'),
    }),
    messages: createMessageService({
      bus,
      watchPresence: presence.watch,
      store,
      sql,
      changes,
      position: (roomId) => positions.load(roomId),
      maxChars: config.messageMaxChars,
      onBatchError: (err, size) => log.warn({ err, size }, 'group-commit batch failed; its sends are retried one by one'),
      onBatch: metrics.batch,
      sendRefusal: (roomId) => blocks.sendRefusal(sql, roomId),
      screen: blocks.view.screen,
      presenceNow: presence.now,
      onError: (err) => log.warn({ err }, 'reading a presence just made visible failed; the next change carries it'),
      attachments,
      onStored: (message) => {
        push.stored(message);
      },
      ...(moderator && { moderate: moderator.moderate }),
      replied: requests.replied,
      replicaRead: reads.run,
    }),
    typing: createTypingService({ bus, throttleMs: config.typingThrottleMs }),
    changes: changeService,
    presence,
    blocks,
    reports: createReportService({ store, sql }),
    requests,
    admin,
    push,
    webhooks,
    jobs,
    attachments,
    localFiles,
    socketSlots: createUserSlots(config.wsMaxSocketsPerUser),
    subscriptionSlots: createUserSlots(config.wsMaxSubscriptionsPerUser),
    shutdownDrain: createShutdownDrain(),
    fanout,
    metrics,
    limiter,
    moderator,
  };
}

/**
 * The key of the local store's URLs: ATTACHMENT_URL_SECRET, else derived from the JWT secret, so
 * every instance sharing a secret accepts the others' URLs. With JWKS alone there is no shared
 * secret, and each process signs with its own random key.
 */
function filesSecret(config: Config, jwtSecret: string | undefined, log: FastifyBaseLogger): Buffer {
  const base = config.attachments.urlSecret ?? jwtSecret;
  if (base === undefined) {
    log.warn('ATTACHMENT_URL_SECRET is not set and tokens come from JWT_JWKS_URL: file URLs are signed with a key of this process alone');
    return randomBytes(32);
  }
  return createHmac('sha256', base).update('parley attachment URLs').digest();
}
