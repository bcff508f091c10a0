import { createAuthenticator, type Authenticator } from './identity/authenticator.ts';
import { createTokenVerifier, tokenKeys } from './identity/token-verifier.ts';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './infra/config/config.ts';
import type { Orm } from './infra/db/orm.ts';
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
import { createModerator, type Moderator } from './moderation/moderator.ts';

/** Everything procedures need, built once per app; passed down explicitly, never global. */
export interface Services {
  config: Config;
  orm: Orm;
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

export function createServices({ config, orm, log, jwtSecret, scale }: { config: Config; orm: Orm; log: FastifyBaseLogger; jwtSecret: string | undefined; scale: ScaleOut }): Services {
  const { bus, fanout, metrics, limiter } = scale;
  const users = createUserDirectory();
  const presence = createPresenceService({ bus, em: () => orm.em.fork(), timing: config.presence, onError: (err) => log.error({ err }, 'presence change failed') });
  const sql = orm.em.getConnection();
  const blocks = createBlockService({
    view: createBlockView({ bus, sql, sweepMs: config.fanoutSweepMs, onError: (err) => log.error({ err }, 'reading blocks failed') }),
  });
  const rooms = createRoomService({
    users,
    bus,
    isOnline: presence.isOnline,
    maxNewPerDay: config.roomsOpenPerDay,
    requireUnblocked: (em, a, b) => blocks.requireUnblocked(em, a, b, blockedNewConversation()),
    visibility: blocks.view.visibility,
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
  const store = createMessageStore();
  const changes = createRoomChangeLog();
  const verifier = createTokenVerifier({ ...config.jwt, ...tokenKeys(jwtSecret, config.jwt.jwksUrl) });
  const messageChanges = createMessageChangeService({
    bus,
    store,
    changes,
    maxChars: config.messageMaxChars,
    editWindowSeconds: config.messageEditWindowSeconds,
    ...(moderator && { moderate: moderator.moderate }),
  });
  const admin = createAdminService({
    bus,
    sql,
    verifier,
    adminToken: config.adminToken,
    sweepMs: config.fanoutSweepMs,
    changes: messageChanges,
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
    bus,
    authenticator: createAuthenticator({ verifier, users, em: () => orm.em.fork(), admit: admin.bans.view.check }),
    rooms,
    inbox: createInboxFeeds({
      bus,
      watchPresence: presence.watch,
      partners: (userId) => rooms.partners(orm.em.fork(), userId),
      maxStreamsPerUser: config.inboxStreamsPerUser,
      screen: blocks.view.screen,
    }),
    messages: createMessageService({
      bus,
      watchPresence: presence.watch,
      store,
      sql,
      changes,
      position: (roomId) => rooms.position(orm.em.fork(), roomId),
      maxChars: config.messageMaxChars,
      onBatchError: (err, size) => log.warn({ err, size }, 'group-commit batch failed; its sends are retried one by one'),
      onBatch: metrics.batch,
      sendRefusal: (roomId) => blocks.sendRefusal(sql, roomId),
      screen: blocks.view.screen,
      ...(moderator && { moderate: moderator.moderate }),
      replied: requests.replied,
    }),
    typing: createTypingService({ bus, throttleMs: config.typingThrottleMs }),
    changes: messageChanges,
    presence,
    blocks,
    reports: createReportService({ store, sql }),
    requests,
    admin,
    socketSlots: createUserSlots(config.wsMaxSocketsPerUser),
    subscriptionSlots: createUserSlots(config.wsMaxSubscriptionsPerUser),
    shutdownDrain: createShutdownDrain(),
    fanout,
    metrics,
    limiter,
    moderator,
  };
}
