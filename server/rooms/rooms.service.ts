import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { prepared, runPrepared } from '../infra/db/prepared.ts';
import { ParleyError, type ArchiveState, type OpenedRoom, type RoomFilter, type RoomPage } from '../../contracts/index.ts';
import { ChatRoom, type IChatRoom } from '../infra/db/entities/chat-room.entity.ts';
import type { RoomPartner } from './inbox-feed.ts';
import { userKey } from '../live/bus-key.ts';
import type { Position } from '../messages/room-feed.ts';
import type { RoomBus } from '../live/room-bus.ts';
import { listInbox, type PartnerVisibility } from './room-inbox.ts';
import type { Sql } from '../messages/message-store.ts';
import { rateLimited } from '../infra/limits/rate-limiter.ts';
import { createReadBatcher } from '../messages/read-batcher.ts';
import { inJsonKeys } from '../infra/db/json-keys.ts';
import type { UserDirectory } from '../identity/user-directory.ts';

type Participants = readonly [string, string];

/** How PostgreSQL spells a uuid it returns; ids spelled so are matched to the rows a batch reads. */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface RoomService {
  /** The caller's room with `otherUserId`, created on first use; concurrent calls from either side yield one room. */
  open(em: EntityManager, userId: string, otherUserId: string, name?: string): Promise<OpenedRoom>;
  /** One keyset page of the caller's rooms, most recent activity first; see {@link listInbox}. */
  list(em: EntityManager, userId: string, page: { cursor?: string | undefined; limit: number; filter?: RoomFilter }): Promise<RoomPage>;
  /** Hides the room from the caller's `rooms.list` until a message arrives after this (`archived` false: shows it again). */
  archive(em: EntityManager, userId: string, roomId: string, archived: boolean): Promise<ArchiveState>;
  /** Every room the user is in, with its other participant. */
  partners(em: EntityManager, userId: string): Promise<RoomPartner[]>;
  /** The room's participants; ROOM_NOT_FOUND for a missing room and for a non-participant alike. */
  requireParticipant(em: EntityManager, roomId: string, userId: string): Promise<Participants>;
  /** The room's participants, opener first; ROOM_NOT_FOUND for a missing room. */
  pair(em: EntityManager, roomId: string): Promise<Participants>;
  /** Rooms' newest message seq and change seq, each read in one snapshot; many rooms in one statement, one result per id, in order. */
  positions(sql: Sql, roomIds: readonly string[]): Promise<Position[]>;
  /** The user was erased: their rooms' participants changed, so the cached pairs naming them go. */
  forgetUser(userId: string): void;
}

export interface RoomServiceDeps {
  users: UserDirectory;
  bus: RoomBus;
  isOnline(userId: string): boolean;
  /** New rooms one user may create in any 24 hours; 0 = no cap. */
  maxNewPerDay?: number;
  cacheSize?: number;
  /** Refuses a new room between two users when a block stands between them (safety/). */
  requireUnblocked?(em: EntityManager, a: string, b: string): Promise<void>;
  /** What `user` may see of their partners (blocks, requests, privacy): `rooms.list` shows no more. */
  visibility?(user: string): Promise<PartnerVisibility>;
  /**
   * What must follow a room's creation whatever happens to this process (its webhook job): written
   * in the transaction that creates the room, so it commits with it or not at all; `committed` is
   * told once it has.
   */
  outbox?: { write(tx: EntityManager, room: OpenedRoom): Promise<void>; committed(): void };
  /** Runs a list on a read replica that has every write made before it, else on `em`'s primary (see infra/db/read-replicas.ts). */
  replicaRead?<T>(read: 'rooms', fn: (sql: Sql) => Promise<T>): Promise<T>;
}

/** The participants of the rooms named by a JSON array of ids. */
export const ROOM_PAIRS_SQL = `select id, participant1_id, participant2_id from chat_rooms where ${inJsonKeys('id', 'uuid')}`;
/** Both sequences of the rooms named by a JSON array of ids. */
export const ROOM_POSITIONS_SQL = `select r.id, r.last_seq, c.last_change_seq from chat_rooms r left join room_change_counters c on c.chat_room_id = r.id where ${inJsonKeys('r.id', 'uuid')}`;

