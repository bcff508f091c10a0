import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type BlockedPage, type BlockedUser, type Unblocked } from '../../contracts/index.ts';
import type { Sql } from '../messages/message-store.ts';
import { BLOCK_BETWEEN_SQL, roomOpenForSends } from './block-sql.ts';
import type { BlockView } from './block-view.ts';

export interface BlockService {
  /** `blocker` blocks `blocked`; blocking again changes nothing and answers the first block. */
  block(em: EntityManager, blocker: string, blocked: string): Promise<BlockedUser>;
  /** Lifts the block if there is one; nothing is lost, the pair's room and history are as they were. */
  unblock(em: EntityManager, blocker: string, blocked: string): Promise<Unblocked>;
  /** The users `blocker` has blocked, ordered by user id. */
  listBlocked(em: EntityManager, blocker: string, page: { cursor?: string | undefined; limit: number }): Promise<BlockedPage>;
  /** BLOCKED when a block stands between the two, either way, as the database has it now. */
  requireUnblocked(em: EntityManager, a: string, b: string, refusal?: ParleyError): Promise<void>;
  /** The same from this process's view (see block-view.ts): for calls too frequent to ask the database each time. */
  requireUnblockedNow(a: string, b: string): Promise<void>;
  /** Why a send to the room was not stored, when a block is the reason. */
  sendRefusal(sql: Sql, roomId: string): Promise<ParleyError | undefined>;
  view: BlockView;
}

/**
 * Neutral wording, the same for both participants: it says the conversation is closed, not who
 * closed it.
 */
export const blockedConversation = () => new ParleyError('BLOCKED', 'You cannot send messages in this conversation.');
export const blockedNewConversation = () => new ParleyError('BLOCKED', 'You cannot start a conversation with this user.');

const iso = (t: Date | string) => new Date(t).toISOString();

export function createBlockService({ view }: { view: BlockView }): BlockService {
  function notSelf(blocker: string, blocked: string) {
    if (blocker === blocked) throw new ParleyError('INVALID_INPUT', 'Cannot block yourself.', { fields: { userId: ['must be another user'] } });
  }

  return {
    async block(em, blocker, blocked) {
      notSelf(blocker, blocked);
      // The epoch moves in the block's own transaction: an instance that reads it sees the block too.
      const [row] = await em.execute<Array<{ created_at: Date | string; changed: boolean }>>(
        `with added as (insert into user_blocks (blocker_id, blocked_id) values (?, ?) on conflict do nothing returning created_at),
         bump as (update safety_epoch set n = n + 1 where id = 1 and exists (select 1 from added) returning n)
         select coalesce((select created_at from added), (select created_at from user_blocks where blocker_id = ? and blocked_id = ?)) as created_at,
                exists (select 1 from bump) as changed`,
        [blocker, blocked, blocker, blocked],
      );
      if (row!.changed) await view.changed(blocker, blocked);
      return { user: blocked, blocked_at: iso(row!.created_at) };
    },

    async unblock(em, blocker, blocked) {
      notSelf(blocker, blocked);
      const [row] = await em.execute<Array<{ removed: boolean }>>(
        `with removed as (delete from user_blocks where blocker_id = ? and blocked_id = ? returning 1),
         bump as (update safety_epoch set n = n + 1 where id = 1 and exists (select 1 from removed) returning n)
         select exists (select 1 from bump) as removed`,
        [blocker, blocked],
      );
      if (row!.removed) await view.changed(blocker, blocked);
      return { user: blocked, unblocked: row!.removed };
    },

    async listBlocked(em, blocker, { cursor, limit }) {
      const rows = await em.execute<Array<{ blocked_id: string; created_at: Date | string }>>(
        'select blocked_id, created_at from user_blocks where blocker_id = ? and blocked_id > ? order by blocked_id limit ?',
        [blocker, cursor ?? '', limit + 1],
      );
      const items = rows.slice(0, limit).map((r) => ({ user: r.blocked_id, blocked_at: iso(r.created_at) }));
      return { items, nextCursor: rows.length > limit ? items.at(-1)!.user : null };
    },

    async requireUnblocked(em, a, b, refusal = blockedConversation()) {
      const rows = await em.execute(BLOCK_BETWEEN_SQL, [a, b, b, a]);
      if (rows.length) throw refusal;
    },

    async requireUnblockedNow(a, b) {
      if ((await view.severedFrom(a)).has(b)) throw blockedConversation();
    },

    async sendRefusal(sql, roomId) {
      const rows = await sql.execute(`select 1 from chat_rooms r where r.id = ? and not (${roomOpenForSends('r')})`, [roomId]);
      return rows.length ? blockedConversation() : undefined;
    },

    view,
  };
}
