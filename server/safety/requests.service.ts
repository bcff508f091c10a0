import type { EntityManager } from '@mikro-orm/postgresql';
import { ParleyError, type PrivacySettings, type RequestAnswer, type UpdatePrivacyInput } from '../../contracts/index.ts';
import type { Sql } from '../messages/message-store.ts';
import type { BlockView } from './block-view.ts';

type Participants = readonly [string, string];

export interface RequestService {
  /** The recipient takes the request: the opener sees their presence, typing and receipts from now on. Idempotent. */
  accept(em: EntityManager, pair: Participants, userId: string, roomId: string): Promise<RequestAnswer>;
  /** The recipient refuses the request: hidden from their list, closed to sends as a block closes it, until they accept. */
  decline(em: EntityManager, pair: Participants, userId: string, roomId: string): Promise<RequestAnswer>;
  /**
   * A message was stored: the recipient's first reply accepts the request. Undefined (no await)
   * once this process knows the room is accepted, which is every send after the first reply, and
   * for the opener's sends once it knows who opened the room.
   */
  replied(roomId: string, sender: string): Promise<void> | undefined;
  updatePrivacy(em: EntityManager, userId: string, change: UpdatePrivacyInput): Promise<PrivacySettings>;
}

const notARequest = () => new ParleyError('INVALID_INPUT', 'Only the recipient of a message request can answer it.', { fields: { roomId: ['must be a room another user opened with you'] } });

export function createRequestService({
  sql,
  view,
  pairOf,
  onError,
  cacheSize = 50_000,
}: {
  sql: Sql;
  view: BlockView;
  pairOf(roomId: string): Promise<Participants>;
  /** A reply stored but not recorded as accepting: the message stands, the next reply tries again. */
  onError(err: unknown): void;
  cacheSize?: number;
}): RequestService {
  // Acceptance is for good (a decline applies only to a request), so accepted rooms are remembered.
  const accepted = new Set<string>();
  const remember = (roomId: string) => {
    if (accepted.size >= cacheSize) accepted.delete(accepted.values().next().value!);
    accepted.add(roomId);
  };
  // The opener's sends never answer their own request. Without this, a room accepted before this
  // process started (or one whose recipient has not replied) made every send of its opener look
  // the pair up again, an EntityManager fork and an await on every message of the busiest side.
  const openers = new Map<string, string>();
  const rememberOpener = (roomId: string, opener: string) => {
    if (openers.size >= cacheSize) openers.delete(openers.keys().next().value!);
    openers.set(roomId, opener);
  };

  /** Sets the answer in one statement with the epoch's move, so an instance that sees the epoch sees the answer. */
  async function answer(db: Sql, roomId: string, recipient: string, set: string, when: string) {
    const [row] = await db.execute<Array<{ opener: string | null }>>(
      // bump is not selected: PostgreSQL runs every data-modifying CTE anyway.
      `with answered as (update chat_rooms set ${set} where id = ? and participant2_id = ? and ${when} returning participant1_id),
       bump as (update safety_epoch set n = n + 1 where id = 1 and exists (select 1 from answered) returning n)
       select (select participant1_id from answered) as opener`,
      [roomId, recipient],
    );
    if (row?.opener) await view.changed(row.opener, recipient);
  }

  return {
    async accept(em, pair, userId, roomId) {
      if (pair[1] !== userId) throw notARequest();
      await answer(em.getConnection(), roomId, userId, 'accepted_at = coalesce(accepted_at, now()), declined_at = null', '(accepted_at is null or declined_at is not null)');
      remember(roomId);
      return { roomId, status: 'accepted' };
    },

    async decline(em, pair, userId, roomId) {
      if (pair[1] !== userId) throw notARequest();
      const [row] = await em.execute<Array<{ accepted: boolean }>>('select accepted_at is not null as accepted from chat_rooms where id = ?', [roomId]);
      if (row?.accepted) throw new ParleyError('INVALID_INPUT', 'This conversation was accepted already: block the user or archive the room instead.', { fields: { roomId: ['was accepted already'] } });
      await answer(em.getConnection(), roomId, userId, 'declined_at = now()', 'accepted_at is null and declined_at is null');
      return { roomId, status: 'declined' };
    },

    replied(roomId, sender) {
      if (accepted.has(roomId) || openers.get(roomId) === sender) return undefined;
      return (async () => {
        const pair = await pairOf(roomId);
        rememberOpener(roomId, pair[0]);
        if (pair[1] !== sender) return;
        await answer(sql, roomId, sender, 'accepted_at = now()', 'accepted_at is null');
        remember(roomId);
      })().catch(onError);
    },

    async updatePrivacy(em, userId, change) {
      const [row] = await em.execute<Array<{ show_presence: boolean; send_read_receipts: boolean; changed: boolean }>>(
        `with before as (select show_presence, send_read_receipts from users where id = ?),
         after as (update users set show_presence = coalesce(?, show_presence), send_read_receipts = coalesce(?, send_read_receipts) where id = ?
                   returning show_presence, send_read_receipts),
         bump as (update safety_epoch set n = n + 1 where id = 1
                  and (select (b.show_presence, b.send_read_receipts) is distinct from (a.show_presence, a.send_read_receipts) from before b, after a) returning n)
         select a.show_presence, a.send_read_receipts, exists (select 1 from bump) as changed from after a`,
        [userId, change.showPresence ?? null, change.sendReadReceipts ?? null, userId],
      );
      if (row!.changed) await view.privacyChanged(userId);
      return { showPresence: row!.show_presence, sendReadReceipts: row!.send_read_receipts };
    },
  };
}
