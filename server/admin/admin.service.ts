import type { TokenVerifier } from '../identity/token-verifier.ts';
import type { RoomBus } from '../live/room-bus.ts';
import type { MessageChangeService } from '../messages/message-changes.service.ts';
import type { Sql } from '../messages/message-store.ts';
import type { BlockView } from '../safety/block-view.ts';
import { createAdminAuthenticator, type AdminAuthenticator } from './admin-auth.ts';
import { createAuditLog, type AuditLog } from './audit.ts';
import { createBanView } from './ban-view.ts';
import { createBanService, type BanService } from './bans.service.ts';
import { createModeration, type Moderation } from './moderation.ts';
import { exportUser } from './user-export.ts';

/** The admin API's domain: its own authority, bans, moderation, export and erasure, and the audit log. */
export interface AdminService {
  auth: AdminAuthenticator;
  bans: BanService;
  moderation: Moderation;
  audit: AuditLog;
  /** Audits the export, then yields its NDJSON lines as the consumer pulls them. */
  exportUser(actor: string, userId: string): Promise<AsyncIterable<string>>;
}

export interface AdminDeps {
  bus: RoomBus;
  sql: Sql;
  verifier: TokenVerifier;
  adminToken: string | undefined;
  sweepMs: number;
  changes: MessageChangeService;
  blocks: BlockView;
  onError: (err: unknown) => void;
  /** What this process remembers of a user, forgotten when the user is erased on any instance. */
  forgetUser: (userId: string) => void;
}

export function createAdminService({ bus, sql, verifier, adminToken, sweepMs, changes, blocks, onError, forgetUser }: AdminDeps): AdminService {
  const view = createBanView({ bus, sql, sweepMs, onError, onErased: forgetUser });
  const bans = createBanService({ view });
  const audit = createAuditLog();
  return {
    auth: createAdminAuthenticator({ verifier, adminToken, bans: view }),
    bans,
    audit,
    moderation: createModeration({ bans, audit, changes, blocks, erased: (userId) => view.changed(userId, true) }),
    async exportUser(actor, userId) {
      await audit.record(sql, { actor, action: 'users.export', target_type: 'user', target: userId, details: {} });
      return (async function* () {
        for await (const line of exportUser(sql, userId)) yield JSON.stringify(line) + '\n';
      })();
    },
  };
}