const ROOM_PAIRS = prepared(ROOM_PAIRS_SQL);
const ROOM_POSITIONS = prepared(ROOM_POSITIONS_SQL);

export function createRoomService({ users, bus, isOnline, maxNewPerDay = 0, cacheSize = 50_000, requireUnblocked, visibility, outbox, replicaRead }: RoomServiceDeps): RoomService {
  // Participants change only when one is erased (forgetUser), so pairs are cached.
  const participants = new Map<string, Participants>();

  function remember(roomId: string, pair: Participants) {
    if (participants.size >= cacheSize) participants.delete(participants.keys().next().value!);
    participants.set(roomId, pair);
  }

  /**
   * Rooms not cached that are asked for in one turn are read in one statement: a stream of sends to
   * rooms this process has not seen yet (just started, or many rooms) made one statement per send,
   * each before its send could take its place, and at 1,000 sends a second to cold rooms the sends
   * fell behind on those reads alone.
   */
  const coldPairs = createReadBatcher<{ em: EntityManager; roomId: string }, Participants | undefined>({
    keyOf: (ask) => ask.roomId,
    async run(asks) {
      const rows = await runPrepared<{ id: string; participant1_id: string; participant2_id: string }>(asks[0]!.em.getConnection(), ROOM_PAIRS, [JSON.stringify(asks.map((ask) => ask.roomId))]);
      const found = new Map(rows.map((r) => [r.id, [r.participant1_id, r.participant2_id] as const]));
      return asks.map((ask) => found.get(ask.roomId));
    },
  });

  async function pairOf(em: EntityManager, roomId: string): Promise<Participants | undefined> {
    let pair = participants.get(roomId);
    if (pair) return pair;
    // In a transaction the room may be its own, not yet committed; an id in another spelling than
    // the canonical one (or none) is read alone, so its error is its own ask's, not the batch's.
    if (em.isInTransaction() || !CANONICAL_UUID.test(roomId)) {
      const [row] = await em.execute<Array<{ participant1_id: string; participant2_id: string }>>('select participant1_id, participant2_id from chat_rooms where id = ?', [roomId]);
      pair = row && [row.participant1_id, row.participant2_id];
    } else pair = await coldPairs.load({ em, roomId });
    if (pair) remember(roomId, pair);
    return pair;
  }

  async function findPair(em: EntityManager, a: string, b: string) {
    return em.findOne(ChatRoom, {
      $or: [
        { participant1: a, participant2: b },
        { participant1: b, participant2: a },
      ],
    });
  }

  /**
   * Refuses a new room past the day's cap. Counted from the rooms table (the creator is
   * participant1), so it holds across instances and restarts; opening an existing room costs nothing.
   * Concurrent first opens of one user may pass together; the rate limit keeps that to its burst.
   */
  async function checkDailyCap(em: EntityManager, userId: string) {
    if (maxNewPerDay === 0) return;
    const [row] = await em.execute<Array<{ n: number; oldest: Date | null }>>(
      `select count(*)::int as n, min(created_at) as oldest from chat_rooms where participant1_id = ? and created_at > now() - interval '1 day'`,
      [userId],
    );
    if (!row || row.n < maxNewPerDay) return;
    throw rateLimited(new Date(row.oldest!).getTime() + 86_400_000 - Date.now());
  }

  /**
   * Tells both participants' inbox streams about a new room. It is a request: the opener sees
   * nothing of the recipient's presence; the recipient sees the opener's unless either hides theirs.
   */
  async function announce(em: EntityManager, room: IChatRoom) {
    const dto = toRoomDto(room);
    const pair = [dto.participant1, dto.participant2] as const;
    const seen = await em.execute<Array<{ id: string; last_seen_at: Date | null; show_presence: boolean }>>(
      'select id, last_seen_at, show_presence from users where id in (?, ?)',
      [...pair],
    );
    const shows = (id: string) => seen.find((u) => u.id === id)?.show_presence !== false;
    for (const [viewer, other] of [pair, [pair[1], pair[0]]] as const) {
      const opener = viewer === dto.participant1;
      const visible = !opener && shows(viewer) && shows(other);
      const lastSeen = visible ? seen.find((u) => u.id === other)?.last_seen_at : null;
      bus.publish(userKey(viewer), {
        type: 'room_created',
        room: {
          ...dto,
          last_message: null,
          unread: 0,
          read_seq: 0,
          other_read_seq: 0,
          other_delivered_seq: 0,
          other: { user: other, online: visible && isOnline(other), last_seen_at: lastSeen ? new Date(lastSeen).toISOString() : null },
          request: opener ? 'sent' : 'received',
          archived: false,
        },
      });
    }
  }

  return {
    async open(em, userId, otherUserId, name) {
      if (userId === otherUserId) {
        throw new ParleyError('INVALID_INPUT', 'Cannot open a room with yourself.', {
          fields: { other_user: ['must be another user'] },
        });
      }
      let room = await findPair(em, userId, otherUserId);
      if (!room) {
        // Only a new room is refused: an existing one still opens, its history readable by both.
        await requireUnblocked?.(em, userId, otherUserId);
        await checkDailyCap(em, userId);
        await users.ensure(em.getConnection(), otherUserId);
        try {
          room = await em.transactional(async (tx) => {
            const created = tx.create(ChatRoom, { participant1: userId, participant2: otherUserId, name: name ?? null });
            await tx.flush();
            await outbox?.write(tx, toRoomDto(created));
            return created;
          });
          outbox?.committed();
          await announce(em, room);
        } catch (err) {
          if (!(err instanceof UniqueConstraintViolationException)) throw err;
          em.clear();
          room = await findPair(em, userId, otherUserId);
          if (!room) throw err;
        }
      }
      return toRoomDto(room);
    },

    async list(em, userId, page) {
      const visible = await visibility?.(userId);
      const read = (sql: Sql) => listInbox(sql, userId, page, isOnline, visible, page.filter);
      return replicaRead ? replicaRead('rooms', read) : read(em.getConnection());
    },

    async archive(em, userId, roomId, archived) {
      // The caller's side only; the procedure has checked they are a participant.
      const value = archived ? 'last_seq' : 'null';
      await em.execute(
        `update chat_rooms set archived_seq1 = case when participant1_id = ? then ${value} else archived_seq1 end,
                               archived_seq2 = case when participant2_id = ? then ${value} else archived_seq2 end
          where id = ?`,
        [userId, userId, roomId],
      );
      return { roomId, archived };
    },

    pair: async (em, roomId) => {
      const pair = await pairOf(em, roomId);
      if (!pair) throw new ParleyError('ROOM_NOT_FOUND', 'Not found.');
      return pair;
    },

    async requireParticipant(em, roomId, userId) {
      const pair = await pairOf(em, roomId);
      if (!pair || (pair[0] !== userId && pair[1] !== userId)) {
        throw new ParleyError('ROOM_NOT_FOUND', 'Not found.');
      }
      return pair;
    },

    async partners(em, userId) {
      return em.execute<RoomPartner[]>(
        `select id as room, participant2_id as other from chat_rooms where participant1_id = ?
         union all select id, participant1_id from chat_rooms where participant2_id = ?`,
        [userId, userId],
      );
    },

    async positions(sql, roomIds) {
      // One statement, one snapshot: both sequences of a room as of the same instant.
      const rows = await runPrepared<{ id: string; last_seq: string; last_change_seq: string | null }>(sql, ROOM_POSITIONS, [JSON.stringify(roomIds)]);
      const byId = new Map(rows.map((r) => [r.id, { seq: Number(r.last_seq), change: Number(r.last_change_seq ?? 0) }]));
      // PostgreSQL writes a uuid in lower case, whatever case it was asked in.
      return roomIds.map((id) => byId.get(id.toLowerCase()) ?? { seq: 0, change: 0 });
    },

    forgetUser(userId) {
      for (const [roomId, pair] of participants) if (pair.includes(userId)) participants.delete(roomId);
    },
  };
}

export function toRoomDto(room: IChatRoom): OpenedRoom {
  return { id: room.id, participant1: room.participant1.id, participant2: room.participant2.id, name: room.name ?? null, last_seq: room.lastSeq ?? 0 };
}
