import type { AuditEntry, AuditPage } from '../../contracts/index.ts';
import type { Sql } from '../messages/message-store.ts';

export type AuditRecord = Omit<AuditEntry, 'id' | 'at'>;

export interface AuditLog {
  record(sql: Sql, entry: AuditRecord): Promise<void>;
  /** Newest first; `cursor` is a previous page's `nextCursor`. */
  list(sql: Sql, page: { cursor?: string | undefined; limit: number }): Promise<AuditPage>;
}

interface AuditRow {
  id: string;
  at: Date | string;
  actor: string;
  action: AuditEntry['action'];
  target_type: AuditEntry['target_type'];
  target_id: string;
  details: Record<string, unknown> | string;
}

export function createAuditLog(): AuditLog {
  return {
    async record(sql, { actor, action, target_type, target, details }) {
      await sql.execute('insert into admin_audit (actor, action, target_type, target_id, details) values (?, ?, ?, ?, ?::jsonb)', [actor, action, target_type, target, JSON.stringify(details)]);
    },

    async list(sql, { cursor, limit }) {
      const rows = await sql.execute<AuditRow[]>(
        'select id, at, actor, action, target_type, target_id, details from admin_audit where id < ? order by id desc limit ?',
        [cursor ?? '9223372036854775807', limit + 1],
      );
      const items = rows.slice(0, limit).map((r) => ({
        id: String(r.id),
        at: new Date(r.at).toISOString(),
        actor: r.actor,
        action: r.action,
        target_type: r.target_type,
        target: r.target_id,
        details: typeof r.details === 'string' ? (JSON.parse(r.details) as Record<string, unknown>) : r.details,
      }));
      return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
    },
  };
}
