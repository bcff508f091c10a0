import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type Ban, type Unbanned } from '../../contracts/index.ts';
import type { BanView } from './ban-view.ts';

export interface BanService {
  /** Bans `userId` (again: the new terms replace the old); their tokens are refused and their sockets close, on every instance. */
  ban(em: EntityManager, input: { userId: string; until?: string | undefined; reason: string; actor: string }): Promise<Ban>;
  /** Lifts the ban if there is one. */
  unban(em: EntityManager, userId: string): Promise<Unbanned>;
  view: BanView;
}

interface BanRow {
  user_id: string;
  banned_at: Date | string;
  until: Date | string | null;
  reason: string;
  banned_by: string;
}

const iso = (t: Date | string) => new Date(t).toISOString();
export const banFromRow = (r: BanRow): Ban => ({ user: r.user_id, banned_at: iso(r.banned_at), until: r.until === null ? null : iso(r.until), reason: r.reason, banned_by: r.banned_by });

export function createBanService({ view }: { view: BanView }): BanService {
  return {
    async ban(em, { userId, until, reason, actor }) {
      if (until !== undefined && Date.parse(until) <= Date.now()) {
        throw new ParleyError('INVALID_INPUT', 'A ban must end in the future.', { fields: { until: ['must be in the future'] } });
      }
      // The epoch moves in the ban's own transaction: an instance that reads it sees the ban too.
      const [row] = await em.execute<BanRow[]>(
        `with banned as (
           insert into user_bans (user_id, until, reason, banned_by) values (?, ?, ?, ?)
           on conflict (user_id) do update set banned_at = now(), until = excluded.until, reason = excluded.reason, banned_by = excluded.banned_by
           returning user_id, banned_at, until, reason, banned_by),
         bump as (update ban_epoch set n = n + 1 where id = 1 returning n)
         select banned.* from banned, bump`,
        [userId, until ?? null, reason, actor],
      );
      await view.changed(userId);
      return banFromRow(row!);
    },

    async unban(em, userId) {
      const [row] = await em.execute<Array<{ removed: boolean }>>(
        `with removed as (delete from user_bans where user_id = ? returning 1),
         bump as (update ban_epoch set n = n + 1 where id = 1 and exists (select 1 from removed) returning n)
         select exists (select 1 from bump) as removed`,
        [userId],
      );
      if (row!.removed) await view.changed(userId);
      return { user: userId, unbanned: row!.removed };
    },

    view,
  };
}
